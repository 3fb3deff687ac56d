"""Ledger search: records by bag, department, category, person, type, cart and date, newest first.

Reads only the ledger index (``ledger_records``, ``ledger_bags``; migration 6) until a page of ids
is chosen, so a search never decodes an envelope; a record's page (``record_view``) and a bag's
path (``bag_path``) decode the few envelopes they show.  Paging is by key (the cursor is the last
row's ``(at, id)``), not by offset: page 1,000 costs what page 1 costs.

Which index serves which filter (checked with EXPLAIN QUERY PLAN in tests/unit/test_ledger_search.py):
    none / dates      ledger_records_at            cart        ledger_records_cart
    department        ledger_records_department    type        ledger_records_type
    collector         ledger_records_collector     confirmer   ledger_records_confirmer
    bag               ledger_bags' primary key (package_code, record_id), then the record by id
    category          no index of its own: newest first on ledger_records_at, each record's bags by
                      ledger_bags_record (fast for common categories; a rare one walks further)
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge import wire
from edge.catalogue import CATEGORY
from gateway.errors import IngestError
from gateway.ingest.checks import KeyRing
from gateway.ledger.zone import DEFAULT_ZONE, day_range, parse_day, zone

TEXT_FIELDS = ("cart", "department", "category", "collector", "confirmer", "type", "bag")
VALUE_MAX = 64  # characters of a filter value: codes are at most 32, names a little more
PAGE_MAX = 500  # rows a page may ask for
BAG_PREFIX_END = "\U0010ffff"  # above every character: [code, code + this) is every code starting with it
# the record types a ledger holds: the wire's, and the version 2 incident and correction until the wire names them
RECORD_TYPES = wire.RECORD_TYPES
VERDICTS = ("valid", "FORGED", "ALTERED", "no key")  # a record's signature, checked again when shown


@dataclass(frozen=True)
class LedgerFilter:
    """What a search, a summary and an export select.  ``since``/``until``: unix seconds, [since, until).
    ``bag`` matches every package code starting with it (a whole code is its own prefix).  ``first``/
    ``last``: the days the range was given as (kept so that ``to_params`` gives them back)."""

    since: float | None = None
    until: float | None = None
    cart: str | None = None
    department: str | None = None
    category: str | None = None
    collector: str | None = None
    confirmer: str | None = None
    type: str | None = None
    bag: str | None = None
    first: str | None = field(default=None, compare=False)
    last: str | None = field(default=None, compare=False)

    @classmethod
    def from_params(cls, params: Mapping[str, str], tz: ZoneInfo) -> LedgerFilter:
        """From a form or query (``from``/``to`` YYYY-MM-DD in ``tz``, or ``since``/``until`` unix s, and
        the text fields); ValueError naming the field for anything it cannot mean."""
        first_text, last_text = ((params.get(k) or "").strip() for k in ("from", "to"))
        first = parse_day(first_text, "from") if first_text else None
        last = parse_day(last_text, "to") if last_text else None
        if first and last and last < first:
            raise ValueError(f"to: {last} is before from ({first})")
        since, until = day_range(first, last, tz)
        since = _seconds(params, "since", since)
        until = _seconds(params, "until", until)
        values: dict[str, str | None] = {}
        for name in TEXT_FIELDS:
            text = (params.get(name) or "").strip()
            if len(text) > VALUE_MAX:
                raise ValueError(f"{name}: longer than {VALUE_MAX} characters")
            values[name] = _normal(name, text) if text else None
        return cls(since=since, until=until, first=first.isoformat() if first else None,
                   last=last.isoformat() if last else None, **values)

    def to_params(self) -> dict[str, str]:
        """The query that gives this filter back (empty fields left out)."""
        out: dict[str, str] = {}
        if self.first:
            out["from"] = self.first
        elif self.since is not None:
            out["since"] = repr(self.since)
        if self.last:
            out["to"] = self.last
        elif self.until is not None:
            out["until"] = repr(self.until)
        for name in TEXT_FIELDS:
            value = getattr(self, name)
            if value:
                out[name] = value
        return out

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) in (None, "") for f in fields(self))


def _seconds(params: Mapping[str, str], name: str, given: float | None) -> float | None:
    text = (params.get(name) or "").strip()
    if not text:
        return given
    try:
        value = float(text)
    except ValueError as exc:
        raise ValueError(f"{name}: {text!r} is not a unix time in seconds") from exc
    if value != value or abs(value) > 1e11:  # NaN, or beyond year 5000
        raise ValueError(f"{name}: {text!r} is not a unix time in seconds")
    return value


def _normal(name: str, text: str) -> str:
    """Codes are upper case on the wire (a typed ``bag00001`` means BAG00001); types are lower case."""
    if name == "type":
        text = text.lower()
        if text not in RECORD_TYPES:
            raise ValueError(f"type: {text!r} is not a record type ({', '.join(RECORD_TYPES)})")
        return text
    text = text.upper()
    if name == "category" and text not in CATEGORY:
        raise ValueError(f"category: {text!r} is not a waste category ({', '.join(CATEGORY)})")
    return text


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next: str | None  # the cursor of the next page (``after=``), None on the last


def where(f: LedgerFilter, alias: str = "r") -> tuple[list[str], list[Any]]:
    """SQL conditions on ``ledger_records AS {alias}`` for ``f`` and their parameters."""
    conds: list[str] = []
    args: list[Any] = []
    if f.since is not None:
        conds.append(f"{alias}.at >= ?")
        args.append(f.since)
    if f.until is not None:
        conds.append(f"{alias}.at < ?")
        args.append(f.until)
    for name in ("cart", "department", "collector", "confirmer", "type"):
        value = getattr(f, name)
        if value:
            conds.append(f"{alias}.{name} = ?")
            args.append(value)
    if f.bag:
        conds.append(f"{alias}.id IN (SELECT record_id FROM ledger_bags WHERE package_code >= ? AND package_code < ?)")
        args += [f.bag, f.bag + BAG_PREFIX_END]
    if f.category:
        conds.append(f"EXISTS (SELECT 1 FROM ledger_bags c WHERE c.record_id = {alias}.id AND c.category = ?)")
        args.append(f.category)
    return conds, args


_COLUMNS = "r.id, r.cart, r.seq, r.type, r.at, r.department, r.collector, r.confirmer, r.bags, r.weight_g, r.refers_to"


def search(db: sqlite3.Connection, f: LedgerFilter, limit: int = 50, after: str | None = None,
           tz: ZoneInfo | None = None) -> Page:
    """One page of matching records, newest first; ``after``: the cursor of the page before
    (ValueError naming ``after`` if it is not one)."""
    limit = max(1, min(PAGE_MAX, limit))
    conds, args = where(f)
    if after:
        at, rid = decode_cursor(after)
        conds.append("(r.at, r.id) < (?, ?)")  # a range of whichever (…, at) index the filter uses
        args += [at, rid]
    sql = (f"SELECT {_COLUMNS} FROM ledger_records r" + (" WHERE " + " AND ".join(conds) if conds else "")
           + " ORDER BY r.at DESC, r.id DESC LIMIT ?")
    got = db.execute(sql, (*args, limit + 1)).fetchall()
    tz = tz or ledger_zone(db)
    rows = [_row(r, tz) for r in got[:limit]]
    nxt = encode_cursor(rows[-1]["at"], rows[-1]["id"]) if len(got) > limit else None
    return Page(rows, nxt)


def _row(r: tuple[Any, ...], tz: ZoneInfo) -> dict[str, Any]:
    rid, cart, seq, rtype, at, department, collector, confirmer, bags, grams, refers = r
    return {"id": rid, "cart": cart, "seq": seq, "type": rtype, "at": at, "time": show_time(at, tz),
            "department": department, "collector": collector, "confirmer": confirmer, "bags": bags,
            "weight_g": grams, "kg": kg(grams), "refers_to": refers}


def encode_cursor(at: float, rid: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([at, rid]).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[float, str]:
    try:
        at, rid = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if isinstance(at, (int, float)) and not isinstance(at, bool) and isinstance(rid, str):
            return float(at), rid
    except (ValueError, TypeError, binascii.Error):
        pass
    raise ValueError("after: not a page cursor of this ledger (follow the page's own link)")


def ledger_zone(db: sqlite3.Connection) -> ZoneInfo:
    """The zone the index's days were counted in (``ledger_meta``), else the default."""
    row = db.execute("SELECT value FROM ledger_meta WHERE key = 'zone'").fetchone()
    try:
        return zone(row[0]) if row else zone(DEFAULT_ZONE)
    except ValueError:
        return zone(DEFAULT_ZONE)


