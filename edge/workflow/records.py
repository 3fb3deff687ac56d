"""The records the workflow commits (waste-domain §8) and what a committed record does to the bags.

``apply_record`` is the one place that says where bags are after a record: the machine applies
the body it committed once the ledger has it, and ``replay`` applies the ledger's records at
start-up — so a restarted cart knows exactly what a running one knew.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from edge.catalogue import CATEGORY
from edge.workflow.state import Bag, LastRecord, Limits, Line, Round, State, Storage, Transfer

_NATIONAL_MANIFEST = re.compile(r"^\d{14}$")  # national electronic manifest number (waste-domain §8.6)
REPLAYED = ("handover", "storage_in", "transfer", "void")  # record types that say where bags are


def iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds")


def waste_code(category: str) -> str:
    return CATEGORY[category].waste_code


def totals(lines: Iterable[Line | Bag]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for line in lines:
        tt = out.setdefault(line.category, {"category": line.category, "count": 0, "weight_g": 0})
        tt["count"] += 1
        tt["weight_g"] += line.weight_g
    return list(out.values())


def handover_body(s: State, *, nurse: str, at: datetime, auth: str = "card") -> dict[str, Any]:
    """The handover record (waste-domain §8.4) for the lines at the current stop."""
    rnd, stop = s.round, s.stop
    if rnd is None or stop is None:
        raise ValueError("a handover needs an open round at a department")
    return {
        "org": s.org,
        "round_id": rnd.id,
        "handover_at": iso(at),
        "department": stop.department,
        "from_party": {"person_id": nurse, "auth_method": auth},
        "to_party": {"person_id": rnd.collector, "device_id": s.cart},
        "lines": [
            {"package_code": ln.package_code, "category": ln.category, "waste_code": waste_code(ln.category),
             "weight_g": ln.weight_g, "weighing": ln.weighing}
            for ln in stop.lines
        ],
        "totals": totals(stop.lines),
        "destination": None,
    }


def tolerance_g(limits: Limits, expected_g: int) -> int:
    """Allowed |re-weigh - expected|: a fixed floor (scale uncertainty) or a share, the larger."""
    return max(limits.tolerance_g, expected_g * limits.tolerance_pct // 100)


def _permille(delta: int, expected: int) -> int:
    return round(delta * 1000 / expected) if expected else 0


def storage_in_body(s: State, rnd: Round, room: Storage, at: datetime) -> dict[str, Any]:
    """The storage-in record (waste-domain §8.5, direction IN) with its reconciliation against
    the bags handed over since the last check-in: per bag OK / DEVIATION / MISSING / IN_BATCH,
    overdue flags, and a summary.  Problems are recorded (ACCEPTED_WITH_NOTE), never hidden."""
    lim = s.limits
    reweighed = {r.package_code: r for r in room.reweighs}
    in_batch = set(room.batch.package_codes) if room.batch else set()
    packages: list[dict[str, Any]] = []
    counts = {"missing": 0, "deviation": 0, "overdue": 0}
    expected_present = reweigh_sum = 0
    for bag in s.carried:
        overdue = (at - bag.handed_over_at).total_seconds() > lim.storage_overdue_s
        entry: dict[str, Any] = {
            "package_code": bag.package_code, "category": bag.category, "waste_code": waste_code(bag.category),
            "department": bag.department, "handover_record_id": bag.record_id,
            "handed_over_at": iso(bag.handed_over_at), "expected_g": bag.weight_g, "reweigh_g": None,
            "delta_g": None, "overdue": overdue}
        r = reweighed.get(bag.package_code)
        if r is not None:
            delta = r.weight_g - bag.weight_g
            status = "DEVIATION" if abs(delta) > tolerance_g(lim, bag.weight_g) else "OK"
            entry.update(reweigh_g=r.weight_g, delta_g=delta, weighing=r.weighing)
            expected_present += bag.weight_g
            reweigh_sum += r.weight_g
        elif bag.package_code in in_batch:
            status = "IN_BATCH"
            expected_present += bag.weight_g
        else:
            status = "MISSING"
        entry["status"] = status
        counts["missing"] += status == "MISSING"
        counts["deviation"] += status == "DEVIATION"
        counts["overdue"] += overdue
        packages.append(entry)
    body: dict[str, Any] = {
        "org": s.org, "facility": room.room, "direction": "IN", "moved_at": iso(at),
        "operator": {"person_id": rnd.collector, "device_id": s.cart},
        "packages": packages,
        "tolerance": {"min_g": lim.tolerance_g, "pct": lim.tolerance_pct},
        "overdue_after_s": lim.storage_overdue_s,
        "round_id": rnd.id,
    }
    if room.keeper is not None:
        body["keeper"] = {"person_id": room.keeper, "auth_method": "card"}
    if room.batch is not None:
        expected = sum(b.weight_g for b in s.carried if b.package_code in in_batch)
        delta = room.batch.weight_g - expected
        status = "DEVIATION" if abs(delta) > tolerance_g(lim, expected) else "OK"
        counts["deviation"] += status == "DEVIATION"
        reweigh_sum += room.batch.weight_g
        body["batch"] = {"package_codes": list(room.batch.package_codes), "expected_g": expected,
                         "reweigh_g": room.batch.weight_g, "delta_g": delta,
                         "delta_permille": _permille(delta, expected), "status": status,
                         "weighing": room.batch.weighing}
    body["summary"] = {
        "expected_count": len(s.carried), "present_count": len(s.carried) - counts["missing"],
        "missing_count": counts["missing"], "deviation_count": counts["deviation"],
        "overdue_count": counts["overdue"], "expected_g": expected_present, "reweigh_g": reweigh_sum,
        "delta_g": reweigh_sum - expected_present,
        "delta_permille": _permille(reweigh_sum - expected_present, expected_present),
        "missing_g": sum(b.weight_g for b in s.carried
                         if b.package_code not in reweighed and b.package_code not in in_batch),
    }
    body["result"] = "ACCEPTED" if not any(counts.values()) else "ACCEPTED_WITH_NOTE"
    return body


def transfer_body(s: State, rnd: Round, visit: Transfer, manifest: str, at: datetime) -> dict[str, Any]:
    """The hand-over to the transporter (waste-domain §8.6, the cart's part: what left, on which
    vehicle, under which manifest).  Disposal method and final destination come from the receiver."""
    return {
        "org": s.org, "handed_over_at": iso(at),
        "from_party": {"person_id": rnd.collector, "device_id": s.cart},
        "carrier": {"vehicle": visit.vehicle},
        "manifest": {"type": "national" if _NATIONAL_MANIFEST.match(manifest) else "local", "number": manifest},
        "lines": [{"package_code": b.package_code, "category": b.category, "waste_code": waste_code(b.category),
                   "weight_g": b.weight_g, "facility": b.facility or "UNKNOWN"} for b in s.stored],
        "totals": totals(s.stored),
        "disposal_method": None, "final_destination": None,
        "round_id": rnd.id,
    }


def void_body(s: State, rnd: Round, *, at: datetime, reason: str, record_id: str | None, rtype: str | None,
              package: str | None = None) -> dict[str, Any]:
    """A void (waste-domain §8 conventions): a new record pointing at the original, with a reason."""
    return {"org": s.org, "voided_at": iso(at), "voided_record_id": record_id, "voided_type": rtype,
            "package_code": package, "reason": reason,
            "by": {"person_id": rnd.collector, "device_id": s.cart}}


def apply_record(s: State, record_id: str, rtype: str, seq: int, body: dict[str, Any]) -> State:
    """Where the bags are after record ``record_id`` (of type ``rtype``, at ``seq``) was committed."""
    carried, stored, last = s.carried, s.stored, s.last_record
    before = (carried, stored)
    if rtype == "handover":
        at = datetime.fromisoformat(body["handover_at"])
        carried += tuple(Bag(ln["package_code"], ln["category"], ln["weight_g"], body["department"], at, record_id)
                         for ln in body["lines"])
    elif rtype == "storage_in":
        stored += tuple(
            Bag(p["package_code"], p["category"], p["reweigh_g"] or p["expected_g"], p["department"],
                datetime.fromisoformat(p["handed_over_at"]), p["handover_record_id"], body["facility"])
            for p in body["packages"] if p["status"] != "MISSING")
        carried = ()
    elif rtype == "transfer":
        stored = ()
    elif rtype == "void":
        if last is not None and body.get("voided_record_id") == last.record_id and not body.get("package_code"):
            carried, stored = last.before
        else:
            gone = body.get("package_code")
            carried = tuple(b for b in carried if b.package_code != gone)
            stored = tuple(b for b in stored if b.package_code != gone)
    else:
        return s
    return replace(s, carried=carried, stored=stored, last_record=LastRecord(record_id, rtype, seq, before))


def replay(s: State, records: Iterable[tuple[str, str, int, dict[str, Any]]]) -> State:
    """Rebuild what the cart carries and has in storage from its own committed records
    ``(record_id, rtype, seq, body)`` in seq order: the ledger is the truth, and a restarted cart
    must still refuse a bag handed over before the restart (and reconcile it at storage-in)."""
    for record_id, rtype, seq, body in records:
        s = apply_record(s, record_id, rtype, seq, body)
    return s


__all__ = ["REPLAYED", "apply_record", "handover_body", "iso", "replay", "storage_in_body", "tolerance_g",
           "totals", "transfer_body", "void_body", "waste_code"]
