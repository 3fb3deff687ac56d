"""The ledger out of the gateway: XLSX and CSV for people, jsonl for an inspector's ``wastecart verify``.

Streaming throughout: rows come from a SQLite cursor and go straight to the file (openpyxl's
write-only workbook keeps one row in memory), so 100,000 bags cost what one costs, times 100,000.
The file is written beside ``out`` and renamed into place when complete: a reader (a download, a
person opening it) never sees half a file.

台账 (HJ 1259-2022; waste-domain §5.3, §8.3–8.6) is recorded per container: ONE ROW PER BAG HANDED
OVER in the filter (the filter's time range is the handover's time), with the later steps of that
bag found through ``ledger_bags`` by its package code: the storage-in (time, room, re-weighed
weight), the transfer (time, manifest; a version 2 transfer also its 处置方法 for the bag's line and
its 最终去向, Regulations Art. 12 — a version 1 transfer leaves both empty: it wrote no checked
values) and a loss report (incident: the bag shows 遗失, and stays so whatever a later check-in
lists it as).  A check-in that was REJECTED stored nothing: the bag shows 入库被拒 with no room.
A voided bag stays in the ledger marked 作废; the 汇总 sheet (``summarize``) counts bags not
voided, as the console's summaries do.

jsonl: a chain can only be checked on contiguous seqs, so it takes only the time range and the
cart (``JSONL_FILTERS``): for each cart it carries EVERY record with a seq between the first and the
last record the range matched, whatever their type, each as the gateway stored it (the exact
bytes the cart signed, not re-encoded), preceded by the carts' public keys.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from edge import wire
from edge.catalogue import CATEGORY
from gateway.errors import GatewayStoreError, IngestError
from gateway.ingest.checks import KeyRing
from gateway.ledger.search import BAG_PREFIX_END, LedgerFilter
from gateway.ledger.summary import summarize
from gateway.store import BUSY_TIMEOUT_MS, DB_NAME, MIGRATIONS

Format = Literal["xlsx", "csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("xlsx", "csv", "jsonl")
Progress = Callable[[int, int], None]
PROGRESS_EVERY = 2_000  # rows between progress calls
JSONL_KIND, JSONL_VERSION = "wastecart-ledger-export", 1
JSONL_FILTERS = ("since", "until", "cart")  # what a jsonl export may be filtered by (whole seq ranges)
SHOWN_AS = ("first", "last")  # LedgerFilter's days as given: the same range as since / until
CACHE_MAX = 4_096  # storage-in / transfer records remembered while exporting (bags of a round are near)

LEDGER_HEADERS = ("交接时间", "科室", "类别", "废物代码", "包装编码", "重量(kg)", "交接人(护士)", "收集人",
                  "车辆(cart)", "入库时间", "暂存间", "复核重量(kg)", "转运时间", "联单号", "处置方法", "最终去向",
                  "状态", "记录编号")
KG_COLUMNS = (5, 11)  # 重量, 复核重量: numbers with three decimals
SUMMARY_HEADERS = ("日期", "科室", "类别", "袋数", "重量(kg)")
STATUS_TEXT = {"HANDED_OVER": "已交接", "OK": "已入库", "DEVIATION": "已入库(重量偏差)", "MISSING": "入库时缺失",
               "IN_BATCH": "已入库(整批复核)", "TRANSFERRED": "已转运", "VOIDED": "作废",
               "REJECTED": "入库被拒(未入库, 仍在车上)", "LOST": "遗失"}
FILTER_TEXT = {"since": "起始", "until": "截止(不含)", "cart": "车辆", "department": "科室", "category": "类别",
               "collector": "收集人", "confirmer": "交接人", "type": "记录类型", "bag": "包装编码"}
REWEIGHED = ("OK", "DEVIATION")  # storage-in statuses that carry a re-weighed weight
NOT_STORED = ("MISSING", "REJECTED")  # storage-in statuses of a bag the check-in did not store
LINES_CACHE_MAX = 64  # v2 transfers whose per-bag disposal methods are remembered while exporting


class ExportError(ValueError):
    """An export that cannot be made as asked (a filter a jsonl export cannot take); names the field."""


@dataclass(frozen=True)
class ExportResult:
    rows: int  # 台账 rows (xlsx, csv) or records (jsonl)
    bytes: int
    path: Path
    seconds: float


# data rows of one 台账 sheet: Excel's 1,048,576 rows a sheet, less the header; more go on 台账(2), …
SHEET_ROWS_MAX = 1_048_575

def open_readonly(data_dir: Path) -> sqlite3.Connection:
    """``data_dir/gateway.sqlite`` opened read-only (``mode=ro``: safe beside a running gateway);
    GatewayStoreError if there is none or its schema is not this gateway's."""
    path = Path(data_dir) / DB_NAME
    if not path.is_file():
        raise GatewayStoreError(f"{path}: no gateway database here")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as exc:
        raise GatewayStoreError(f"{path}: cannot read ({exc})") from exc
    if version != len(MIGRATIONS):
        db.close()
        raise GatewayStoreError(f"{path}: schema version {version}, this gateway reads {len(MIGRATIONS)}; "
                                "start the gateway once to migrate it")
    return db