def show_time(at: float | None, tz: ZoneInfo) -> str:
    """``2026-12-07 18:02:03 +08:00``: a time as the ledger shows it, in its zone with the offset."""
    if at is None:
        return "-"
    text = datetime.fromtimestamp(at, tz).strftime("%Y-%m-%d %H:%M:%S %z")
    return text[:-2] + ":" + text[-2:]


def kg(grams: int | None) -> float | None:
    return None if grams is None else round(grams / 1000, 3)


# ---- one record ------------------------------------------------------------------------------------

_RECORD_SQL = ("SELECT id, site, cart, seq, type, created_at, hash, prev_hash, envelope, received_at, chain,"
               " forward_state, attempts, last_error, accepted_at, sent_at, discarded_at, discarded_by,"
               " discard_reason FROM records WHERE id = ?")


def verdict(envelope: Mapping[str, Any], keys: KeyRing | None) -> tuple[str, str]:
    """The seal checked now with the key the gateway has now: (one of VERDICTS, why)."""
    cart = str(envelope.get("cart", ""))
    if keys is None:
        return "no key", "no key ring given"
    try:
        key = keys.get(cart)
    except IngestError as exc:
        return "no key", str(exc)
    try:
        wire.verify_seal(envelope, key)
    except wire.ContractError as exc:
        try:
            altered = envelope.get("hash") != wire.record_hash(envelope)
        except ValueError:
            altered = True
        return ("ALTERED" if altered else "FORGED"), str(exc)
    return "valid", f"Ed25519 signature of cart {cart} verified"


