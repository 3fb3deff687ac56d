"""``gateway.ledger.export`` and ``gateway.ledger.jobs``: the 台账 as XLSX / CSV and the signed records
as jsonl, from a store filled by ``store_batch`` with real signed envelopes (tests/export_fixtures.py);
read back and compared bag by bag and total by total with what was stored."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from gateway.ledger.export import LEDGER_HEADERS, ExportError, export, open_readonly
from gateway.ledger.jobs import ExportJobs
from gateway.ledger.search import LedgerFilter
from gateway.ledger.settings import LedgerConfig
from gateway.ledger.verify import verify_file
from tests.export_fixtures import ZONE, Bag, Ledger, fill

COL = {name: i for i, name in enumerate(LEDGER_HEADERS)}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ledger]:
    folder = tmp_path_factory.mktemp("ledger")
    return folder, fill(folder)


@pytest.fixture
def db(data: tuple[Path, Ledger]) -> Iterator[sqlite3.Connection]:
    conn = open_readonly(data[0])
    yield conn
    conn.close()


def sheet_rows(path: Path, name: str) -> list[tuple[Any, ...]]:
    book = load_workbook(path, read_only=True)
    try:
        return [tuple(r) for r in book[name].iter_rows(values_only=True)]
    finally:
        book.close()


def day_totals(bags: list[Bag]) -> dict[tuple[str, str, str], tuple[int, int]]:
    out: dict[tuple[str, str, str], tuple[int, int]] = {}
    for b in bags:
        key = (b.at.astimezone(ZONE).date().isoformat(), b.department, b.category)
        n, g = out.get(key, (0, 0))
        out[key] = (n + 1, g + b.weight_g)
    return out


def test_xlsx_has_one_row_per_bag_with_its_later_steps(data: tuple[Path, Ledger], db: sqlite3.Connection,
                                                       tmp_path: Path) -> None:
    _, ledger = data
    calls: list[tuple[int, int]] = []
    out = tmp_path / "ledger.xlsx"
    result = export(db, LedgerFilter(), "xlsx", out, ZONE, None, lambda d, t: calls.append((d, t)))
    assert result.rows == len(ledger.bags) and result.bytes == out.stat().st_size > 0
    assert calls[-1] == (len(ledger.bags), len(ledger.bags))
    rows = sheet_rows(out, "台账")
    assert rows[0] == LEDGER_HEADERS
    by_code = {r[COL["包装编码"]]: r for r in rows[1:]}
    assert len(by_code) == len(rows) - 1 == len(ledger.bags)
    for bag in ledger.bags:
        row = by_code[bag.code]
        assert row[COL["重量(kg)"]] == pytest.approx(bag.weight_g / 1000, abs=1e-9)
        assert (row[COL["科室"]], row[COL["车辆(cart)"]], row[COL["记录编号"]]) == (bag.department, bag.cart,
                                                                                 bag.record_id)
        assert row[COL["交接时间"]] == bag.at.isoformat(sep=" ", timespec="seconds")  # text, ledger zone's offset
        assert row[COL["复核重量(kg)"]] == (None if bag.reweigh_g is None else pytest.approx(bag.reweigh_g / 1000))
        assert (row[COL["暂存间"]] or None) == ("ROOM1" if bag.reweigh_g is not None else None)
        assert (row[COL["联单号"]] or None) == bag.manifest
        assert not row[COL["处置方法"]] and not row[COL["最终去向"]]  # version 1 transfers: left empty
        expected = "作废" if bag.voided else "已转运" if bag.manifest else "入库时缺失"
        assert row[COL["状态"]] == expected
    assert by_code[ledger.bags[0].code][COL["类别"]] == "感染性废物"
    assert by_code[ledger.bags[0].code][COL["废物代码"]] == "841-001-01"


def test_xlsx_summary_equals_the_store_and_the_notes_say_what_was_exported(
        data: tuple[Path, Ledger], db: sqlite3.Connection, tmp_path: Path) -> None:
    _, ledger = data
    out = tmp_path / "ledger.xlsx"
    export(db, LedgerFilter(), "xlsx", out, ZONE)
    summary = sheet_rows(out, "汇总")
    assert summary[0] == ("日期", "科室", "类别", "袋数", "重量(kg)")
    names = {"INFECTIOUS": "感染性废物", "SHARPS": "损伤性废物", "PATHOLOGICAL": "病理性废物"}
    want = {(d, dept, names[c]): (n, g) for (d, dept, c), (n, g) in day_totals(ledger.counted()).items()}
    got = {(r[0], r[1], r[2]): (r[3], round(r[4] * 1000)) for r in summary[1:-1]}
    assert got == want
    total = summary[-1]
    assert total[0] == "合计" and total[3] == len(ledger.counted())
    assert round(total[4] * 1000) == sum(b.weight_g for b in ledger.counted())
    notes = dict((r[0], r[1]) for r in sheet_rows(out, "说明"))
    assert notes["时区"] == "Asia/Shanghai" and notes["台账行数(每袋一行, 含作废)"] == len(ledger.bags)


def test_a_filter_selects_the_bags_it_names(data: tuple[Path, Ledger], db: sqlite3.Connection,
                                            tmp_path: Path) -> None:
    _, ledger = data
    f = LedgerFilter.from_params({"from": "2026-11-03", "to": "2026-11-03", "department": "ER",
                                  "category": "sharps"}, ZONE)
    out = tmp_path / "some.xlsx"
    result = export(db, f, "xlsx", out, ZONE)
    want = {b.code for b in ledger.bags if b.department == "ER" and b.category == "SHARPS"
            and b.at.date().isoformat() == "2026-11-03"}
    got = {r[COL["包装编码"]] for r in sheet_rows(out, "台账")[1:]}
    assert got == want and result.rows == len(want) > 0
    notes = dict((r[0], r[1]) for r in sheet_rows(out, "说明"))
    assert notes["筛选: 科室"] == "ER" and notes["筛选: 起始"].startswith("2026-11-03 00:00:00+08:00")


def test_csv_is_the_ledger_sheet_in_utf8_with_a_bom(data: tuple[Path, Ledger], db: sqlite3.Connection,
                                                    tmp_path: Path) -> None:
    _, ledger = data
    out = tmp_path / "ledger.csv"
    export(db, LedgerFilter(), "csv", out, ZONE)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads the Chinese right only with it
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert tuple(rows[0]) == LEDGER_HEADERS and len(rows) == len(ledger.bags) + 1
    weights = {r[COL["包装编码"]]: r[COL["重量(kg)"]] for r in rows[1:]}
    assert all(weights[b.code] == f"{b.weight_g / 1000:.3f}" for b in ledger.bags)


def test_jsonl_carries_every_envelope_exactly_and_the_keys(data: tuple[Path, Ledger], db: sqlite3.Connection,
                                                           tmp_path: Path) -> None:
    _, ledger = data
    out = tmp_path / "ledger.jsonl"
    result = export(db, LedgerFilter(), "jsonl", out, ZONE, ledger.keys())
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert lines[0]["kind"] == "wastecart-ledger-export" and lines[0]["zone"] == "Asia/Shanghai"
    keys = {x["cart"]: x["public_key"] for x in lines if x["kind"] == "key"}
    assert keys == {c.cart: c.public_key for c in ledger.carts}
    envelopes = [x["envelope"] for x in lines if x["kind"] == "record"]
    stored = sorted(ledger.envelopes, key=lambda e: (e["cart"], e["seq"]))
    assert envelopes == stored and result.rows == len(stored)
    assert lines[-1] == {"kind": "end", "records": len(stored), "carts": len(ledger.carts)}
    assert verify_file(out).ok


def test_jsonl_of_a_date_range_takes_whole_seq_ranges(data: tuple[Path, Ledger], db: sqlite3.Connection,
                                                      tmp_path: Path) -> None:
    _, ledger = data
    out = tmp_path / "day.jsonl"
    f = LedgerFilter.from_params({"from": "2026-11-03", "to": "2026-11-03", "cart": "CART-B"}, ZONE)
    export(db, f, "jsonl", out, ZONE, ledger.keys())
    report = verify_file(out)
    seqs = [e["seq"] for e in ledger.envelopes if e["cart"] == "CART-B"
            and e["created_at"].startswith("2026-11-03")]
    assert report.ok and list(report.carts) == ["CART-B"]
    assert report.carts["CART-B"].proven == [[min(seqs), max(seqs)]] and min(seqs) > 1


def test_jsonl_refuses_filters_that_would_cut_a_chain(db: sqlite3.Connection, tmp_path: Path) -> None:
    f = LedgerFilter.from_params({"department": "ICU"}, ZONE)
    with pytest.raises(ExportError, match=r"^department: a jsonl export takes only"):
        export(db, f, "jsonl", tmp_path / "x.jsonl", ZONE)
    assert not list(tmp_path.iterdir())  # no half file left behind


def test_a_record_type_other_than_handover_has_no_ledger_rows(db: sqlite3.Connection, tmp_path: Path) -> None:
    result = export(db, LedgerFilter(type="transfer"), "csv", tmp_path / "t.csv", ZONE)
    assert result.rows == 0


def test_jobs_run_in_the_background_and_expire(data: tuple[Path, Ledger], tmp_path: Path) -> None:
    folder, ledger = data
    now = [1_000_000.0]
    jobs = ExportJobs(folder, LedgerConfig(exports_keep_h=1, exports_running_max=1), ledger.keys(),
                      clock=lambda: now[0])
    started = [jobs.start(LedgerFilter(), fmt, "ops") for fmt in ("xlsx", "jsonl")]
    for job in started:
        assert jobs.wait(job, 30)
        assert job.state == "done" and job.path is not None and job.path.is_file(), job.error
    assert started[0].rows == len(ledger.bags) and started[1].rows == len(ledger.envelopes)
    assert started[0].view()["download"] == f"/exports/{started[0].id}/download"
    assert started[0].filename.endswith(".xlsx") and Counter(j.state for j in jobs.list()) == {"done": 2}
    written = started[0].path
    assert written is not None
    now[0] = written.stat().st_mtime + 3601  # an hour after it was written
    assert jobs.list() == [] and not written.exists()


def test_a_job_that_cannot_read_the_store_fails_with_the_reason(tmp_path: Path) -> None:
    jobs = ExportJobs(tmp_path, LedgerConfig(), None)
    job = jobs.start(LedgerFilter(), "csv", "ops")
    assert jobs.wait(job, 10)
    assert job.state == "failed" and "no gateway database" in job.error


def test_more_bags_than_an_excel_sheet_holds_go_on_further_sheets(data: tuple[Path, Ledger], db: sqlite3.Connection,
                                                                  tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _, ledger = data
    monkeypatch.setattr("gateway.ledger.export.SHEET_ROWS_MAX", 3)  # Excel's limit, scaled down
    out = tmp_path / "ledger.xlsx"
    export(db, LedgerFilter(), "xlsx", out, ZONE, None, None)
    book = load_workbook(out, read_only=True)
    names = book.sheetnames
    book.close()
    parts = -(-len(ledger.bags) // 3)
    assert names == ["台账", *(f"台账({n})" for n in range(2, parts + 1)), "汇总", "说明"]
    codes = [r[COL["包装编码"]] for name in names[:parts] for r in sheet_rows(out, name)[1:]]
    assert sorted(codes) == sorted(b.code for b in ledger.bags)
    assert all(sheet_rows(out, name)[0] == LEDGER_HEADERS for name in names[:parts])


def test_jsonl_without_the_gateway_s_config_carries_the_keys_its_records_were_verified_with(
        data: tuple[Path, Ledger], db: sqlite3.Connection, tmp_path: Path) -> None:
    _, ledger = data
    out = tmp_path / "ledger.jsonl"
    export(db, LedgerFilter(), "jsonl", out, ZONE)  # as `gateway export --data DIR` without --config
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert {k["cart"]: k["public_key"] for k in lines if k["kind"] == "key"} == {
        c.cart: c.public_key for c in ledger.carts}
    report = verify_file(out)
    assert report.ok, report.failures
