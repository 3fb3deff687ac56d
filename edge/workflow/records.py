"""The records the workflow commits (waste-domain §8) and what a committed record does to the bags.

``apply_record`` is the one place that says where bags are after a record: the machine applies
the body it committed once the ledger has it, and ``replay`` applies the ledger's records at
start-up — so a restarted cart knows exactly what a running one knew.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from edge.catalogue import BODY_VERSION, CATEGORY, LABEL_NOTE, VOID_REASON
from edge.roster import Roster
from edge.workflow.state import (
    Bag,
    Correction,
    LastRecord,
    Limits,
    Line,
    LostReport,
    Round,
    Signer,
    State,
    Storage,
    Transfer,
    VoidScan,
)

# record types that say where bags are (a correction: what a departed transfer's manifest is)
REPLAYED = ("handover", "storage_in", "transfer", "void", "incident", "correction")


def iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds")


def stamp(s: State, at: datetime) -> str:
    """A time as records write it: ISO 8601 in the cart's zone, with its offset (+08:00 by default)."""
    return iso(at.astimezone(s.zone))


def waste_code(category: str) -> str:
    return CATEGORY[category].waste_code


def totals(lines: Iterable[Line | Bag]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for line in lines:
        tt = out.setdefault(line.category, {"category": line.category, "count": 0, "weight_g": 0})
        tt["count"] += 1
        tt["weight_g"] += line.weight_g
    return list(out.values())


def dwell(limit_s: int, warn_pct: int, since: datetime, at: datetime) -> tuple[int, bool, bool]:
    """(seconds since ``since``, past the limit, past ``warn_pct`` % of it)."""
    seconds = max(0, int((at - since).total_seconds()))
    return seconds, seconds > limit_s, seconds * 100 >= limit_s * warn_pct


def signer(roster: Roster, who: Signer) -> dict[str, Any]:
    return {"person_id": who.person_id, "name": roster.name_of(who.person_id), "role": who.role,
            "auth_method": who.auth_method}


def collector(s: State, rnd: Round) -> dict[str, Any]:
    return {"person_id": rnd.collector, "name": s.roster.name_of(rnd.collector), "device_id": s.cart}


def _common(s: State) -> dict[str, Any]:
    return {"body_version": BODY_VERSION, "org": s.org, "org_name": s.roster.org_name}


def note_words(notes: Iterable[str]) -> str:
    """The 备注 line of a label: the chosen notes' Chinese words."""
    return "；".join(LABEL_NOTE[n].zh for n in notes)


def handover_body(s: State, *, nurse: str, at: datetime, auth: str = "card") -> dict[str, Any]:
    """The handover record (waste-domain §8.4) for the lines at the current stop, signed by ``nurse``
    (the machine has checked the roster allows it).  去向: the roster's first storage room."""
    rnd, stop = s.round, s.stop
    if rnd is None or stop is None:
        raise ValueError("a handover needs an open round at a department")
    room_id, room = s.roster.destination
    lines = []
    for ln in stop.lines:
        line: dict[str, Any] = {"package_code": ln.package_code, "category": ln.category,
                                "waste_code": waste_code(ln.category), "weight_g": ln.weight_g,
                                "weighing": ln.weighing, "notes": list(ln.notes)}
        if ln.components:
            line["main_components"] = ln.components
        lines.append(line)
    return {
        **_common(s),
        "round_id": rnd.id,
        "handover_at": stamp(s, at),
        "department": stop.department,
        "department_name": s.roster.department_name(stop.department),
        "from_party": signer(s.roster, Signer(nurse, "nurse", auth)),
        "to_party": collector(s, rnd),
        "lines": lines,
        "totals": totals(stop.lines),
        "destination": {"facility": room_id, "name": room.name},
        "roster": s.roster.stamp(),
    }


def tolerance_g(limits: Limits, expected_g: int) -> int:
    """Allowed |re-weigh - expected|: a fixed floor (scale uncertainty) or a share, the larger."""
    return max(limits.tolerance_g, expected_g * limits.tolerance_pct // 100)


def _permille(delta: int, expected: int) -> int:
    return round(delta * 1000 / expected) if expected else 0


def storage_in_body(s: State, rnd: Round, room: Storage, at: datetime, keeper: Signer) -> dict[str, Any]:
    """The storage-in record (waste-domain §8.5, direction IN) with its reconciliation against the
    bags the cart carries: per bag OK / DEVIATION / MISSING / IN_BATCH, the ward-to-storage dwell,
    and a summary.  A missing bag (not declared lost by an incident first) makes it REJECTED: then
    nothing is stored and the bags stay on the cart; deviations and overdue bags are noted."""
    lim = s.limits
    reweighed = {r.package_code: r for r in room.reweighs}
    in_batch = set(room.batch.package_codes) if room.batch else set()
    packages: list[dict[str, Any]] = []
    counts = {"missing": 0, "deviation": 0, "overdue": 0, "warn": 0}
    expected_present = reweigh_sum = 0
    for bag in s.carried:
        seconds, overdue, warn = dwell(lim.ward_max_s, lim.warn_pct, bag.handed_over_at, at)
        entry: dict[str, Any] = {
            "package_code": bag.package_code, "category": bag.category, "waste_code": waste_code(bag.category),
            "department": bag.department, "department_name": s.roster.department_name(bag.department),
            "handover_record_id": bag.record_id, "handed_over_at": stamp(s, bag.handed_over_at),
            "expected_g": bag.weight_g, "reweigh_g": None, "delta_g": None,
            "dwell_s": seconds, "overdue": overdue, "warn": warn}
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
        counts["warn"] += warn
        packages.append(entry)
    body: dict[str, Any] = {
        **_common(s), "facility": room.room, "facility_name": s.roster.room_name(room.room), "direction": "IN",
        "moved_at": stamp(s, at), "round_id": rnd.id,
        "operator": collector(s, rnd), "keeper": signer(s.roster, keeper),
        "packages": packages,
        "tolerance": {"min_g": lim.tolerance_g, "pct": lim.tolerance_pct},
        "limits": {"ward_max_s": lim.ward_max_s, "warn_pct": lim.warn_pct},
    }
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
        "overdue_count": counts["overdue"], "warn_count": counts["warn"],
        "expected_g": expected_present, "reweigh_g": reweigh_sum,
        "delta_g": reweigh_sum - expected_present,
        "delta_permille": _permille(reweigh_sum - expected_present, expected_present),
        "missing_g": sum(b.weight_g for b in s.carried
                         if b.package_code not in reweighed and b.package_code not in in_batch),
    }
    noted = counts["deviation"] or counts["overdue"] or room.incidents
    body["result"] = "REJECTED" if counts["missing"] else "ACCEPTED_WITH_NOTE" if noted else "ACCEPTED"
    body["incidents"] = list(room.incidents)
    body["roster"] = s.roster.stamp()
    return body


def incident_body(s: State, rnd: Round, room: Storage, report: LostReport, approver: Signer,
                  at: datetime) -> dict[str, Any]:
    """Bags declared lost (Regulations Art. 13/14): which, how heavy, whose, who says so."""
    lost = [b for b in s.carried if b.package_code in report.package_codes]
    body: dict[str, Any] = {
        **_common(s), "incident_type": "LOST", "occurred_at": stamp(s, at), "facility": room.room,
        "facility_name": s.roster.room_name(room.room), "round_id": rnd.id,
        "bags": [{"package_code": b.package_code, "category": b.category, "waste_code": waste_code(b.category),
                  "weight_g": b.weight_g, "department": b.department,
                  "department_name": s.roster.department_name(b.department), "handover_record_id": b.record_id,
                  "handed_over_at": stamp(s, b.handed_over_at)} for b in lost],
        "total_g": sum(b.weight_g for b in lost),
        "reported_by": collector(s, rnd), "confirmed_by": signer(s.roster, approver),
        "description": report.description,
        "roster": s.roster.stamp(),
    }
    if room.keeper is not None:
        body["keeper"] = signer(s.roster, room.keeper)
    return body


def transfer_body(s: State, rnd: Round, visit: Transfer, at: datetime) -> dict[str, Any]:
    """The hand-over to the transporter (waste-domain §8.6): what left, on which vehicle, signed by
    its driver, under which manifest, the in-storage dwell per bag, and — from the receiver the
    roster names for the vehicle — the disposal method per category (处置方法) and 最终去向."""
    lim = s.limits
    vehicle = s.roster.vehicles[visit.vehicle]
    carrier = s.roster.carriers[vehicle.carrier]
    receiver = s.roster.receivers[vehicle.receiver]
    assert visit.manifest is not None and visit.driver is not None  # the action checked both
    lines, overdue_n, warn_n = [], 0, 0
    for b in s.stored:
        seconds, overdue, warn = dwell(lim.storage_overdue_s, lim.warn_pct, b.stored_at or b.handed_over_at, at)
        overdue_n += overdue
        warn_n += warn
        lines.append({"package_code": b.package_code, "category": b.category, "waste_code": waste_code(b.category),
                      "weight_g": b.weight_g, "facility": b.facility or "UNKNOWN",
                      "stored_at": stamp(s, b.stored_at or b.handed_over_at), "dwell_s": seconds,
                      "overdue": overdue, "warn": warn, "disposal_method": receiver.disposal[b.category]})
    methods = list(dict.fromkeys(receiver.disposal[b.category] for b in s.stored))
    carrier_part: dict[str, Any] = {"vehicle": visit.vehicle, "plate": vehicle.plate, "org": vehicle.carrier,
                                    "name": carrier.name, "driver": signer(s.roster, visit.driver)}
    if carrier.licence:
        carrier_part["licence"] = carrier.licence
    receiver_part = {"id": vehicle.receiver, "name": receiver.name, "licence": receiver.licence}
    receiver_part.update({k: v for k, v in (("uscc", receiver.uscc), ("address", receiver.address)) if v})
    return {
        **_common(s), "handed_over_at": stamp(s, at), "round_id": rnd.id,
        "from_party": collector(s, rnd),
        "carrier": carrier_part, "receiver": receiver_part,
        "manifest": {"type": visit.manifest_type, "number": visit.manifest},
        "lines": lines,
        "totals": totals(s.stored),
        "disposal_method": "、".join(methods), "final_destination": receiver.destination,
        "limits": {"storage_max_s": lim.storage_overdue_s, "warn_pct": lim.warn_pct},
        "summary": {"count": len(s.stored), "weight_g": sum(b.weight_g for b in s.stored),
                    "overdue_count": overdue_n, "warn_count": warn_n},
        "roster": s.roster.stamp(),
    }


def void_body(s: State, rnd: Round, *, at: datetime, void: VoidScan, approver: Signer) -> dict[str, Any]:
    """A void (waste-domain §8 conventions): a new record pointing at the original, with a reason
    from the list and a supervisor's confirmation; the original is never edited."""
    words = VOID_REASON[void.reason_code].zh
    reason = f"{words}：{void.reason}" if void.reason else words
    return {"body_version": BODY_VERSION, "org": s.org, "voided_at": stamp(s, at),
            "voided_record_id": void.record_id, "voided_type": void.rtype, "package_code": void.package,
            "reason_code": void.reason_code, "reason": reason[:200],
            "by": collector(s, rnd), "approved_by": signer(s.roster, approver), "roster": s.roster.stamp()}


def correction_body(s: State, rnd: Round, *, at: datetime, fix: Correction, approver: Signer) -> dict[str, Any]:
    """A departed transfer's manifest corrected: a new record pointing at it (from -> to), with a
    reason and a supervisor's confirmation; the transfer is never edited nor voided."""
    assert fix.manifest is not None  # the machine asks for the number twice first
    words = VOID_REASON[fix.reason_code].zh
    reason = f"{words}：{fix.reason}" if fix.reason else words
    return {"body_version": BODY_VERSION, "org": s.org, "corrected_at": stamp(s, at),
            "corrected_record_id": fix.record_id, "corrected_type": "transfer",
            "changes": {"manifest": {"from": {"type": fix.was[0], "number": fix.was[1]},
                                     "to": {"type": fix.manifest_type, "number": fix.manifest}}},
            "reason_code": fix.reason_code, "reason": reason[:200],
            "by": collector(s, rnd), "approved_by": signer(s.roster, approver), "roster": s.roster.stamp()}



def apply_record(s: State, record_id: str, rtype: str, seq: int, body: dict[str, Any]) -> State:
    """Where the bags are after record ``record_id`` (of type ``rtype``, at ``seq``) was committed.

    Every bag is in exactly one place: on the cart (``carried``), in storage (``stored``), gone on a
    vehicle (transfer), voided, or lost (incident) — version 1 bodies (written before incidents and
    REJECTED check-ins existed) are applied as they were then."""
    carried, stored, last = s.carried, s.stored, s.last_record
    before = (carried, stored)
    if rtype == "handover":
        at = datetime.fromisoformat(body["handover_at"])
        carried += tuple(Bag(ln["package_code"], ln["category"], ln["weight_g"], body["department"], at, record_id)
                         for ln in body["lines"])
    elif rtype == "storage_in":
        if body.get("result") == "REJECTED":
            pass                                   # nothing checked in: the bags stay on the cart
        else:
            moved = datetime.fromisoformat(body["moved_at"])
            stored += tuple(
                Bag(p["package_code"], p["category"], p["reweigh_g"] or p["expected_g"], p["department"],
                    datetime.fromisoformat(p["handed_over_at"]), p["handover_record_id"], body["facility"], moved)
                for p in body["packages"] if p["status"] != "MISSING")
            carried = ()
    elif rtype == "incident":
        gone = {b["package_code"] for b in body["bags"]}
        carried = tuple(b for b in carried if b.package_code not in gone)
        stored = tuple(b for b in stored if b.package_code not in gone)
    elif rtype == "transfer":
        left = {ln["package_code"] for ln in body["lines"]}   # every stored bag (either body version)
        stored = tuple(b for b in stored if b.package_code not in left)
        m = body["manifest"]
        return replace(s, stored=stored, last_record=LastRecord(record_id, rtype, seq, before,
                                                                (m["type"], m["number"])))
    elif rtype == "correction":   # no bag moves; the transfer stays the last record, with its new number
        to = body["changes"]["manifest"]["to"]
        if last is not None and last.record_id == body["corrected_record_id"]:
            return replace(s, last_record=replace(last, manifest=(to["type"], to["number"])))
        return s
    elif rtype == "void":
        if last is not None and body.get("voided_record_id") == last.record_id and not body.get("package_code"):
            carried, stored = last.before
        else:
            gone_code = body.get("package_code")
            carried = tuple(b for b in carried if b.package_code != gone_code)
            stored = tuple(b for b in stored if b.package_code != gone_code)
    else:
        return s
    return replace(s, carried=carried, stored=stored, last_record=LastRecord(record_id, rtype, seq, before))


def replay(s: State, records: Iterable[tuple[str, str, int, dict[str, Any]]]) -> State:
    """Rebuild what the cart carries and has in storage from its own committed records
    ``(record_id, rtype, seq, body)`` in seq order: the ledger is the truth, and a restarted cart
    must still refuse a bag handed over before the restart (and reconcile it at storage-in).
    Records of either body version replay (``edge.wire.schema.body_version``)."""
    for record_id, rtype, seq, body in records:
        s = apply_record(s, record_id, rtype, seq, body)
    return s


__all__ = ["REPLAYED", "apply_record", "collector", "correction_body", "dwell", "handover_body", "incident_body", "iso",
           "note_words", "replay", "signer", "stamp", "storage_in_body", "tolerance_g", "totals",
           "transfer_body", "void_body", "waste_code"]