def record_view(db: sqlite3.Connection, record_id: str, keys: KeyRing | None,
                tz: ZoneInfo | None = None) -> dict[str, Any] | None:
    """Everything the record's page shows; None if no record has this id."""
    row = db.execute(_RECORD_SQL, (record_id,)).fetchone()
    if row is None:
        return None
    (rid, site, cart, seq, rtype, created_at, hash_, prev_hash, envelope_text, received_at, chain, state,
     attempts, last_error, accepted_at, sent_at, discarded_at, discarded_by, discard_reason) = row
    tz = tz or ledger_zone(db)
    envelope = json.loads(envelope_text)
    seal, why = verdict(envelope, keys)
    indexed = db.execute(f"SELECT {_COLUMNS} FROM ledger_records r WHERE r.id = ?", (rid,)).fetchone()
    refers_to = indexed[-1] if indexed else None
    pointing = db.execute(f"SELECT {_COLUMNS} FROM ledger_records r WHERE r.refers_to = ? ORDER BY r.at, r.id",
                          (rid,)).fetchall()
    referred = [_reference(db, r, tz) for r in pointing]
    target = None
    if refers_to:
        hit = db.execute(f"SELECT {_COLUMNS} FROM ledger_records r WHERE r.id = ?", (refers_to,)).fetchone()
        target = _reference(db, hit, tz) if hit else {"id": refers_to, "missing": True}
    bags = [{"package_code": code, "category": cat, "department": dept, "weight_g": grams, "kg": kg(grams),
             "status": status, "voided_by": voided}
            for code, cat, dept, grams, status, voided in db.execute(
                "SELECT package_code, category, department, weight_g, status, voided_by FROM ledger_bags"
                " WHERE record_id = ? ORDER BY rowid", (rid,))]
    return {
        "id": rid, "site": site, "cart": cart, "seq": seq, "type": rtype, "created_at": created_at,
        "created": show_time(indexed[4], tz) if indexed else created_at, "hash": hash_, "prev_hash": prev_hash,
        "envelope": envelope, "envelope_text": json.dumps(envelope, ensure_ascii=False, indent=2, sort_keys=True),
        "signature": seal, "signature_detail": why, "chain": chain,
        "received_at": received_at, "received": show_time(received_at, tz),
        "forward_state": state, "attempts": attempts, "last_error": last_error,
        "sent_at": sent_at, "accepted_at": accepted_at, "accepted": show_time(accepted_at, tz),
        "discarded": None if discarded_at is None else {"at": discarded_at, "time": show_time(discarded_at, tz),
                                                        "by": discarded_by, "reason": discard_reason},
        "index": _row(indexed, tz) if indexed else None,
        "bags": bags, "referred_by": referred, "refers_to": target,
    }


def _reference(db: sqlite3.Connection, r: tuple[Any, ...], tz: ZoneInfo) -> dict[str, Any]:
    """A record that points at another (a void, a correction) or is pointed at, with the why of a void."""
    out = _row(r, tz)
    text = db.execute("SELECT envelope FROM records WHERE id = ?", (out["id"],)).fetchone()
    body = json.loads(text[0]).get("body", {}) if text else {}
    body = body if isinstance(body, dict) else {}
    out["reason"] = body.get("reason") if isinstance(body.get("reason"), str) else None
    out["package_code"] = body.get("package_code") if isinstance(body.get("package_code"), str) else None
    return out


# ---- one bag ---------------------------------------------------------------------------------------

