"""Version-2 record bodies written by hand, one function per record type, for the gateway's ledger tests.

The cart's builders of these bodies (``edge.workflow.records``) are being written beside this; until
then the gateway's tests take their v2 bodies from here, each checked against the record schema by
tests/unit/test_ledger_v2.py, so that what the gateway is tested on is what the schema allows.  The
names and codes are ``edge.roster.example()``'s.  When the builders land, these functions should
call them (same parameters: bags, times, record ids) instead of writing the dicts out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from edge.catalogue import CATEGORY

ORG, ORG_NAME = "H001", "示范医院"
ROSTER = {"version": "demo-1", "digest": "0123456789abcdef"}
DEPARTMENTS = {"D01": "心血管内科", "D02": "普外科", "D03": "检验科"}
ROOM, ROOM_NAME = "ROOM1", "医疗废物暂存间"
T0 = "2026-12-01T09:00:00.000+08:00"
ROUND = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
HANDOVER_ID = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60"
WEIGHING = {"gross_g": 1300, "tare_g": 50, "net_g": 1250, "stable": True, "protocol": "sim", "raw": "ST,GS"}
DISPOSAL = {"INFECTIOUS": "高温蒸汽灭菌", "SHARPS": "高温蒸汽灭菌", "PATHOLOGICAL": "焚烧", "PHARMACEUTICAL": "焚烧",
            "CHEMICAL": "焚烧"}
RECEIVER = {"id": "DISPOSER1", "name": "杭州医疗废物集中处置中心", "licence": "浙危废经第3301000001号",
            "uscc": "91330100MA2AAAAA0X", "address": "杭州市余杭区"}
FINAL_DESTINATION = "杭州医疗废物集中处置中心（浙危废经第3301000001号，杭州市余杭区）"

Bag = tuple[str, str, int]  # package code, category, grams
BAGS: tuple[Bag, ...] = (("V2BAG01", "INFECTIOUS", 1234), ("V2BAG02", "SHARPS", 500))


def signer(person_id: str, name: str, role: str, auth: str = "card") -> dict[str, Any]:
    return {"person_id": person_id, "name": name, "role": role, "auth_method": auth}


def collector(cart: str = "CART-A", person_id: str = "COL-01", name: str = "王收集") -> dict[str, Any]:
    return {"person_id": person_id, "name": name, "device_id": cart}


NURSE = signer("NUR-01", "李护士", "nurse")
KEEPER = signer("KEEP-01", "孙库管", "keeper")
SUPERVISOR = signer("SUP-01", "周主管", "supervisor", "pin")
DRIVER = signer("DRV-01", "吴司机", "transporter")


def totals(bags: Sequence[Bag]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for _, cat, grams in bags:
        t = out.setdefault(cat, {"category": cat, "count": 0, "weight_g": 0})
        t["count"] += 1
        t["weight_g"] += grams
    return list(out.values())


def handover(bags: Sequence[Bag] = BAGS, department: str = "D01", at: str = T0, cart: str = "CART-A",
             nurse: dict[str, Any] = NURSE, notes: Sequence[str] = ("MIXED_DRUGS",)) -> dict[str, Any]:
    """A ward's handover: ``notes`` go on the first bag (label notes), a chemical bag names its components."""
    lines = []
    for i, (code, cat, grams) in enumerate(bags):
        line: dict[str, Any] = {"package_code": code, "category": cat, "waste_code": CATEGORY[cat].waste_code,
                                "weight_g": grams, "weighing": WEIGHING, "notes": list(notes) if i == 0 else []}
        if cat == "CHEMICAL":
            line["main_components"] = "甲醛、二甲苯"
        lines.append(line)
    return {"body_version": 2, "org": ORG, "org_name": ORG_NAME, "round_id": ROUND, "handover_at": at,
            "department": department, "department_name": DEPARTMENTS[department], "from_party": nurse,
            "to_party": collector(cart), "lines": lines, "totals": totals(bags),
            "destination": {"facility": ROOM, "name": ROOM_NAME}, "roster": ROSTER}


