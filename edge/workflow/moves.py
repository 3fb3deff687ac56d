"""The transitions that both scans (``machine``) and buttons (``actions``) make: refuse, confirm,
enter a place, end the round, take a bag, start a commit.  Each returns the new state and its effects;
each says what happened as a message key with parameters (``edge.messages``), never as text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from edge import wire
from edge.catalogue import ROLE, VOID_REASON
from edge.messages import NO_MSG, Msg, Text, category_name, msg
from edge.roster import Person
from edge.workflow.events import Actuate, Commit, Effect
from edge.workflow.records import handover_body, stamp
from edge.workflow.state import EMPTY_BELOW_G, Line, Saving, State, Step, Stop, Storage, Transfer, Words

Result = tuple[State, list[Effect]]


def refuse(s: State, reason: Words) -> Result:
    return speak(replace(s, error=reason, message=NO_MSG), reason), []


def ok(s: State, message: Msg, *, spoken: bool = False) -> State:
    s = replace(s, error=NO_MSG, message=message)
    return speak(s, message) if spoken else s


def speak(s: State, text: Words) -> State:
    return replace(s, voice_seq=s.voice_seq + 1, voice=text)


def extend(s: State) -> list[Effect]:
    return [] if s.actuator in ("none", "extended", "extending") else [Actuate("extend")]


def retract(s: State) -> list[Effect]:
    return [] if s.actuator in ("none", "retracted", "retracting") else [Actuate("retract")]


def with_stop(s: State, stop: Stop, **changes: Any) -> State:
    return replace(s, visit=replace(stop, **changes))


def weight_problem(s: State) -> Msg | None:
    """Why the current reading cannot be taken as a bag's weight (None: it can)."""
    if s.actuator == "fault":
        return msg("err.actuator_fault")
    if s.actuator not in ("extended", "none"):
        return msg("err.actuator")
    w = s.weight
    if w is None:
        return msg("err.no_reading")
    if w.error:
        return msg("err.scale", reason=w.error)
    if w.net_g is None:
        return msg("err.no_reading")
    if w.net_g > s.limits.max_bag_g:
        return msg("err.overload", kg=s.limits.max_bag_g // 1000)
    if not w.stable:
        return msg("err.unstable")
    if w.net_g < 0 and abs(w.net_g) >= EMPTY_BELOW_G:
        return msg("err.negative")
    if w.net_g < EMPTY_BELOW_G:
        return msg("err.empty")
    if not s.armed:
        return msg("err.not_armed")
    return None


def taken_weight(s: State) -> tuple[int, dict[str, Any]] | Msg:
    """The current reading as a bag's weight and its weighing record, or why it cannot be taken."""
    problem = weight_problem(s)
    w = s.weight
    if problem is not None or w is None or w.net_g is None:
        return problem or msg("err.no_reading")
    out: dict[str, Any] = {"gross_g": w.net_g + w.tare_g, "tare_g": w.tare_g, "net_g": w.net_g, "stable": True,
                           "protocol": w.protocol or "unknown", "raw": w.raw[:256]}
    if s.weight_at is not None:
        out["measured_at"] = stamp(s, s.weight_at)
    return w.net_g, out


def known_package(s: State, code: str, *, pending_too: bool = True) -> Msg | None:
    """A bag that must not be taken again: on this list, handed over, or in storage."""
    stop = s.stop
    if stop is not None and (any(ln.package_code == code for ln in stop.lines)
                             or (pending_too and stop.pending and stop.pending.package_code == code)):
        return msg("err.dup_stop", code=code)
    if any(b.package_code == code for b in s.carried):
        return msg("err.dup_carried", code=code)
    if any(b.package_code == code for b in s.stored):
        return msg("err.dup_stored", code=code)
    return None


def add_line(s: State, stop: Stop, line: Line) -> Result:
    s = replace(with_stop(s, stop, lines=(*stop.lines, line), pending=None, print_job=None), armed=False)
    added = msg("ok.bag_added", code=line.package_code, grams=line.weight_g, category=category_name(line.category))
    return ok(s, added, spoken=True), []


def end_round(s: State) -> Result:
    effects = retract(s) if s.step is Step.STOP else []
    message = msg("ok.round_ended_carrying", count=len(s.carried)) if s.carried else msg("ok.round_ended")
    s = replace(s, step=Step.IDLE, round=None, visit=None)
    return ok(s, message, spoken=True), effects


def enter(s: State, target: Step, ident: str) -> Result:
    """A department, storage-room or vehicle code: enter that step from the round (or an empty stop)."""
    stop = s.stop
    if s.step is Step.STOP and stop is not None and (stop.lines or stop.pending or stop.print_job):
        return refuse(s, msg("err.unconfirmed" if stop.lines else "err.pending"))
    if s.step is Step.CONFIRM:
        return refuse(s, msg("err.unconfirmed"))
    room = s.storage
    switch_room = (s.step is Step.STORAGE and target is Step.STORAGE and room is not None and not room.reweighs
                   and room.batch is None)
    if s.step not in (Step.ROUND, Step.STOP) and not switch_room:
        return refuse(s, msg("err.finish_or_cancel"))
    was_stop = s.step is Step.STOP
    r = s.roster
    if target is Step.STOP:
        if ident not in r.departments:
            return refuse(s, msg("rules.unknown_department", code=ident))
        s = replace(s, step=Step.STOP, visit=Stop(ident))
        return ok(s, msg("rules.department", name=r.department_name(ident), code=ident), spoken=True), extend(s)
    if target is Step.STORAGE:
        if ident not in r.rooms:
            return refuse(s, msg("rules.unknown_room", code=ident))
        s = replace(s, step=Step.STORAGE, visit=Storage(ident))
        return ok(s, msg("ok.storage", room=r.room_name(ident), count=len(s.carried)), spoken=True), extend(s)
    if ident not in r.vehicles:
        return refuse(s, msg("rules.unknown_vehicle", code=ident))
    s = replace(s, step=Step.TRANSFER, visit=Transfer(ident))
    return (ok(s, msg("ok.transfer", vehicle=r.vehicles[ident].plate, count=len(s.stored)), spoken=True),
            retract(s) if was_stop else [])


def start_commit(s: State, rtype: str, body: dict[str, Any], back: Step) -> Result:
    """Ask the shell to commit ``body``; the screen says "saving" until Committed / CommitFailed."""
    s = replace(s, step=Step.SAVING, saving=Saving(rtype, body, back), last_seq=None, error=NO_MSG, message=NO_MSG)
    return speak(s, msg("prompt.saving")), [Commit(rtype, body)]


def role_words(person: Person) -> Text:
    """A person's roles in words (``收集人员、主管``)."""
    return Text("、".join(ROLE[r].zh for r in person.roles), ", ".join(ROLE[r].en for r in person.roles))


def names(codes: tuple[str, ...], name_of: Callable[[str], str]) -> str:
    return "、".join(name_of(c) for c in codes) or "—"


def not_allowed(s: State, key: str, pid: str, **params: Any) -> Result:
    """Refuse a signature: the person by name and role, and (in ``key``'s words) who may sign instead."""
    person = s.roster.person(pid)
    if person is None:
        return refuse(s, msg("rules.unknown_person", person=pid, version=s.roster.version))
    return refuse(s, msg(key, name=person.name, role=role_words(person), **params))


def nurse_problem(s: State, pid: str, department: str) -> Result | None:
    """None when ``pid`` is a nurse of ``department`` (the roster says so); else the refusal."""
    person = s.roster.person(pid)
    dept = s.roster.department_name(department)
    if person is None or not person.has("nurse"):
        return not_allowed(s, "rules.nurse_only", pid, department=dept)
    if department not in person.departments:
        their = names(person.departments, s.roster.department_name)
        return refuse(s, msg("rules.other_department", name=person.name, their=their, department=dept))
    return None


def confirm(s: State, person: str, method: str, at: datetime) -> Result:
    """A nurse of this department signs for the lines at this stop (badge or checked PIN): commit
    the handover.  Anyone else is refused by name, with who may sign instead."""
    stop = s.stop
    if s.step not in (Step.STOP, Step.CONFIRM) or stop is None:
        return refuse(s, msg("err.not_available"))
    if not stop.lines:
        return refuse(s, msg("err.no_lines"))
    if stop.busy:
        return refuse(s, msg("err.pending"))
    if person == s.collector:
        return refuse(s, msg("err.collector_cannot_confirm"))
    if not wire.ID_PATTERN.match(person):
        return refuse(s, msg("err.bad_person"))
    problem = nurse_problem(s, person, stop.department)
    if problem is not None:
        return problem
    body = handover_body(s, nurse=person, at=at, auth=method)
    return start_commit(with_stop(s, stop, confirmer=person), "handover", body, s.step)


def void_ready(s: State) -> Msg:
    v = s.void
    assert v is not None
    what = (msg("rules.void_what_bag", code=v.package) if v.package
            else msg("rules.void_what_record", seq=s.last_record.seq if s.last_record else 0))
    reason = VOID_REASON[v.reason_code]
    return msg("rules.void_ready", what=what, reason=Text(reason.zh, reason.en))