_PATH_SQL = ("SELECT b.record_id, b.type, b.cart, b.at, b.category, b.department, b.weight_g, b.status, b.voided_by,"
             " r.seq, r.collector, r.confirmer FROM ledger_bags b LEFT JOIN ledger_records r ON r.id = b.record_id"
             " WHERE b.package_code = ? ORDER BY b.at, r.seq")


def bag_path(db: sqlite3.Connection, package_code: str, tz: ZoneInfo | None = None) -> list[dict[str, Any]]:
    """Every record that names the bag, in time order (handed over -> checked in -> transferred),
    and the voids that took it out of a record; [] if no record names it."""
    tz = tz or ledger_zone(db)
    code = package_code.strip().upper()
    steps: list[dict[str, Any]] = []
    for rid, rtype, cart, at, cat, dept, grams, status, voided, seq, collector, confirmer in db.execute(
            _PATH_SQL, (code,)).fetchall():
        step = {"record_id": rid, "type": rtype, "cart": cart, "seq": seq, "at": at, "time": show_time(at, tz),
                "category": cat, "department": dept, "weight_g": grams, "kg": kg(grams), "status": status,
                "voided_by": voided, "collector": collector, "confirmer": confirmer}
        step.update(_detail(db, rid, rtype, code))
        steps.append(step)
    named = {s["record_id"] for s in steps}
    for void_id in sorted({s["voided_by"] for s in steps if s["voided_by"] and s["voided_by"] not in named}):
        hit = db.execute(f"SELECT {_COLUMNS} FROM ledger_records r WHERE r.id = ?", (void_id,)).fetchone()
        if hit is None:
            continue
        ref = _reference(db, hit, tz)
        steps.append({"record_id": ref["id"], "type": ref["type"], "cart": ref["cart"], "seq": ref["seq"],
                      "at": ref["at"], "time": ref["time"], "category": None, "department": ref["department"],
                      "weight_g": None, "kg": None, "status": "VOIDED", "voided_by": None,
                      "collector": ref["collector"], "confirmer": ref["confirmer"], "reason": ref["reason"],
                      "voids": ref["refers_to"]})
    steps.sort(key=lambda s: (s["at"], s["seq"] or 0))
    return steps


def _detail(db: sqlite3.Connection, rid: str, rtype: str, code: str) -> dict[str, Any]:
    """What a step of a bag's path says beyond the index: the room and both weights of a check-in (and,
    v2, its result, the bag's dwell and flag), the vehicle and manifest of a transfer (v2: the plate,
    the bag's disposal method, the final destination, its dwell in storage), the reason of a void,
    what an incident says (one envelope read per step)."""
    text = db.execute("SELECT envelope FROM records WHERE id = ?", (rid,)).fetchone()
    body = json.loads(text[0]).get("body") if text else None
    if not isinstance(body, dict):
        return {}
    if rtype == "storage_in":
        item = _item(body.get("packages"), code)
        return {"facility": body.get("facility"), "facility_name": _str(body.get("facility_name")),
                "expected_g": item.get("expected_g"), "reweigh_g": item.get("reweigh_g"),
                "overdue": item.get("overdue"), "warn": item.get("warn"), "dwell_s": _int(item.get("dwell_s")),
                "result": _str(body.get("result"))}
    if rtype == "transfer":
        manifest: dict[str, Any] = body["manifest"] if isinstance(body.get("manifest"), dict) else {}
        carrier: dict[str, Any] = body["carrier"] if isinstance(body.get("carrier"), dict) else {}
        line = _item(body.get("lines"), code)
        v2 = body.get("body_version") == 2
        return {"vehicle": carrier.get("vehicle"), "plate": _str(carrier.get("plate")),
                "manifest": manifest.get("number"), "manifest_type": manifest.get("type"),
                "disposal_method": _str(line.get("disposal_method")),
                "final_destination": _str(body.get("final_destination")) if v2 else None,
                "overdue": line.get("overdue"), "warn": line.get("warn"), "dwell_s": _int(line.get("dwell_s"))}
    if rtype == "void":
        return {"reason": body.get("reason"), "voids": body.get("voided_record_id")}
    if rtype == "incident":
        confirmed: dict[str, Any] = body["confirmed_by"] if isinstance(body.get("confirmed_by"), dict) else {}
        return {"facility": body.get("facility"), "facility_name": _str(body.get("facility_name")),
                "incident_type": _str(body.get("incident_type")), "reason": _str(body.get("description")),
                "confirmed_name": _str(confirmed.get("name"))}
    return {}


def _item(items: Any, code: str) -> dict[str, Any]:
    """The line or package of ``code`` in a body's list ({} if none)."""
    found = next((x for x in items if isinstance(x, dict) and x.get("package_code") == code), None) \
        if isinstance(items, list) else None
    return found or {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