def export(db: sqlite3.Connection, f: LedgerFilter, fmt: Format, out: Path, tz: ZoneInfo,
           keys: KeyRing | None = None, progress: Progress | None = None) -> ExportResult:
    """Write the ledger in ``f`` to ``out`` as ``fmt``; ``keys``: the carts' public keys for jsonl (the gateway's
    configuration); a cart it does not know gets the key the gateway verified its records with (``cart_keys``).

    ``db`` is read in one transaction (one snapshot, so the sheets agree); a read-only connection
    beside a running gateway is the intended use.  ExportError for a filter jsonl cannot take,
    OSError if ``out`` cannot be written."""
    if fmt not in FORMATS:
        raise ExportError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    started = time.monotonic()
    part = out.with_name(f".{out.name}.{os.getpid()}.part")
    report = progress or (lambda done, total: None)
    db.execute("BEGIN")
    try:
        if fmt == "jsonl":
            rows = _jsonl(db, f, part, tz, keys, report)
        elif fmt == "csv":
            rows = _csv(db, f, part, tz, report)
        else:
            rows = _xlsx(db, f, part, tz, report)
        os.replace(part, out)
    finally:
        db.rollback()
        part.unlink(missing_ok=True)
    return ExportResult(rows, out.stat().st_size, out, time.monotonic() - started)


# ---- 台账: one row per handover bag ---------------------------------------------------------------


def _bag_where(f: LedgerFilter) -> tuple[str, list[Any]]:
    """The WHERE of the handover bags in ``f`` (b: ledger_bags, r: its ledger_records row)."""
    where, args = ["b.type = 'handover'"], []
    for column, value in (("b.at >= ?", f.since), ("b.at < ?", f.until), ("b.cart = ?", f.cart),
                          ("b.department = ?", f.department), ("b.category = ?", f.category),
                          ("r.collector = ?", f.collector), ("r.confirmer = ?", f.confirmer)):
        if value is not None:
            where.append(column)
            args.append(value)
    if f.type not in (None, "handover"):
        where.append("0")  # 台账 rows are handover bags (as summarize counts them)
    if f.bag:  # a prefix, as in the search
        where.append("b.package_code >= ? AND b.package_code < ?")
        args += [f.bag, f.bag + BAG_PREFIX_END]
    return " AND ".join(where), args


def count_bags(db: sqlite3.Connection, f: LedgerFilter) -> int:
    where, args = _bag_where(f)
    return int(db.execute(f"SELECT COUNT(*) FROM ledger_bags b JOIN ledger_records r ON r.id = b.record_id"
                          f" WHERE {where}", args).fetchone()[0])