class Handed(NamedTuple):
    """A bag as a check-in finds it: ``reweigh_g`` None is missing."""

    code: str
    category: str
    expected_g: int
    reweigh_g: int | None
    department: str = "D01"
    handover_record_id: str = HANDOVER_ID
    handed_over_at: str = T0
    dwell_s: int = 3600
    overdue: bool = False
    warn: bool = False


HANDED: tuple[Handed, ...] = (Handed("V2BAG01", "INFECTIOUS", 1234, 1240), Handed("V2BAG02", "SHARPS", 500, 498))


def storage_in(handed: Sequence[Handed] = HANDED, at: str = "2026-12-01T13:00:00.000+08:00", cart: str = "CART-A",
               result: str | None = None, incidents: Sequence[str] = ()) -> dict[str, Any]:
    """A check-in signed by the keeper; ``result`` by default REJECTED while a bag is missing."""
    packages: list[dict[str, Any]] = []
    for h in handed:
        status = "MISSING" if h.reweigh_g is None else "DEVIATION" if abs(h.reweigh_g - h.expected_g) > 50 else "OK"
        packages.append({"package_code": h.code, "category": h.category, "waste_code": CATEGORY[h.category].waste_code,
                         "department": h.department, "department_name": DEPARTMENTS[h.department],
                         "handover_record_id": h.handover_record_id, "handed_over_at": h.handed_over_at,
                         "expected_g": h.expected_g, "reweigh_g": h.reweigh_g,
                         "delta_g": None if h.reweigh_g is None else h.reweigh_g - h.expected_g, "status": status,
                         "dwell_s": h.dwell_s, "overdue": h.overdue, "warn": h.warn})
    present = [p for p in packages if p["status"] != "MISSING"]
    missing = len(packages) - len(present)
    deviation = sum(p["status"] == "DEVIATION" for p in packages)
    exp, rew = sum(p["expected_g"] for p in present), sum(p["reweigh_g"] or 0 for p in present)
    if result is None:
        result = "REJECTED" if missing else "ACCEPTED_WITH_NOTE" if deviation else "ACCEPTED"
    return {"body_version": 2, "org": ORG, "org_name": ORG_NAME, "facility": ROOM, "facility_name": ROOM_NAME,
            "direction": "IN", "moved_at": at, "round_id": ROUND, "operator": collector(cart), "keeper": KEEPER,
            "packages": packages, "tolerance": {"min_g": 50, "pct": 5},
            "limits": {"ward_max_s": 86400, "warn_pct": 80},
            "summary": {"expected_count": len(packages), "present_count": len(present), "missing_count": missing,
                        "deviation_count": deviation, "overdue_count": sum(h.overdue for h in handed),
                        "warn_count": sum(h.warn for h in handed), "expected_g": exp, "reweigh_g": rew,
                        "delta_g": rew - exp, "delta_permille": round((rew - exp) * 1000 / exp) if exp else 0,
                        "missing_g": sum(p["expected_g"] for p in packages if p["status"] == "MISSING")},
            "result": result, "incidents": list(incidents), "roster": ROSTER}


class Moved(NamedTuple):
    """A bag leaving storage: how long it was there."""

    code: str
    category: str
    weight_g: int
    stored_at: str = "2026-12-01T13:00:00.000+08:00"
    dwell_s: int = 68400
    overdue: bool = False
    warn: bool = False


MOVED: tuple[Moved, ...] = (Moved("V2BAG01", "INFECTIOUS", 1240), Moved("V2BAG02", "SHARPS", 498, warn=True))


