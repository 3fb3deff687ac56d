"""The transition function: ``step(state, event) -> (state, effects)``.  Pure.

No I/O, no clock, no threads: every event carries the time it happened, ids come from injected
generators, and the shell (``edge.agent``) carries out the effects and reports back.  Scans are
handled here; buttons in ``edge.workflow.actions``; what both do in ``edge.workflow.moves``.

Field flow (DESIGN §1)::

    idle --badge--> round --department code | nurse badge naming a department--> stop
    stop: per bag  stable weight -> category (bag label letter, or chosen) -> label (scanned, or
          printed: PrintLabel ... Printed) -> line.  remove_last; edit a line's category; then the
          nurse confirms (badge, or PIN checked by the shell -> PinConfirmed) -> saving -> round
    round --room code--> storage: re-weigh each carried bag (label scan on the scale) or the batch
          -> finish -> storage_in record with the reconciliation (missing, deviation, overdue)
    round --vehicle code--> transfer: manifest number -> finish -> transfer record
    round --void_bag + scan | void:<last record id>--> void record (never edits the original)

"Saved" (``last_seq``) is shown only after ``Committed``, i.e. after the SQLite commit returned; the
committed body is then applied to the bags by ``records.apply_record``, the same code that replays
the ledger at start-up.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from edge import wire
from edge.codes import Code, base36
from edge.messages import NO_MSG, Msg, Text, category_name, msg
from edge.workflow import actions
from edge.workflow.events import (
    Action,
    ActuatorChanged,
    CommitFailed,
    Committed,
    Effect,
    Event,
    PinConfirmed,
    Printed,
    Rejected,
    Tick,
    Weighed,
)
from edge.workflow.moves import (
    Result,
    add_line,
    confirm,
    end_round,
    enter,
    known_package,
    not_allowed,
    nurse_problem,
    ok,
    refuse,
    retract,
    speak,
    start_commit,
    taken_weight,
    void_ready,
    with_stop,
)
from edge.workflow.records import apply_record, correction_body, dwell, incident_body, void_body
from edge.workflow.state import (
    ACTUATOR_STATES,
    EMPTY_BELOW_G,
    Correction,
    Line,
    Pending,
    Reweigh,
    Round,
    Signer,
    State,
    Step,
    Stop,
    Storage,
    VoidScan,
)

IdSource = Callable[[], str]


def new_package_code() -> str:
    """A printed label's package id: P + milliseconds (8 base-36 digits) + 3 random = 12 characters,
    so a signed bag code still fits QR version 3 at level Q; unique across an organisation's carts
    unless two print in the same millisecond and draw the same 1 in 46,656."""
    return "P" + base36(time.time_ns() // 1_000_000, 8) + base36(secrets.randbelow(36**3), 3)


@dataclass
class Machine:
    """Holds the current state; ``handle`` is the only way it changes."""

    state: State
    new_round_id: IdSource = field(default=wire.uuid7)  # injected for tests
    new_package_id: IdSource = field(default=new_package_code)

    def handle(self, event: Event) -> list[Effect]:
        self.state, effects = step(self.state, event, self.new_round_id, self.new_package_id)
        return effects


def step(s: State, ev: Event, new_round_id: IdSource = wire.uuid7,
         new_package_id: IdSource = new_package_code) -> Result:
    """The transition function: (state, event) -> (state, effects).  Pure."""
    s2, effects = _dispatch(s, ev, new_round_id, new_package_id)
    s2 = _check_round_age(s2, ev.at)
    if not isinstance(ev, Weighed):     # readings come ten times a second; the dwell moves by the minute
        s2 = _check_dwell(s2, ev.at)
    return s2, effects


def _dispatch(s: State, ev: Event, new_round_id: IdSource, new_package_id: IdSource) -> Result:
    if isinstance(ev, Weighed):
        w = ev.weight
        empty = w.net_g is not None and w.stable and abs(w.net_g) < EMPTY_BELOW_G
        return replace(s, weight=w, weight_at=ev.at, armed=s.armed or empty), []
    if isinstance(ev, Tick):
        return s, []
    if isinstance(ev, Rejected):
        return refuse(s, ev.reason)
    if isinstance(ev, ActuatorChanged):
        return _actuator(s, ev)
    if isinstance(ev, Committed):
        return _committed(s, ev)
    if isinstance(ev, CommitFailed):
        return _commit_failed(s, ev)
    if isinstance(ev, Printed):
        return _printed(s, ev)
    if s.step is Step.SAVING:
        return refuse(s, msg("err.saving"))
    if isinstance(ev, PinConfirmed):
        return sign(s, ev.person_id, "pin", ev.at)
    if isinstance(ev, Action):
        return actions.handle(s, ev, new_package_id)
    return _scanned(s, ev.code, ev.at, new_round_id)


def _check_round_age(s: State, at: datetime) -> State:
    rnd = s.round
    if rnd is None or rnd.warned or (at - rnd.started_at).total_seconds() <= s.limits.round_max_s:
        return s
    warning = msg("err.round_overdue", hours=f"{s.limits.round_max_s / 3600:g}")
    s = replace(s, round=replace(rnd, warned=True))
    return speak(replace(s, error=warning, message=NO_MSG), warning) if not s.error else s


def dwell_levels(s: State, now: datetime) -> list[tuple[str, str, int, int, str]]:
    """Bags past the warning share of their limit: (code, "cart" | "storage", dwell s, limit s,
    "warn" | "over").  On the cart the ward-to-storage limit runs from the handover; in storage the
    in-storage limit runs from the check-in (暂时贮存不得超过2天)."""
    lim = s.limits
    out: list[tuple[str, str, int, int, str]] = []
    for where, bags, limit in (("cart", s.carried, lim.ward_max_s), ("storage", s.stored, lim.storage_overdue_s)):
        for b in bags:
            since = b.stored_at if where == "storage" and b.stored_at is not None else b.handed_over_at
            seconds, over, warn = dwell(limit, lim.warn_pct, since, now)
            if warn:
                out.append((b.package_code, where, seconds, limit, "over" if over else "warn"))
    return out


def _check_dwell(s: State, at: datetime) -> State:
    """Announce once each bag that reaches 80 % of its limit (configurable) and once more when overdue."""
    if not s.carried and not s.stored and not s.dwell_warned:
        return s
    levels = dwell_levels(s, at)
    now = {f"{code}:{level}" for code, _w, _s, _l, level in levels}
    present = {b.package_code for b in (*s.carried, *s.stored)}
    warned = frozenset(k for k in s.dwell_warned if k.rpartition(":")[0] in present)
    new = now - warned
    if not new:
        return replace(s, dwell_warned=warned) if warned != s.dwell_warned else s
    s = replace(s, dwell_warned=warned | new)
    level = "over" if any(k.endswith(":over") for k in new) else "warn"
    worst = [x for x in levels if x[4] == level]
    _code, where, seconds, limit, _ = max(worst, key=lambda x: x[2])
    warning = msg(f"rules.dwell_{level}", count=len(worst), where=msg(f"rules.where_{where}"),
                  hours=f"{seconds / 3600:.1f}", limit=f"{limit / 3600:g}")
    shown = s.error
    if shown and not (isinstance(shown, Msg) and shown.key.startswith("rules.dwell_")):
        return s                            # a refusal on screen is not covered up; the list shows it too
    return speak(replace(s, error=warning, message=NO_MSG), warning)


def round_overdue(s: State, now: datetime) -> bool:
    rnd = s.round
    return rnd is not None and (now - rnd.started_at).total_seconds() > s.limits.round_max_s


# scans --------------------------------------------------------------------------------------

def _scanned(s: State, code: Code, at: datetime, new_round_id: IdSource) -> Result:
    if code.org != s.org:
        return refuse(s, msg("err.foreign_org", org=code.org))
    if code.kind == "S":
        return _badge(s, code, at, new_round_id)
    if s.step is Step.IDLE:
        return refuse(s, msg("err.badge_first"))
    if code.kind == "D":
        return enter(s, Step.STOP, code.ident)
    if code.kind == "R":
        return enter(s, Step.STORAGE, code.ident)
    if code.kind == "V":
        return enter(s, Step.TRANSFER, code.ident)
    if code.kind == "B":
        return _bag_scanned(s, code, at)
    return refuse(s, msg("err.code_not_here"))


def _badge(s: State, code: Code, at: datetime, new_round_id: IdSource) -> Result:
    person = code.ident
    known = s.roster.person(person)
    if known is None:
        return refuse(s, msg("rules.unknown_person", person=person, version=s.roster.version))
    if s.step is Step.IDLE:
        if not known.has("collector"):
            return not_allowed(s, "rules.not_collector", person)
        s = replace(s, step=Step.ROUND, round=Round(person, new_round_id(), at))
        return ok(s, msg("ok.round_started", person=known.name), spoken=True), []
    stop = s.stop
    if person == s.collector:
        if s.step is Step.ROUND or (s.step is Step.STOP and stop is not None and not stop.lines
                                    and stop.pending is None and stop.print_job is None):
            return end_round(s)
        if s.step in (Step.STOP, Step.CONFIRM) and s.lines:
            return refuse(s, msg("err.collector_cannot_confirm"))
        if s.step is Step.STORAGE:
            return refuse(s, msg("rules.collector_not_keeper"))
        return refuse(s, msg("err.pending" if s.step is Step.STOP else "err.finish_or_cancel"))
    if s.step is Step.ROUND:
        if code.extra and wire.ID_PATTERN.match(code.extra):
            problem = nurse_problem(s, person, code.extra)
            return problem if problem is not None else enter(s, Step.STOP, code.extra)
        return refuse(s, msg("err.badge_no_department"))
    return sign(s, person, "card", at)


def sign(s: State, person: str, method: str, at: datetime) -> Result:
    """A badge (other than the collector's) or a checked PIN where a signature is due: the nurse at a
    stop, the keeper or a supervisor (a loss) in storage, the driver at a vehicle, a supervisor (a void)."""
    if s.step in (Step.STOP, Step.CONFIRM):
        return confirm(s, person, method, at)
    room, transfer, void = s.storage, s.transfer, s.void
    if s.step is Step.STORAGE and room is not None:
        return _storage_sign(s, room, person, method, at)
    if s.step is Step.TRANSFER and transfer is not None:
        return _driver(s, person, method)
    if s.step is Step.VOID and void is not None:
        return _approve_void(s, void, person, method, at)
    fix = s.correction
    if s.step is Step.CORRECT and fix is not None:
        return _approve_correction(s, fix, person, method, at)
    return refuse(s, msg("err.code_not_here"))


def _supervisor_problem(s: State, person: str) -> Result | None:
    known = s.roster.person(person)
    if known is None or not known.has("supervisor"):
        return not_allowed(s, "rules.supervisor_only", person)
    if person == s.collector:
        return refuse(s, msg("rules.self_approve"))
    return None


def _storage_sign(s: State, room: Storage, person: str, method: str, at: datetime) -> Result:
    known = s.roster.person(person)
    rnd = s.round
    assert rnd is not None  # a storage visit is inside a round
    if room.lost is not None:
        problem = _supervisor_problem(s, person)
        if problem is not None:
            return problem
        body = incident_body(s, rnd, room, room.lost, Signer(person, "supervisor", method), at)
        return start_commit(s, "incident", body, Step.STORAGE)
    if known is None or not known.has("keeper"):
        return not_allowed(s, "rules.keeper_only", person)
    keeper = Signer(person, "keeper", method)
    return ok(replace(s, visit=replace(room, keeper=keeper)), msg("rules.keeper_signed", name=known.name),
              spoken=True), []


def _driver(s: State, person: str, method: str) -> Result:
    transfer = s.transfer
    assert transfer is not None
    known = s.roster.person(person)
    if known is None or not known.has("transporter"):
        return not_allowed(s, "rules.transporter_only", person)
    vehicle = s.roster.vehicles[transfer.vehicle]
    carrier = s.roster.carriers[vehicle.carrier].name
    if known.carrier is not None and known.carrier != vehicle.carrier:
        their = s.roster.carriers[known.carrier].name
        return refuse(s, msg("rules.other_carrier", name=known.name, their=their, carrier=carrier))
    s = replace(s, visit=replace(transfer, driver=Signer(person, "transporter", method)))
    return ok(s, msg("rules.driver_signed", name=known.name, carrier=carrier), spoken=True), []


def _approve_correction(s: State, fix: Correction, person: str, method: str, at: datetime) -> Result:
    if fix.manifest is None:
        return refuse(s, msg("rules.correct_number_first"))
    return _approved(s, "correction", person, method,
                     lambda rnd, who: correction_body(s, rnd, at=at, fix=fix, approver=who))


def _approve_void(s: State, void: VoidScan, person: str, method: str, at: datetime) -> Result:
    if void.record_id is None:
        return refuse(s, msg("rules.scan_bag_first"))
    return _approved(s, "void", person, method, lambda rnd, who: void_body(s, rnd, at=at, void=void, approver=who))


def _approved(s: State, rtype: str, person: str, method: str,
              body: Callable[[Round, Signer], dict[str, Any]]) -> Result:
    """A supervisor's confirmation (never the collector's own) commits the record ``body`` builds."""
    problem = _supervisor_problem(s, person)
    if problem is not None:
        return problem
    assert s.round is not None
    return start_commit(s, rtype, body(s.round, Signer(person, "supervisor", method)), Step.ROUND)


def _bag_scanned(s: State, code: Code, at: datetime) -> Result:
    stop = s.stop
    if s.step is Step.STOP and stop is not None:
        return _stop_bag(s, stop, code)
    if s.step is Step.STORAGE:
        return _reweigh(s, code.ident)
    if s.step is Step.VOID and isinstance(s.visit, VoidScan):
        return _void_bag(s, s.visit, code.ident)
    if s.step is Step.ROUND:
        return refuse(s, msg("err.department_first"))
    if s.step is Step.CONFIRM:
        return refuse(s, msg("err.confirming"))
    return refuse(s, msg("err.code_not_here"))


def _stop_bag(s: State, stop: Stop, code: Code) -> Result:
    if stop.print_job is not None:
        return refuse(s, msg("err.printing"))
    if stop.editing is not None:
        return refuse(s, msg("err.pending"))
    p = stop.pending
    if p is not None and p.category is None:   # a label without category is waiting for its choice
        return refuse(s, msg("err.dup_stop", code=code.ident) if p.package_code == code.ident else msg("err.pending"))
    known = known_package(s, code.ident, pending_too=False)
    if known is not None:
        return refuse(s, known)
    label_category = code.category
    if p is not None and p.category is not None:   # category chosen on screen; the bag had a label after all
        if label_category is not None and label_category != p.category:
            c, lb = category_name(p.category), category_name(label_category)
            return refuse(s, msg("err.category_mismatch", chosen=c, label=lb))
        return add_line(s, stop, Line(code.ident, p.category, p.weight_g, p.weighing,
                                      "scanned" if label_category else "plain", p.notes, p.components))
    taken = taken_weight(s)
    if not isinstance(taken, tuple):
        return refuse(s, taken)
    grams, weighing = taken
    if label_category is None:
        s = with_stop(s, stop, pending=Pending(grams, weighing, None, code.ident, "plain"))
        return ok(s, msg("ok.label_scanned")), []
    return add_line(s, stop, Line(code.ident, label_category, grams, weighing))


def _reweigh(s: State, code: str) -> Result:
    room = s.storage
    if room is None or not any(b.package_code == code for b in s.carried):
        if any(b.package_code == code for b in s.stored):
            return refuse(s, msg("err.dup_stored", code=code))
        return refuse(s, msg("err.not_carried", code=code))
    if any(r.package_code == code for r in room.reweighs) or (room.batch and code in room.batch.package_codes):
        return refuse(s, msg("err.reweighed", code=code))
    taken = taken_weight(s)
    if not isinstance(taken, tuple):
        return refuse(s, taken)
    r = Reweigh(code, *taken)
    s = replace(s, visit=replace(room, reweighs=(*room.reweighs, r), keeper=None, lost=None), armed=False)
    return ok(s, msg("ok.reweighed", code=code, grams=r.weight_g), spoken=True), []


def _void_bag(s: State, visit: VoidScan, code: str) -> Result:
    """The bag to void, scanned: it must still be on the cart or in storage (a bag on a vehicle has
    left: its transfer is corrected, never voided).  Then a supervisor confirms."""
    if visit.record_id is not None:
        return refuse(s, msg("prompt.void_approve"))
    bag = next((b for b in (*s.carried, *s.stored) if b.package_code == code), None)
    if bag is None or s.round is None:
        return refuse(s, msg("err.not_on_cart", code=code))
    s = replace(s, visit=replace(visit, record_id=bag.record_id, rtype="handover", package=code))
    return ok(s, void_ready(s), spoken=True), []


# results of effects -------------------------------------------------------------------------

_SAVED = {"handover": "ok.saved_handover", "storage_in": "ok.saved_storage", "transfer": "ok.saved_transfer",
          "void": "ok.saved_void", "incident": "rules.incident_saved", "correction": "rules.correction_saved"}


def _committed(s: State, ev: Committed) -> Result:
    sv = s.saving
    if sv is None:
        return s, []
    s = apply_record(s, ev.record_id, sv.rtype, ev.seq, sv.body)
    s = replace(s, saving=None, saved=s.saved + 1, last_seq=ev.seq)
    room = s.storage
    if sv.rtype == "incident" and room is not None:   # the lost bags are accounted for: carry on checking in
        s = replace(s, step=Step.STORAGE, visit=replace(room, lost=None, keeper=None,
                                                        incidents=(*room.incidents, ev.record_id)))
        return ok(s, msg("rules.incident_saved", seq=ev.seq), spoken=True), []
    effects = retract(s) if sv.rtype in ("handover", "storage_in") else []
    s = replace(s, step=Step.ROUND, visit=None)
    key = "rules.storage_rejected" if sv.body.get("result") == "REJECTED" else _SAVED[sv.rtype]
    return ok(s, msg(key, seq=ev.seq), spoken=True), effects


def _commit_failed(s: State, ev: CommitFailed) -> Result:
    sv = s.saving
    if sv is None:
        return s, []
    visit = s.visit
    if isinstance(visit, Stop):
        visit = replace(visit, confirmer=None)
    elif isinstance(visit, VoidScan | Correction):
        visit = None
    s = replace(s, step=sv.back, saving=None, visit=visit)
    return refuse(s, msg("err.commit_failed", reason=ev.reason))


def _printed(s: State, ev: Printed) -> Result:
    stop = s.stop
    job = stop.print_job if stop else None
    if stop is None or job is None:
        return s, []                           # a late answer for a cancelled job
    if not ev.ok:
        s = with_stop(s, stop, print_job=None, editing=None if job.reprint else stop.editing)
        return refuse(s, msg("err.print_failed", reason=ev.reason or Text("?", "?")))
    if job.reprint:
        lines = tuple(replace(ln, category=job.category) if ln.package_code == job.package_code else ln
                      for ln in stop.lines)
        s = with_stop(s, stop, lines=lines, print_job=None, editing=None)
        return ok(s, msg("ok.category_changed", code=job.package_code, category=category_name(job.category)),
                  spoken=True), []
    p = stop.pending
    if p is None:
        return s, []
    return add_line(s, stop, Line(job.package_code, job.category, p.weight_g, p.weighing, "printed", p.notes,
                                  p.components))


def _actuator(s: State, ev: ActuatorChanged) -> Result:
    if ev.state not in ACTUATOR_STATES:
        return s, []
    s = replace(s, actuator=ev.state)
    if ev.state == "fault":
        return refuse(s, msg("err.actuator_fault_why", reason=ev.reason) if ev.reason else msg("err.actuator_fault"))
    return s, []