def ledger_rows(db: sqlite3.Connection, f: LedgerFilter, tz: ZoneInfo) -> Iterator[tuple[Any, ...]]:
    """The 台账 rows in handover order: values as LEDGER_HEADERS (kg as float, times as text)."""
    where, args = _bag_where(f)
    steps = _Steps(db)
    cursor = db.execute(
        "SELECT b.at, b.department, b.category, b.package_code, b.weight_g, r.confirmer, r.collector, b.cart,"
        " b.record_id, b.voided_by FROM ledger_bags b JOIN ledger_records r ON r.id = b.record_id"
        f" WHERE {where} ORDER BY b.at, b.record_id, b.package_code", args)
    for at, department, category, code, weight_g, nurse, collector, cart, record_id, voided in cursor:
        known = CATEGORY.get(category or "")
        name, waste_code = (known.zh, known.waste_code) if known else (category or "", "")
        stored: tuple[float, str, int | None] | None = None
        moved: tuple[float, str, str, str] | None = None
        status = "VOIDED" if voided else "HANDED_OVER"
        for step_type, step_id, step_at, step_g, step_status in steps.of(code, at):
            if step_type == "storage_in" and step_status not in NOT_STORED:
                stored = (step_at, steps.room(step_id), step_g if step_status in REWEIGHED else None)
            elif step_type == "storage_in":
                stored = None
            elif step_type == "transfer":
                moved = (step_at, steps.manifest(step_id), steps.disposal(step_id, code), steps.destination(step_id))
            if not voided and not (status == "LOST" and step_status == "MISSING"):  # lost stays lost
                status = step_status
        yield (_time(at, tz), department or "", name, waste_code, code, _kg(weight_g), nurse or "",
               collector or "", cart, _time(stored[0], tz) if stored else "", stored[1] if stored else "",
               _kg(stored[2]) if stored else None, _time(moved[0], tz) if moved else "",
               moved[1] if moved else "", moved[2] if moved else "", moved[3] if moved else "",
               STATUS_TEXT.get(status, status), record_id)


class _Steps:
    """A bag's later steps (storage-in, transfer, loss report; not voided) and the few body fields the
    index does not keep (room, manifest, final destination, a line's disposal method), read from the
    stored envelopes with bounded caches."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.cache: dict[str, tuple[str, str, str]] = {}
        self.lines: dict[str, dict[str, str]] = {}

    def of(self, code: str, after: float) -> list[tuple[str, str, float, int | None, str]]:
        return self.db.execute(
            "SELECT type, record_id, at, weight_g, status FROM ledger_bags WHERE package_code = ?"
            " AND type IN ('storage_in', 'transfer', 'incident') AND voided_by IS NULL AND at >= ? ORDER BY at",
            (code, after)).fetchall()

    def room(self, record_id: str) -> str:
        return self._fields(record_id)[0]

    def manifest(self, record_id: str) -> str:
        return self._fields(record_id)[1]

    def destination(self, record_id: str) -> str:
        """最终去向 of a version 2 transfer ("" for version 1)."""
        return self._fields(record_id)[2]

    def disposal(self, record_id: str, code: str) -> str:
        """处置方法 of the bag's line in a version 2 transfer ("" for version 1)."""
        methods = self.lines.get(record_id)
        if methods is None:
            methods = {c: m for c, m in self.db.execute(
                "SELECT json_extract(l.value, '$.package_code'), json_extract(l.value, '$.disposal_method')"
                " FROM records r, json_each(r.envelope, '$.body.lines') AS l WHERE r.id = ?"
                " AND json_extract(r.envelope, '$.body.body_version') = 2", (record_id,))
                if isinstance(c, str) and isinstance(m, str)}
            if len(self.lines) >= LINES_CACHE_MAX:
                self.lines.clear()
            self.lines[record_id] = methods
        return methods.get(code, "")

    def _fields(self, record_id: str) -> tuple[str, str, str]:
        """(storage room, manifest number, v2 final destination) of a stored record; SQLite's JSON reader,
        not a Python decode."""
        found = self.cache.get(record_id)
        if found is not None:
            return found
        row = self.db.execute("SELECT json_extract(envelope, '$.body.facility'),"
                              " json_extract(envelope, '$.body.manifest.number'),"
                              " CASE WHEN json_extract(envelope, '$.body.body_version') = 2"
                              " THEN json_extract(envelope, '$.body.final_destination') END"
                              " FROM records WHERE id = ?", (record_id,)).fetchone() or ("", "", "")
        room, manifest, destination = (v if isinstance(v, str) else "" for v in row)
        found = (room, manifest, destination)
        if len(self.cache) >= CACHE_MAX:
            self.cache.clear()
        self.cache[record_id] = found
        return found