def transfer(moved: Sequence[Moved] = MOVED, at: str = "2026-12-02T08:00:00.000+08:00", cart: str = "CART-A",
             manifest: str = "20263301000001", manifest_type: str = "national") -> dict[str, Any]:
    """The hand-over to the carrier: the driver signs, disposal per line from the receiver's table."""
    bags = [(m.code, m.category, m.weight_g) for m in moved]
    methods = list(dict.fromkeys(DISPOSAL[m.category] for m in moved))
    return {"body_version": 2, "org": ORG, "org_name": ORG_NAME, "handed_over_at": at, "round_id": ROUND,
            "from_party": collector(cart),
            "carrier": {"vehicle": "V1", "plate": "浙A·D1234", "org": "CARRIER1", "name": "杭州医废转运有限公司",
                        "licence": "浙交运管许可杭字330100001", "driver": DRIVER},
            "receiver": RECEIVER, "manifest": {"type": manifest_type, "number": manifest},
            "lines": [{"package_code": m.code, "category": m.category, "waste_code": CATEGORY[m.category].waste_code,
                       "weight_g": m.weight_g, "facility": ROOM, "stored_at": m.stored_at, "dwell_s": m.dwell_s,
                       "overdue": m.overdue, "warn": m.warn, "disposal_method": DISPOSAL[m.category]}
                      for m in moved],
            "totals": totals(bags), "disposal_method": "、".join(methods), "final_destination": FINAL_DESTINATION,
            "limits": {"storage_max_s": 172800, "warn_pct": 80},
            "summary": {"count": len(moved), "weight_g": sum(m.weight_g for m in moved),
                        "overdue_count": sum(m.overdue for m in moved), "warn_count": sum(m.warn for m in moved)},
            "roster": ROSTER}


def void(target_id: str = HANDOVER_ID, voided_type: str = "handover", package_code: str | None = "V2BAG02",
         at: str = "2026-12-01T11:00:00.000+08:00", cart: str = "CART-A", reason_code: str = "DUPLICATE",
         reason: str = "同一袋扫了两次") -> dict[str, Any]:
    return {"body_version": 2, "org": ORG, "voided_at": at, "voided_record_id": target_id,
            "voided_type": voided_type, "package_code": package_code, "reason_code": reason_code,
            "reason": reason, "by": collector(cart), "approved_by": SUPERVISOR, "roster": ROSTER}


def incident(lost: Sequence[Handed] = (Handed("V2BAG02", "SHARPS", 500, None),),
             at: str = "2026-12-01T12:50:00.000+08:00", cart: str = "CART-A",
             description: str = "锐器盒在电梯间遗失，已报告院感科") -> dict[str, Any]:
    """Bags declared lost by a supervisor (their expected weight is what was lost)."""
    return {"body_version": 2, "org": ORG, "org_name": ORG_NAME, "incident_type": "LOST", "occurred_at": at,
            "facility": ROOM, "facility_name": ROOM_NAME, "round_id": ROUND,
            "bags": [{"package_code": h.code, "category": h.category, "waste_code": CATEGORY[h.category].waste_code,
                      "weight_g": h.expected_g, "department": h.department,
                      "department_name": DEPARTMENTS[h.department], "handover_record_id": h.handover_record_id,
                      "handed_over_at": h.handed_over_at} for h in lost],
            "total_g": sum(h.expected_g for h in lost), "reported_by": collector(cart), "confirmed_by": SUPERVISOR,
            "keeper": KEEPER, "description": description, "roster": ROSTER}


def correction(target_id: str, wrong: str = "20263301000001", right: str = "20263301000002",
               at: str = "2026-12-02T10:00:00.000+08:00", cart: str = "CART-A") -> dict[str, Any]:
    """A departed transfer's manifest number corrected (it cannot be voided)."""
    return {"body_version": 2, "org": ORG, "corrected_at": at, "corrected_record_id": target_id,
            "corrected_type": "transfer",
            "changes": {"manifest": {"from": {"type": "national", "number": wrong},
                                     "to": {"type": "national", "number": right}}},
            "reason_code": "OTHER", "reason": "联单号录错一位", "by": collector(cart), "approved_by": SUPERVISOR,
            "roster": ROSTER}
