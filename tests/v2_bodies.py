"""Version-2 record bodies for the gateway's tests, written by the cart's own builders.

Each function puts its parameters (bags, times, record ids) into a workflow ``State`` of the
example roster (``edge.roster.example()``: COL-01, NUR-01, KEEP-01, SUP-01, DRV-01, D01…, ROOM1,
V1, DISPOSER1) and returns what ``edge.workflow.records`` writes from it, so the gateway is tested
on the bodies a cart really sends; tests/unit/test_ledger_v2.py checks each against the record
schema.  Names, the roster stamp, the receiver and the final destination are the roster's, and the
dwell times and their overdue/warn flags are the builders' arithmetic on the times given (in
Asia/Shanghai, +08:00, a cart's default zone: so the strings in the bodies are the ones passed in).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from edge import roster
from edge.workflow import records
from edge.workflow.state import Bag as CartBag
from edge.workflow.state import (
    Correction,
    Line,
    LostReport,
    Reweigh,
    Round,
    Signer,
    State,
    Stop,
    Storage,
    Transfer,
    VoidScan,
)

EXAMPLE = roster.example()
ZONE = ZoneInfo("Asia/Shanghai")  # every time below is written with its +08:00
ORG, ORG_NAME = "H001", EXAMPLE.org_name
ROSTER = EXAMPLE.stamp()  # {"version": "demo-1", "digest": <of the example's content>}
DEPARTMENTS = {code: d.name for code, d in EXAMPLE.departments.items()}
ROOM, ROOM_NAME = next((code, r.name) for code, r in EXAMPLE.rooms.items())  # the handover's 去向: the first room
VEHICLE = "V1"
_RECEIVER = EXAMPLE.receivers[EXAMPLE.vehicles[VEHICLE].receiver]
DISPOSAL = dict(_RECEIVER.disposal)
FINAL_DESTINATION = _RECEIVER.destination
T0 = "2026-12-01T09:00:00.000+08:00"
CHECKED_IN_AT = "2026-12-01T13:00:00.000+08:00"  # storage_in's default time, and when a Moved bag was stored
TRANSFERRED_AT = "2026-12-02T08:00:00.000+08:00"  # transfer's default time: 19 h after the check-in
DAY_BEFORE = "2026-11-30T09:00:00.000+08:00"  # handed over then: overdue (> 24 h) at the default check-in
LONG_STORED = "2026-11-30T06:00:00.000+08:00"  # stored then: 50 h, overdue (> 48 h) at the default transfer
NEAR_LIMIT = "2026-11-30T16:00:00.000+08:00"   # stored then: 40 h, warned (>= 80 % of 48 h) at the default transfer
ROUND = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
HANDOVER_ID = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60"
WEIGHING = {"gross_g": 1300, "tare_g": 50, "net_g": 1250, "stable": True, "protocol": "sim", "raw": "ST,GS"}
COMPONENTS = "甲醛、二甲苯"  # 主要成分 of a chemical bag

Bag = tuple[str, str, int]  # package code, category, grams
BAGS: tuple[Bag, ...] = (("V2BAG01", "INFECTIOUS", 1234), ("V2BAG02", "SHARPS", 500))


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def state(cart: str = "CART-A", started: str = T0, collector_id: str = "COL-01", **fields: Any) -> State:
    """A cart of the example roster with a round open (``fields``: the visit, the bags)."""
    return State(ORG, cart, roster=EXAMPLE, zone=ZONE, round=Round(collector_id, ROUND, when(started)), **fields)


def signer(person_id: str, role: str, auth: str = "card") -> dict[str, Any]:
    """A signature as records write it; the name is the roster's."""
    return records.signer(EXAMPLE, Signer(person_id, role, auth))


def collector(cart: str = "CART-A", person_id: str = "COL-01") -> dict[str, Any]:
    s = state(cart, collector_id=person_id)
    assert s.round is not None
    return records.collector(s, s.round)


NURSE = signer("NUR-01", "nurse")
KEEPER = signer("KEEP-01", "keeper")
SUPERVISOR = signer("SUP-01", "supervisor", "pin")
DRIVER = signer("DRV-01", "transporter")


def _signer(who: dict[str, Any]) -> Signer:
    return Signer(who["person_id"], who["role"], who["auth_method"])


def _round(s: State) -> Round:
    assert s.round is not None
    return s.round


def totals(bags: Sequence[Bag]) -> list[dict[str, Any]]:
    return records.totals(Line(code, cat, grams, WEIGHING) for code, cat, grams in bags)


def handover(bags: Sequence[Bag] = BAGS, department: str = "D01", at: str = T0, cart: str = "CART-A",
             nurse: dict[str, Any] = NURSE, notes: Sequence[str] = ("MIXED_DRUGS",)) -> dict[str, Any]:
    """A ward's handover: ``notes`` go on the first bag (label notes), a chemical bag names its components."""
    lines = tuple(Line(code, cat, grams, WEIGHING, notes=tuple(notes) if i == 0 else (),
                       components=COMPONENTS if cat == "CHEMICAL" else "")
                  for i, (code, cat, grams) in enumerate(bags))
    s = state(cart, started=at, visit=Stop(department, lines=lines))
    return records.handover_body(s, nurse=nurse["person_id"], at=when(at), auth=nurse["auth_method"])