@lru_cache(maxsize=CACHE_MAX)  # the bags of a record share its time
def _time(at: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, tz).isoformat(sep=" ", timespec="seconds")


def _kg(grams: int | None) -> float | None:
    return None if grams is None else round(grams / 1000, 3)


def _csv(db: sqlite3.Connection, f: LedgerFilter, part: Path, tz: ZoneInfo, progress: Progress) -> int:
    """台账 only; UTF-8 with a BOM so that Excel reads the Chinese right."""
    total, done = count_bags(db, f), 0
    with part.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(LEDGER_HEADERS)
        for row in ledger_rows(db, f, tz):
            writer.writerow([f"{v:.3f}" if isinstance(v, float) else "" if v is None else v for v in row])
            done += 1
            if done % PROGRESS_EVERY == 0:
                progress(done, total)
    progress(done, total)
    return done


def _xlsx(db: sqlite3.Connection, f: LedgerFilter, part: Path, tz: ZoneInfo, progress: Progress) -> int:
    total, done = count_bags(db, f), 0
    book = Workbook(write_only=True)
    ledger, summary, notes = (book.create_sheet(name) for name in ("台账", "汇总", "说明"))
    ledger.append(LEDGER_HEADERS)
    sheets, in_sheet = 1, 0
    for row in ledger_rows(db, f, tz):
        if in_sheet == SHEET_ROWS_MAX:  # Excel opens no more rows than this in a sheet: 台账(2), 台账(3), …
            sheets, in_sheet = sheets + 1, 0
            ledger = book.create_sheet(f"台账({sheets})", sheets - 1)
            ledger.append(LEDGER_HEADERS)
        values: list[Any] = list(row)
        for i in KG_COLUMNS:
            if values[i] is not None:
                values[i] = _kg_cell(ledger, values[i])
        ledger.append(values)
        in_sheet += 1
        done += 1
        if done % PROGRESS_EVERY == 0:
            progress(done, total)
    summary_rows = _summary_sheet(db, f, summary)
    notes.append(("项目", "内容"))
    for name, value in _filter_notes(f, tz):
        notes.append((f"筛选: {name}", value))
    notes.append(("时区", tz.key))
    notes.append(("导出时间", _time(time.time(), tz)))
    notes.append(("台账行数(每袋一行, 含作废)", done))
    notes.append(("台账工作表数", sheets))
    notes.append(("汇总行数", summary_rows))
    notes.append(("说明", "台账: 筛选范围内交接的每一袋一行, 入库、转运与遗失按包装编码查得; 汇总不含作废的袋"))
    notes.append(("处置方法 / 最终去向", "取自新版(第2版)转运记录; 旧版转运记录未记录, 留空"))
    book.save(part)
    progress(done, total)
    return done


def _kg_cell(sheet: WriteOnlyWorksheet, value: float) -> Cell:
    cell = WriteOnlyCell(sheet, value)
    cell.number_format = "0.000"
    return cell


def _summary_sheet(db: sqlite3.Connection, f: LedgerFilter, sheet: WriteOnlyWorksheet) -> int:
    """汇总: per day × department × category, then a total row; returns the rows written."""
    sheet.append(SUMMARY_HEADERS)
    bags = grams = rows = 0
    for row in summarize(db, f, "day"):
        known = CATEGORY.get(row.category or "")
        name = known.zh if known else row.category or ""
        sheet.append((row.period, row.department or "", name, row.bags, _kg_cell(sheet, row.weight_g / 1000)))
        bags, grams, rows = bags + row.bags, grams + row.weight_g, rows + 1
    sheet.append(("合计", "", "", bags, _kg_cell(sheet, grams / 1000)))
    return rows


