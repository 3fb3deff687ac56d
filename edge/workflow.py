"""The collection round as a pure state machine: events in, effects and a view out.

No I/O and no clock of its own: every event carries the time it happened, the shell (``edge.app``)
feeds scans and scale readings in and carries out the effects (commit to the ledger, then tell
the machine ``Committed``).  "Saved" is shown only after ``Committed`` arrives, i.e. after the
SQLite commit returned.

Round (DESIGN §1): collector badge → department code → per bag: stable weight + bag label →
a nurse's badge confirms → handover committed → next department, or the collector's badge ends
the round.  (Category choice on screen, printing, storage check-in, voids: the kiosk issue.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from edge import wire
from edge.codes import Code


class Step(StrEnum):
    IDLE = "idle"              # waiting for a collector's badge
    ROUND = "round"            # round open, waiting for a department code
    STOP = "stop"              # at a department: weigh bags, scan labels, nurse confirms
    SAVING = "saving"          # commit requested, not yet durable


PROMPTS = {
    Step.IDLE: "请扫描收集人员工牌",
    Step.ROUND: "请扫描科室交接码",
    Step.STOP: "请放置医废袋称重并扫描袋标签，完成后由护士扫描工牌确认",
    Step.SAVING: "正在保存…",
}

# A scale reading below this many grams counts as "platform empty" (re-arms the next bag).
EMPTY_BELOW_G = 20


@dataclass(frozen=True)
class Line:
    package_code: str
    category: str
    weight_g: int
    weighing: dict[str, Any]


@dataclass(frozen=True)
class Weight:
    """What the workflow needs of a scale reading (the shell converts ``edge.scales.Reading``)."""

    net_g: int | None
    stable: bool
    tare_g: int = 0
    protocol: str = ""
    raw: str = ""
    error: str | None = None


# Events -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scanned:
    code: Code
    at: datetime


@dataclass(frozen=True)
class Rejected:
    """A scanned payload that ``edge.codes.decode`` refused (reason in Chinese)."""

    reason: str
    at: datetime


@dataclass(frozen=True)
class Weighed:
    weight: Weight
    at: datetime


@dataclass(frozen=True)
class Committed:
    seq: int
    record_id: str
    at: datetime


@dataclass(frozen=True)
class CommitFailed:
    reason: str
    at: datetime


Event = Scanned | Rejected | Weighed | Committed | CommitFailed


# Effects ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Commit:
    rtype: str
    body: dict[str, Any]


Effect = Commit


@dataclass(frozen=True)
class State:
    org: str
    cart: str
    step: Step = Step.IDLE
    collector: str | None = None
    round_id: str | None = None
    department: str | None = None
    lines: tuple[Line, ...] = ()
    weight: Weight | None = None
    armed: bool = True            # platform was empty since the last line: a new bag may be taken
    message: str = ""             # last confirmation ("已保存 …")
    error: str = ""               # last refusal, shown until the next accepted action
    saved: int = 0                # handovers committed this run
    pending_confirmer: str | None = None
    last_seq: int | None = None

    @property
    def prompt(self) -> str:
        return PROMPTS[self.step]


@dataclass
class Machine:
    """Holds the current state; ``handle`` is the only way it changes."""

    state: State
    new_round_id: Callable[[], str] = field(default=wire.uuid7)  # injected for tests

    def handle(self, event: Event) -> list[Effect]:
        self.state, effects = step(self.state, event, self.new_round_id)
        return effects


def step(s: State, ev: Event, new_round_id: Callable[[], str] = wire.uuid7) -> tuple[State, list[Effect]]:
    """The transition function: (state, event) -> (state, effects).  Pure."""
    if isinstance(ev, Weighed):
        return _weighed(s, ev.weight), []
    if isinstance(ev, Rejected):
        return replace(s, error=ev.reason, message=""), []
    if isinstance(ev, Committed):
        if s.step is not Step.SAVING:
            return s, []
        return replace(s, step=Step.ROUND, department=None, lines=(), pending_confirmer=None,
                       saved=s.saved + 1, last_seq=ev.seq, error="",
                       message=f"已保存交接记录 #{ev.seq}"), []
    if isinstance(ev, CommitFailed):
        if s.step is not Step.SAVING:
            return s, []
        return replace(s, step=Step.STOP, pending_confirmer=None,
                       error=f"保存失败，请重试：{ev.reason}", message=""), []
    return _scanned(s, ev.code, ev.at, new_round_id)


def _weighed(s: State, w: Weight) -> State:
    empty = w.net_g is not None and w.stable and abs(w.net_g) < EMPTY_BELOW_G
    return replace(s, weight=w, armed=s.armed or empty)


def _refuse(s: State, reason: str) -> tuple[State, list[Effect]]:
    return replace(s, error=reason, message=""), []


def _scanned(s: State, code: Code, at: datetime, new_round_id: Callable[[], str]) -> tuple[State, list[Effect]]:
    if s.step is Step.SAVING:
        return _refuse(s, "正在保存，请稍候")
    if code.kind == "S":
        return _badge(s, code.ident, at, new_round_id)
    if code.kind == "D":
        if s.step is Step.IDLE:
            return _refuse(s, "请先扫描收集人员工牌")
        if s.step is Step.STOP and s.lines:
            return _refuse(s, "本科室还有未确认的交接，请护士先扫描工牌确认")
        return replace(s, step=Step.STOP, department=code.ident, lines=(), error="",
                       message=f"科室 {code.ident}"), []
    if code.kind == "B":
        return _bag(s, code)
    return _refuse(s, "此二维码在当前步骤无效")


def _badge(s: State, person: str, at: datetime, new_round_id: Callable[[], str]) -> tuple[State, list[Effect]]:
    if s.step is Step.IDLE:
        return replace(s, step=Step.ROUND, collector=person, round_id=new_round_id(), error="",
                       message=f"收集人员 {person}"), []
    if person == s.collector:
        if s.step is Step.STOP and s.lines:
            return _refuse(s, "交接须由科室护士扫描工牌确认，不能由收集人员确认")
        return replace(s, step=Step.IDLE, collector=None, department=None, lines=(), round_id=None,
                       error="", message="本轮收集已结束"), []
    if s.step is not Step.STOP or not s.lines:
        return _refuse(s, "请先称重并扫描袋标签")
    assert s.collector is not None and s.department is not None
    body = handover_body(s, nurse=person, at=at)
    return replace(s, step=Step.SAVING, pending_confirmer=person, error="", message=""), [
        Commit("handover", body)]


def _bag(s: State, code: Code) -> tuple[State, list[Effect]]:
    if s.step is not Step.STOP:
        return _refuse(s, "请先扫描科室交接码")
    if any(line.package_code == code.ident for line in s.lines):
        return _refuse(s, f"袋 {code.ident} 已登记，不能重复")
    w = s.weight
    if w is None or w.net_g is None or w.error:
        return _refuse(s, "秤无读数，请检查秤")
    if not w.stable:
        return _refuse(s, "重量未稳定，请稍候再扫描")
    if w.net_g < EMPTY_BELOW_G:
        return _refuse(s, "秤上无重量，请先放置医废袋")
    if not s.armed:
        return _refuse(s, "请先取下上一袋再放置新袋")
    category = code.category
    if category is None:
        return _refuse(s, "袋标签缺少废物类别，请重新打印标签")
    weighing = {"gross_g": w.net_g + w.tare_g, "tare_g": w.tare_g, "net_g": w.net_g, "stable": True,
                "protocol": w.protocol, "raw": w.raw[:256]}
    line = Line(code.ident, category, w.net_g, weighing)
    return replace(s, lines=(*s.lines, line), armed=False, error="",
                   message=f"已登记 {code.ident} {wire.CATEGORIES[category][0]} {w.net_g} g"), []


def totals(lines: tuple[Line, ...]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for line in lines:
        t = out.setdefault(line.category, {"category": line.category, "count": 0, "weight_g": 0})
        t["count"] += 1
        t["weight_g"] += line.weight_g
    return list(out.values())


def handover_body(s: State, *, nurse: str, at: datetime) -> dict[str, Any]:
    """The handover record (waste-domain §8.4) for the lines at the current stop."""
    assert s.collector is not None and s.department is not None and s.round_id is not None
    return {
        "org": s.org,
        "round_id": s.round_id,
        "handover_at": at.isoformat(timespec="milliseconds"),
        "department": s.department,
        "from_party": {"person_id": nurse, "auth_method": "card"},
        "to_party": {"person_id": s.collector, "device_id": s.cart},
        "lines": [
            {"package_code": ln.package_code, "category": ln.category,
             "waste_code": wire.CATEGORIES[ln.category][1], "weight_g": ln.weight_g,
             "weighing": ln.weighing}
            for ln in s.lines
        ],
        "totals": totals(s.lines),
        "destination": None,
    }