class Handed(NamedTuple):
    """A bag as a check-in finds it: ``reweigh_g`` None is missing; its dwell runs from ``handed_over_at``."""

    code: str
    category: str
    expected_g: int
    reweigh_g: int | None
    department: str = "D01"
    handover_record_id: str = HANDOVER_ID
    handed_over_at: str = T0

    def bag(self) -> CartBag:
        return CartBag(self.code, self.category, self.expected_g, self.department, when(self.handed_over_at),
                   self.handover_record_id)


HANDED: tuple[Handed, ...] = (Handed("V2BAG01", "INFECTIOUS", 1234, 1240), Handed("V2BAG02", "SHARPS", 500, 498))


def storage_in(handed: Sequence[Handed] = HANDED, at: str = CHECKED_IN_AT, cart: str = "CART-A",
               result: str | None = None, incidents: Sequence[str] = ()) -> dict[str, Any]:
    """A check-in signed by the keeper: REJECTED while a bag is missing, as the cart decides; ``result``
    overrides that verdict (a body no cart writes, for what the gateway makes of it)."""
    room = Storage(ROOM, reweighs=tuple(Reweigh(h.code, h.reweigh_g, WEIGHING) for h in handed
                                        if h.reweigh_g is not None),
                   keeper=_signer(KEEPER), incidents=tuple(incidents))
    s = state(cart, started=T0, visit=room, carried=tuple(h.bag() for h in handed))
    body = records.storage_in_body(s, _round(s), room, when(at), _signer(KEEPER))
    if result is not None:
        body["result"] = result
    return body


class Moved(NamedTuple):
    """A bag leaving storage: its dwell there runs from ``stored_at``."""

    code: str
    category: str
    weight_g: int
    stored_at: str = CHECKED_IN_AT

    def bag(self) -> CartBag:
        """As the cart holds it once stored (its ward and handover do not go into a transfer)."""
        return CartBag(self.code, self.category, self.weight_g, "D01", when(T0), HANDOVER_ID, ROOM,
                       when(self.stored_at))


MOVED: tuple[Moved, ...] = (Moved("V2BAG01", "INFECTIOUS", 1240), Moved("V2BAG02", "SHARPS", 498, NEAR_LIMIT))


def transfer(moved: Sequence[Moved] = MOVED, at: str = TRANSFERRED_AT, cart: str = "CART-A",
             manifest: str = "20263301000001", manifest_type: str = "national") -> dict[str, Any]:
    """The hand-over to the carrier on V1: the driver signs, disposal per line from the receiver's table."""
    visit = Transfer(VEHICLE, manifest=manifest, manifest_type=manifest_type, driver=_signer(DRIVER))
    s = state(cart, started=at, visit=visit, stored=tuple(m.bag() for m in moved))
    return records.transfer_body(s, _round(s), visit, when(at))


RECEIVER = transfer()["receiver"]  # {id, name, licence, address}: the example's receiver has no USCC


def void(target_id: str = HANDOVER_ID, voided_type: str = "handover", package_code: str | None = "V2BAG02",
         at: str = "2026-12-01T11:00:00.000+08:00", cart: str = "CART-A", reason_code: str = "DUPLICATE",
         reason: str = "同一袋扫了两次") -> dict[str, Any]:
    """A supervisor-approved void; the record's reason is the listed words, then ``reason``."""
    scan = VoidScan(reason_code, reason, record_id=target_id, rtype=voided_type, package=package_code)
    s = state(cart, started=T0, visit=scan)
    return records.void_body(s, _round(s), at=when(at), void=scan, approver=_signer(SUPERVISOR))


def incident(lost: Sequence[Handed] = (Handed("V2BAG02", "SHARPS", 500, None),),
             at: str = "2026-12-01T12:50:00.000+08:00", cart: str = "CART-A",
             description: str = "锐器盒在电梯间遗失，已报告院感科") -> dict[str, Any]:
    """Bags declared lost by a supervisor at the check-in (their expected weight is what was lost)."""
    room = Storage(ROOM, keeper=_signer(KEEPER))
    report = LostReport(tuple(h.code for h in lost), description)
    s = state(cart, started=T0, visit=room, carried=tuple(h.bag() for h in lost))
    return records.incident_body(s, _round(s), room, report, _signer(SUPERVISOR), when(at))


def correction(target_id: str, wrong: str = "20263301000001", right: str = "20263301000002",
               at: str = "2026-12-02T10:00:00.000+08:00", cart: str = "CART-A") -> dict[str, Any]:
    """A departed transfer's manifest number corrected (it cannot be voided)."""
    fix = Correction(target_id, ("national", wrong), "OTHER", "联单号录错一位", manifest=right)
    s = state(cart, started=at, visit=fix)
    return records.correction_body(s, _round(s), at=when(at), fix=fix, approver=_signer(SUPERVISOR))