def _filter_notes(f: LedgerFilter, tz: ZoneInfo) -> list[tuple[str, str]]:
    out = []
    for field in fields(f):
        value = getattr(f, field.name)
        if value is None or field.name in SHOWN_AS:
            continue
        shown = _time(value, tz) if field.name in ("since", "until") else str(value)
        out.append((FILTER_TEXT.get(field.name, field.name), shown))
    return out or [("全部", "")]


# ---- jsonl: the signed envelopes and the keys, for wastecart verify --------------------------------


def check_jsonl_filter(f: LedgerFilter) -> None:
    """ExportError naming the first filter a jsonl export cannot take (it would cut a chain)."""
    extra = [field.name for field in fields(f)
             if field.name not in (*JSONL_FILTERS, *SHOWN_AS) and getattr(f, field.name)]
    if extra:
        raise ExportError(f"{extra[0]}: a jsonl export takes only from, to and cart "
                          "(a chain is checked on whole seq ranges)")


def jsonl_ranges(db: sqlite3.Connection, f: LedgerFilter) -> list[tuple[str, int, int]]:
    """(cart, first seq, last seq) of the records ``f`` matches, per cart; ExportError if ``f`` has a
    filter other than the time range and the cart."""
    check_jsonl_filter(f)
    where, args = [], []
    for column, value in (("at >= ?", f.since), ("at < ?", f.until), ("cart = ?", f.cart)):
        if value is not None:
            where.append(column)
            args.append(value)
    sql = "SELECT cart, MIN(seq), MAX(seq) FROM ledger_records"
    sql += f" WHERE {' AND '.join(where)}" if where else ""
    return [(c, int(a), int(b)) for c, a, b in db.execute(sql + " GROUP BY cart ORDER BY cart", args)]


def _jsonl(db: sqlite3.Connection, f: LedgerFilter, part: Path, tz: ZoneInfo, keys: KeyRing | None,
           progress: Progress) -> int:
    ranges = jsonl_ranges(db, f)
    total = sum(int(db.execute("SELECT COUNT(*) FROM records WHERE cart = ? AND seq BETWEEN ? AND ?",
                               r).fetchone()[0]) for r in ranges)
    done = 0
    with part.open("w", encoding="utf-8", newline="\n") as out:
        header = {"kind": JSONL_KIND, "version": JSONL_VERSION,
                  "created_at": datetime.now(tz).isoformat(timespec="seconds"), "filter": f.to_params(),
                  "zone": tz.key}
        out.write(_line(header))
        for cart, _, _ in ranges:
            site = db.execute("SELECT site FROM carts WHERE cart = ?", (cart,)).fetchone()
            out.write(_line({"kind": "key", "cart": cart, "site": site[0] if site else None,
                             "public_key": _key_text(db, keys, cart)}))
        for cart, first, last in ranges:
            for site, envelope in db.execute("SELECT site, envelope FROM records WHERE cart = ? AND seq BETWEEN ? AND ?"
                                             " ORDER BY seq", (cart, first, last)):
                if "\n" in envelope or "\r" in envelope:  # white space between tokens: not hashed, but one line
                    envelope = json.dumps(json.loads(envelope), ensure_ascii=False, separators=(",", ":"))
                # the envelope as stored (what the cart sent), not decoded and re-encoded
                out.write(f'{{"kind":"record","site":{json.dumps(site)},"envelope":{envelope}}}\n')
                done += 1
                if done % PROGRESS_EVERY == 0:
                    progress(done, total)
        out.write(_line({"kind": "end", "records": done, "carts": len(ranges)}))
    progress(done, total)
    return done


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def _key_text(db: sqlite3.Connection, keys: KeyRing | None, cart: str) -> str | None:
    """The cart's key from ``keys`` (the gateway's configuration) if given and known there, else the key
    the gateway last verified the cart's records with (``cart_keys``); None if neither has one."""
    if keys is not None:
        try:
            return wire.public_key_text(keys.get(cart))
        except IngestError:
            pass
    row = db.execute("SELECT public_key FROM cart_keys WHERE cart = ? ORDER BY last_used DESC LIMIT 1",
                     (cart,)).fetchone()
    return None if row is None else str(row[0])
