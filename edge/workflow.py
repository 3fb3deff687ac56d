"""The cart's work as one pure state machine: events in, new state + effects out, and a screen model.

No I/O, no clock, no threads: every event carries the time it happened (``at``), ids come from
injected generators, and the shell (``edge.app``) carries out the effects and reports back.  One
transition function, ``step(state, event) -> (state, effects)``; ``Machine`` only holds the state.
``view(state, now)`` is the kiosk's screen model (contract: /tmp/spec/kiosk.md, issue 6).

Field flow (DESIGN §1, issue 6 item 1)::

    idle --badge--> round --department code | nurse badge naming a department--> stop
    stop: per bag  stable weight -> category (bag label letter, or chosen) -> label (scanned, or
          printed: PrintLabel ... Printed) -> line.  remove_last; edit a line's category; then the
          nurse confirms (badge, or PIN checked by the shell -> PinConfirmed) -> saving -> round
    round --room code--> storage: re-weigh each carried bag (label scan on the scale) or the batch
          -> finish -> storage_in record with the reconciliation (missing, deviation, overdue)
    round --vehicle code--> transfer: manifest number -> finish -> transfer record
    round --void_bag + scan | void:<last record id>--> void record (never edits the original)

"Saved" (``saved_seq``) is shown only after ``Committed``, i.e. after the SQLite commit returned.
The bags on the cart (``carried``) and in storage (``stored``) live in the state; at start-up the
shell rebuilds them from the ledger with ``replay(state, records)``.  ``State.limits`` carries the
configured tolerances; ``state.error`` / ``message`` are ``messages.Text`` (zh + en).

**Events the shell sends** (all frozen, all with ``at``):
  ``Scanned(code)`` / ``Rejected(reason)`` a decoded QR / one ``edge.codes.decode`` refused;
  ``Weighed(Weight)`` every scale reading; ``Action(id, value)`` a kiosk button (ids below);
  ``PinConfirmed(person_id)`` the shell checked a PIN typed for ``confirm_pin`` (the machine never
  sees PINs; a wrong PIN is a ``Rejected``); ``ActuatorChanged(state)`` the scale slide-out
  reported "unknown" | "retracted" | "extending" | "extended" | "retracting" | "fault" | "none" (default
  "none" = no actuator fitted: then no ``Actuate`` effects are emitted at all);
  ``Printed(ok, reason)`` the result of the last ``PrintLabel``; ``Tick`` time passing (round
  overdue warning; send e.g. every 30 s); ``Committed(seq, record_id)`` / ``CommitFailed(reason)``
  the result of the last ``Commit``.

**Effects the shell carries out** (in list order, including those returned for ``Committed``):
  ``Commit(rtype, body)`` write the record, then send Committed / CommitFailed;
  ``PrintLabel(code, fields)`` encode ``code`` (a B code) as the QR and print ``fields``, then
  send Printed; ``Actuate("extend" | "retract")`` drive the slide-out (it reports back with
  ActuatorChanged).  A weight is taken only while the actuator is "extended" or "none".

**Action ids** (``view()["actions"]`` lists the valid ones; ``action_known`` tells an unknown id):
  end_round; choose:<CATEGORY> (or id "choose" with value=<CATEGORY>); print_label; remove_last;
  edit:<package_code>; confirm (to the nurse screen); confirm_pin (needs "pin": the SHELL checks
  it and sends PinConfirmed or Rejected; never forwarded); back; cancel; batch_weight;
  finish; manifest (needs "text": the number); void_bag (needs "reason"; then scan the bag);
  void:<record_id> (needs "reason"; the last committed record); scale_out; scale_in;
  start_storage / start_transfer (needs "text": a room / vehicle code typed instead of scanned).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from edge import wire
from edge.codes import LETTER_OF, Code, base36
from edge.messages import CATEGORY_NAMES, NONE, Text, category_name, split, t


class Step(StrEnum):
    IDLE = "idle"              # waiting for a collector's badge
    ROUND = "round"            # round open, waiting for a department / room / vehicle code
    STOP = "stop"              # at a department: weigh bags, categories, labels
    CONFIRM = "confirm"        # the list is shown to the nurse: badge or PIN
    SAVING = "saving"          # commit requested, not yet durable
    STORAGE = "storage"        # storage room: re-weigh and reconcile
    TRANSFER = "transfer"      # hand-over to the transporter's vehicle
    VOID = "void"              # waiting for the label of the bag to void


# A scale reading below this many grams counts as "platform empty" (re-arms the next bag).
EMPTY_BELOW_G = 20
# "unknown": fitted, but neither end stop closed (start-up); treated like retracted: it must extend.
ACTUATOR_STATES = ("unknown", "retracted", "extending", "extended", "retracting", "fault", "none")
_NATIONAL_MANIFEST = re.compile(r"^\d{14}$")  # national electronic manifest number (waste-domain §8.6)
REASON_MAX = 200  # characters of a void reason


@dataclass(frozen=True)
class Limits:
    """Tunables; the shell fills them from the config."""

    round_max_s: int = 4 * 3600         # s; a round open longer gets a warning (routes have fixed times)
    storage_overdue_s: int = 48 * 3600  # s; handed over longer ago at storage-in = overdue (waste-domain §1.2)
    tolerance_g: int = 50               # g; re-weigh deviation always allowed: above a cart scale's e
    tolerance_pct: int = 5              # %; ... or this share of the expected weight, if larger (§6.4)
    max_bag_g: int = 60_000             # g; one bag/box heavier is refused: cart scales are <= 60 kg (§7.1)


@dataclass(frozen=True)
class Weight:
    """What the workflow needs of a scale reading (the shell converts ``edge.scales.Reading``)."""

    net_g: int | None
    stable: bool
    tare_g: int = 0
    protocol: str = ""
    raw: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Line:
    """One bag at the current stop.  ``label``: "scanned" (its own label states the category),
    "printed" (we printed it: a category change reprints), "plain" (label without category)."""

    package_code: str
    category: str
    weight_g: int
    weighing: dict[str, Any]
    label: str = "scanned"

    @property
    def editable(self) -> bool:
        return self.label != "scanned"


@dataclass(frozen=True)
class Bag:
    """A bag handed over (carried) or checked in to storage (stored), until the next step."""

    package_code: str
    category: str
    weight_g: int
    department: str
    handed_over_at: datetime
    record_id: str                  # the handover record
    facility: str | None = None     # storage room, once stored


@dataclass(frozen=True)
class Pending:
    """A bag being taken: weight captured; waiting for its category and/or label."""

    weight_g: int
    weighing: dict[str, Any]
    category: str | None = None
    package_code: str | None = None
    label: str = "plain"           # what the line will say if completed without a further scan


@dataclass(frozen=True)
class PrintJob:
    package_code: str
    category: str
    reprint: bool = False          # a category change of a printed line (``edit``)


@dataclass(frozen=True)
class Reweigh:
    package_code: str
    weight_g: int
    weighing: dict[str, Any]


@dataclass(frozen=True)
class Batch:
    package_codes: tuple[str, ...]
    weight_g: int
    weighing: dict[str, Any]


@dataclass(frozen=True)
class Saving:
    """What the outstanding Commit was, so Committed / CommitFailed know what to do."""

    rtype: str
    back: Step
    at: datetime
    void_record: str | None = None
    void_package: str | None = None


@dataclass(frozen=True)
class LastRecord:
    """The last committed record; ``before`` = (carried, stored) before it, to undo a void."""

    record_id: str
    rtype: str
    seq: int
    before: tuple[tuple[Bag, ...], tuple[Bag, ...]]


# Events -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scanned:
    code: Code
    at: datetime


@dataclass(frozen=True)
class Rejected:
    """A payload ``edge.codes.decode`` refused, or a PIN the shell did not accept ("中文 (English)")."""

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


@dataclass(frozen=True)
class Action:
    """A kiosk button: ``id`` from ``view()["actions"]``, ``value`` the typed text / reason / ""."""

    id: str
    value: str
    at: datetime


@dataclass(frozen=True)
class PinConfirmed:
    person_id: str
    at: datetime


@dataclass(frozen=True)
class ActuatorChanged:
    state: str
    at: datetime
    reason: str = ""  # with "fault": what the actuator's watchdog saw ("中文 (English)")


@dataclass(frozen=True)
class Tick:
    at: datetime


@dataclass(frozen=True)
class Printed:
    ok: bool
    reason: str
    at: datetime


Event = (Scanned | Rejected | Weighed | Committed | CommitFailed | Action | PinConfirmed | ActuatorChanged
         | Tick | Printed)


# Effects ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Commit:
    rtype: str
    body: dict[str, Any]


@dataclass(frozen=True)
class PrintLabel:
    code: Code
    fields: dict[str, Any]


@dataclass(frozen=True)
class Actuate:
    direction: str  # "extend" | "retract"


Effect = Commit | PrintLabel | Actuate


@dataclass(frozen=True)
class State:
    org: str
    cart: str
    limits: Limits = Limits()
    step: Step = Step.IDLE
    collector: str | None = None
    round_id: str | None = None
    round_started_at: datetime | None = None
    round_warned: bool = False
    department: str | None = None
    place: str | None = None              # storage room or vehicle
    lines: tuple[Line, ...] = ()
    pending: Pending | None = None
    editing: str | None = None            # package code whose category is being changed
    print_job: PrintJob | None = None
    weight: Weight | None = None
    weight_at: datetime | None = None
    armed: bool = True                    # platform was empty since the last bag: a new bag may be taken
    actuator: str = "none"
    carried: tuple[Bag, ...] = ()         # handed over since the last storage-in
    stored: tuple[Bag, ...] = ()          # checked in since the last transfer
    reweighs: tuple[Reweigh, ...] = ()
    batch: Batch | None = None
    keeper: str | None = None
    manifest: str | None = None
    void_reason: str | None = None
    saving: Saving | None = None
    last_record: LastRecord | None = None
    message: Text = NONE                  # last confirmation (green)
    error: Text = NONE                    # last refusal (red), until the next accepted action
    voice_seq: int = 0                    # bumps when a main step is entered: the page speaks once
    voice: Text = NONE
    saved: int = 0                        # records committed this run
    pending_confirmer: str | None = None
    last_seq: int | None = None           # seq of the last Committed (cleared when a new commit starts)


def new_package_code() -> str:
    """A printed label's package id: P + milliseconds (8 base-36 digits) + 3 random = 12 characters,
    so a signed bag code still fits QR version 3 at level Q; unique across an organisation's carts
    unless two print in the same millisecond and draw the same 1 in 46,656."""
    return "P" + base36(time.time_ns() // 1_000_000, 8) + base36(secrets.randbelow(36**3), 3)


@dataclass
class Machine:
    """Holds the current state; ``handle`` is the only way it changes."""

    state: State
    new_round_id: Callable[[], str] = field(default=wire.uuid7)  # injected for tests
    new_package_id: Callable[[], str] = field(default=new_package_code)

    def handle(self, event: Event) -> list[Effect]:
        self.state, effects = step(self.state, event, self.new_round_id, self.new_package_id)
        return effects


Result = tuple[State, list[Effect]]


def step(s: State, ev: Event, new_round_id: Callable[[], str] = wire.uuid7,
         new_package_id: Callable[[], str] = new_package_code) -> Result:
    """The transition function: (state, event) -> (state, effects).  Pure."""
    s2, effects = _dispatch(s, ev, new_round_id, new_package_id)
    return _check_round_age(s2, ev.at), effects


def _dispatch(s: State, ev: Event, new_round_id: Callable[[], str], new_package_id: Callable[[], str]) -> Result:
    if isinstance(ev, Weighed):
        w = ev.weight
        empty = w.net_g is not None and w.stable and abs(w.net_g) < EMPTY_BELOW_G
        return replace(s, weight=w, weight_at=ev.at, armed=s.armed or empty), []
    if isinstance(ev, Tick):
        return s, []
    if isinstance(ev, Rejected):
        return _refuse(s, split(ev.reason))
    if isinstance(ev, ActuatorChanged):
        return _actuator(s, ev.state, ev.reason)
    if isinstance(ev, Committed):
        return _committed(s, ev)
    if isinstance(ev, CommitFailed):
        if s.saving is None:
            return s, []
        reason = split(ev.reason)
        back = s.saving.back if s.saving.rtype != "void" else Step.ROUND
        return _refuse(replace(s, step=back, saving=None, pending_confirmer=None, void_reason=None),
                       t("err.commit_failed", reason=reason.zh, reason_en=reason.en))
    if isinstance(ev, Printed):
        return _printed(s, ev)
    if s.step is Step.SAVING:
        return _refuse(s, t("err.saving"))
    if isinstance(ev, PinConfirmed):
        return _confirm(s, ev.person_id, "pin", ev.at)
    if isinstance(ev, Action):
        return _action(s, ev, new_package_id)
    return _scanned(s, ev.code, ev.at, new_round_id)


# helpers ------------------------------------------------------------------------------------

def _refuse(s: State, reason: Text) -> Result:
    return _speak(replace(s, error=reason, message=NONE), reason), []


def _ok(s: State, message: Text, *, speak: bool = False) -> State:
    s = replace(s, error=NONE, message=message)
    return _speak(s, message) if speak else s


def _speak(s: State, text: Text) -> State:
    return replace(s, voice_seq=s.voice_seq + 1, voice=text)


def _extend(s: State) -> list[Effect]:
    return [] if s.actuator in ("none", "extended", "extending") else [Actuate("extend")]


def _retract(s: State) -> list[Effect]:
    return [] if s.actuator in ("none", "retracted", "retracting") else [Actuate("retract")]


def _check_round_age(s: State, at: datetime) -> State:
    if s.round_started_at is None or s.round_warned:
        return s
    if (at - s.round_started_at).total_seconds() <= s.limits.round_max_s:
        return s
    warning = t("err.round_overdue", hours=f"{s.limits.round_max_s / 3600:g}")
    s = replace(s, round_warned=True)
    return _speak(replace(s, error=warning, message=NONE), warning) if not s.error else s


def round_overdue(s: State, now: datetime) -> bool:
    return s.round_started_at is not None and (now - s.round_started_at).total_seconds() > s.limits.round_max_s


def _weight_problem(s: State) -> Text | None:
    """Why the current reading cannot be taken as a bag's weight (None: it can)."""
    if s.actuator == "fault":
        return t("err.actuator_fault")
    if s.actuator not in ("extended", "none"):
        return t("err.actuator")
    w = s.weight
    if w is None:
        return t("err.no_reading")
    if w.error:
        reason = split(w.error)
        return t("err.scale", reason=reason.zh, reason_en=reason.en)
    if w.net_g is None:
        return t("err.no_reading")
    if w.net_g > s.limits.max_bag_g:
        return t("err.overload", kg=s.limits.max_bag_g // 1000)
    if not w.stable:
        return t("err.unstable")
    if w.net_g < 0 and abs(w.net_g) >= EMPTY_BELOW_G:
        return t("err.negative")
    if w.net_g < EMPTY_BELOW_G:
        return t("err.empty")
    if not s.armed:
        return t("err.not_armed")
    return None


def _weighing(s: State) -> dict[str, Any]:
    w = s.weight
    assert w is not None and w.net_g is not None
    out: dict[str, Any] = {"gross_g": w.net_g + w.tare_g, "tare_g": w.tare_g, "net_g": w.net_g, "stable": True,
                           "protocol": w.protocol or "unknown", "raw": w.raw[:256]}
    if s.weight_at is not None:
        out["measured_at"] = _iso(s.weight_at)
    return out


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds")


def _names(category: str) -> dict[str, str]:
    name = category_name(category)
    return {"category": name.zh, "category_en": name.en}


def _known_package(s: State, code: str) -> Text | None:
    """A bag that must not be taken again: on this list, handed over, or in storage."""
    if any(ln.package_code == code for ln in s.lines) or (s.pending and s.pending.package_code == code):
        return t("err.dup_stop", code=code)
    if any(b.package_code == code for b in s.carried):
        return t("err.dup_carried", code=code)
    if any(b.package_code == code for b in s.stored):
        return t("err.dup_stored", code=code)
    return None


# scans --------------------------------------------------------------------------------------

def _scanned(s: State, code: Code, at: datetime, new_round_id: Callable[[], str]) -> Result:
    if code.org != s.org:
        return _refuse(s, t("err.foreign_org", org=code.org))
    if code.kind == "S":
        return _badge(s, code, at, new_round_id)
    if s.step is Step.IDLE:
        return _refuse(s, t("err.badge_first"))
    if code.kind == "D":
        return _place(s, Step.STOP, code.ident)
    if code.kind == "R":
        return _place(s, Step.STORAGE, code.ident)
    if code.kind == "V":
        return _place(s, Step.TRANSFER, code.ident)
    if code.kind == "B":
        return _bag_scanned(s, code, at)
    return _refuse(s, t("err.code_not_here"))


def _badge(s: State, code: Code, at: datetime, new_round_id: Callable[[], str]) -> Result:
    person = code.ident
    if s.step is Step.IDLE:
        s = replace(s, step=Step.ROUND, collector=person, round_id=new_round_id(), round_started_at=at,
                    round_warned=False)
        return _ok(s, t("ok.round_started", person=person), speak=True), []
    if person == s.collector:
        if s.step is Step.ROUND or (s.step is Step.STOP and not s.lines and s.pending is None
                                    and s.print_job is None):
            return _end_round(s)
        if s.step in (Step.STOP, Step.CONFIRM) and s.lines:
            return _refuse(s, t("err.collector_cannot_confirm"))
        return _refuse(s, t("err.pending" if s.step is Step.STOP else "err.finish_or_cancel"))
    if s.step is Step.ROUND:
        if code.extra and wire.ID_PATTERN.match(code.extra):
            return _place(s, Step.STOP, code.extra)
        return _refuse(s, t("err.badge_no_department"))
    if s.step in (Step.STOP, Step.CONFIRM):
        return _confirm(s, person, "card", at)
    if s.step is Step.STORAGE:
        return _ok(replace(s, keeper=person), t("ok.keeper", person=person)), []
    return _refuse(s, t("err.code_not_here"))


def _end_round(s: State) -> Result:
    effects = _retract(s) if s.step is Step.STOP else []
    message = (t("ok.round_ended_carrying", count=len(s.carried)) if s.carried else t("ok.round_ended"))
    s = replace(s, step=Step.IDLE, collector=None, round_id=None, round_started_at=None, round_warned=False,
                department=None, place=None, lines=(), pending=None, editing=None, print_job=None)
    return _ok(s, message, speak=True), effects


def _place(s: State, target: Step, ident: str) -> Result:
    """A department, storage-room or vehicle code: enter that step from the round (or an empty stop)."""
    if s.step is Step.STOP and (s.lines or s.pending or s.print_job):
        return _refuse(s, t("err.unconfirmed" if s.lines else "err.pending"))
    if s.step is Step.CONFIRM:
        return _refuse(s, t("err.unconfirmed"))
    switch_room = s.step is Step.STORAGE and target is Step.STORAGE and not s.reweighs and s.batch is None
    if s.step not in (Step.ROUND, Step.STOP) and not switch_room:
        return _refuse(s, t("err.finish_or_cancel"))
    was_stop = s.step is Step.STOP
    s = replace(s, department=None, place=None, lines=(), pending=None, editing=None, print_job=None,
                reweighs=(), batch=None, keeper=None, manifest=None)
    if target is Step.STOP:
        s = replace(s, step=Step.STOP, department=ident)
        return _ok(s, t("ok.department", department=ident), speak=True), _extend(s)
    if target is Step.STORAGE:
        s = replace(s, step=Step.STORAGE, place=ident)
        return _ok(s, t("ok.storage", room=ident, count=len(s.carried)), speak=True), _extend(s)
    s = replace(s, step=Step.TRANSFER, place=ident)
    return (_ok(s, t("ok.transfer", vehicle=ident, count=len(s.stored)), speak=True),
            _retract(s) if was_stop else [])


def _bag_scanned(s: State, code: Code, at: datetime) -> Result:
    if s.step is Step.STOP:
        return _stop_bag(s, code)
    if s.step is Step.STORAGE:
        return _reweigh(s, code.ident)
    if s.step is Step.VOID:
        return _void_bag(s, code.ident, at)
    if s.step is Step.ROUND:
        return _refuse(s, t("err.department_first"))
    if s.step is Step.CONFIRM:
        return _refuse(s, t("err.confirming"))
    return _refuse(s, t("err.code_not_here"))


def _stop_bag(s: State, code: Code) -> Result:
    if s.print_job is not None:
        return _refuse(s, t("err.printing"))
    if s.editing is not None:
        return _refuse(s, t("err.pending"))
    p = s.pending
    if p is not None and p.category is None:   # a label without category is waiting for its choice
        return _refuse(s, t("err.dup_stop", code=code.ident) if p.package_code == code.ident else t("err.pending"))
    known = _known_package(replace(s, pending=None), code.ident)
    if known is not None:
        return _refuse(s, known)
    label_category = code.category
    if p is not None:                          # category chosen on screen; the bag had a label after all
        assert p.category is not None
        if label_category is not None and label_category != p.category:
            return _refuse(s, _mismatch(p.category, label_category))
        return _add_line(s, Line(code.ident, p.category, p.weight_g, p.weighing,
                                 "scanned" if label_category else "plain"))
    problem = _weight_problem(s)
    if problem is not None:
        return _refuse(s, problem)
    assert s.weight is not None and s.weight.net_g is not None
    grams = s.weight.net_g
    if label_category is None:
        s = replace(s, pending=Pending(grams, _weighing(s), None, code.ident, "plain"))
        return _ok(s, t("ok.label_scanned")), []
    return _add_line(s, Line(code.ident, label_category, grams, _weighing(s)))


def _mismatch(chosen: str, label: str) -> Text:
    c, lb = category_name(chosen), category_name(label)
    return t("err.category_mismatch", chosen=c.zh, chosen_en=c.en, label=lb.zh, label_en=lb.en)


def _add_line(s: State, line: Line) -> Result:
    s = replace(s, lines=(*s.lines, line), pending=None, print_job=None, armed=False)
    return _ok(s, t("ok.bag_added", code=line.package_code, grams=line.weight_g, **_names(line.category)),
               speak=True), []


# storage re-weigh ---------------------------------------------------------------------------

def _reweigh(s: State, code: str) -> Result:
    if not any(b.package_code == code for b in s.carried):
        if any(b.package_code == code for b in s.stored):
            return _refuse(s, t("err.dup_stored", code=code))
        return _refuse(s, t("err.not_carried", code=code))
    if any(r.package_code == code for r in s.reweighs) or (s.batch and code in s.batch.package_codes):
        return _refuse(s, t("err.reweighed", code=code))
    problem = _weight_problem(s)
    if problem is not None:
        return _refuse(s, problem)
    assert s.weight is not None and s.weight.net_g is not None
    r = Reweigh(code, s.weight.net_g, _weighing(s))
    s = replace(s, reweighs=(*s.reweighs, r), armed=False)
    return _ok(s, t("ok.reweighed", code=code, grams=r.weight_g), speak=True), []


def _unweighed(s: State) -> tuple[str, ...]:
    done = {r.package_code for r in s.reweighs} | set(s.batch.package_codes if s.batch else ())
    return tuple(b.package_code for b in s.carried if b.package_code not in done)


# confirmation -------------------------------------------------------------------------------

def _confirm(s: State, person: str, method: str, at: datetime) -> Result:
    if s.step not in (Step.STOP, Step.CONFIRM):
        return _refuse(s, t("err.not_available"))
    if not s.lines:
        return _refuse(s, t("err.no_lines"))
    if s.pending is not None or s.print_job is not None or s.editing is not None:
        return _refuse(s, t("err.pending"))
    if person == s.collector:
        return _refuse(s, t("err.collector_cannot_confirm"))
    if not wire.ID_PATTERN.match(person):
        return _refuse(s, t("err.bad_person"))
    body = handover_body(s, nurse=person, at=at, auth=method)
    s = replace(s, step=Step.SAVING, saving=Saving("handover", s.step, at), pending_confirmer=person,
                last_seq=None, error=NONE, message=NONE)
    return _speak(s, t("prompt.saving")), [Commit("handover", body)]


def _committed(s: State, ev: Committed) -> Result:
    sv = s.saving
    if sv is None:
        return s, []
    before = (s.carried, s.stored)
    carried, stored, effects = s.carried, s.stored, list[Effect]()
    if sv.rtype == "handover":
        assert s.department is not None
        at = datetime.fromisoformat(_iso(sv.at))  # as recorded (ms), so a replay of the ledger is identical
        carried += tuple(Bag(ln.package_code, ln.category, ln.weight_g, s.department, at, ev.record_id)
                         for ln in s.lines)
        message, effects = t("ok.saved_handover", seq=ev.seq), _retract(s)
    elif sv.rtype == "storage_in":
        weights = {r.package_code: r.weight_g for r in s.reweighs}
        present = {*weights, *(s.batch.package_codes if s.batch else ())}
        stored += tuple(replace(b, weight_g=weights.get(b.package_code, b.weight_g), facility=s.place)
                        for b in s.carried if b.package_code in present)
        carried = ()
        message, effects = t("ok.saved_storage", seq=ev.seq), _retract(s)
    elif sv.rtype == "transfer":
        stored = ()
        message = t("ok.saved_transfer", seq=ev.seq)
    else:  # void
        if s.last_record is not None and sv.void_record == s.last_record.record_id:
            carried, stored = s.last_record.before
        elif sv.void_package is not None:
            carried = tuple(b for b in carried if b.package_code != sv.void_package)
            stored = tuple(b for b in stored if b.package_code != sv.void_package)
        message = t("ok.saved_void", seq=ev.seq)
    s = replace(s, step=Step.ROUND, saving=None, carried=carried, stored=stored, department=None, place=None,
                lines=(), pending=None, editing=None, print_job=None, reweighs=(), batch=None, keeper=None,
                manifest=None, void_reason=None, pending_confirmer=None, saved=s.saved + 1, last_seq=ev.seq,
                last_record=LastRecord(ev.record_id, sv.rtype, ev.seq, before))
    return _ok(s, message, speak=True), effects


def _printed(s: State, ev: Printed) -> Result:
    job = s.print_job
    if job is None:
        return s, []                           # a late answer for a cancelled job
    if not ev.ok:
        reason = split(ev.reason or "?")
        return _refuse(replace(s, print_job=None, editing=None if job.reprint else s.editing),
                       t("err.print_failed", reason=reason.zh, reason_en=reason.en))
    if job.reprint:
        lines = tuple(replace(ln, category=job.category) if ln.package_code == job.package_code else ln
                      for ln in s.lines)
        s = replace(s, lines=lines, print_job=None, editing=None)
        return _ok(s, t("ok.category_changed", code=job.package_code, **_names(job.category)), speak=True), []
    p = s.pending
    assert p is not None
    return _add_line(s, Line(job.package_code, job.category, p.weight_g, p.weighing, "printed"))


def _actuator(s: State, state: str, reason: str) -> Result:
    if state not in ACTUATOR_STATES:
        return s, []
    s = replace(s, actuator=state)
    if state == "fault":
        why = split(reason)
        return _refuse(s, t("err.actuator_fault_why", reason=why.zh, reason_en=why.en) if reason
                       else t("err.actuator_fault"))
    return s, []


# actions ------------------------------------------------------------------------------------

ActionHandler = Callable[[State, str, str, datetime, Callable[[], str]], Result]


def _action(s: State, ev: Action, new_package_id: Callable[[], str]) -> Result:
    name, _, arg = ev.id.partition(":")
    if name == "choose" and not arg:
        arg = ev.value.strip().upper()
    handler = _HANDLERS.get(name)
    if handler is None or not _available(s, name, arg):
        return _refuse(s, t("err.not_available"))
    return handler(s, arg, ev.value, ev.at, new_package_id)


def _do_end_round(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    return _end_round(s)


def _do_choose(s: State, cat: str, _value: str, at: datetime, _ids: Callable[[], str]) -> Result:
    if s.editing is not None:
        return _edit_to(s, s.editing, cat, at)
    p = s.pending
    if p is not None and p.category is None:       # scanned label without category: this completes it
        assert p.package_code is not None
        return _add_line(s, Line(p.package_code, cat, p.weight_g, p.weighing, "plain"))
    if p is not None:
        return _ok(replace(s, pending=replace(p, category=cat)), t("ok.category_chosen", **_names(cat))), []
    problem = _weight_problem(s)
    if problem is not None:
        return _refuse(s, problem)
    assert s.weight is not None and s.weight.net_g is not None
    s = replace(s, pending=Pending(s.weight.net_g, _weighing(s), cat, None, "printed"))
    return _ok(s, t("ok.category_chosen", **_names(cat))), []


def _edit_to(s: State, code: str, cat: str, at: datetime) -> Result:
    line = next(ln for ln in s.lines if ln.package_code == code)
    if cat == line.category:
        return _ok(replace(s, editing=None), t("ok.cancelled")), []
    if line.label == "printed":                   # the label shows the category: reprint it first
        job = PrintJob(code, cat, reprint=True)
        return replace(s, print_job=job, error=NONE, message=NONE), [_print(s, job, line.weight_g, at)]
    lines = tuple(replace(ln, category=cat) if ln.package_code == code else ln for ln in s.lines)
    return _ok(replace(s, lines=lines, editing=None),
               t("ok.category_changed", code=code, **_names(cat)), speak=True), []


def _do_print(s: State, _arg: str, _value: str, at: datetime, new_package_id: Callable[[], str]) -> Result:
    p = s.pending
    assert p is not None and p.category is not None
    code = p.package_code
    for _ in range(3):                            # a generator repeating itself must not make a duplicate
        if code is not None and wire.ID_PATTERN.match(code) and _known_package(replace(s, pending=None), code) is None:
            break
        code = new_package_id()
    else:
        return _refuse(s, t("err.package_id"))
    assert code is not None
    job = PrintJob(code, p.category)
    s = replace(s, pending=replace(p, package_code=code), print_job=job, error=NONE, message=NONE)
    return s, [_print(s, job, p.weight_g, at)]


def _print(s: State, job: PrintJob, weight_g: int, at: datetime) -> PrintLabel:
    """The label of waste-domain §8.3 (medical minimum); the printer module lays it out."""
    zh, en, _ = CATEGORY_NAMES[job.category]
    fields = {"org": s.org, "department": s.department, "category": job.category, "category_name": zh,
              "category_name_en": en, "waste_code": wire.CATEGORIES[job.category][1], "weight_g": weight_g,
              "produced_at": _iso(at),
              "package_code": job.package_code, "collector": s.collector, "cart": s.cart, "notes": ""}
    return PrintLabel(Code("B", s.org, job.package_code, LETTER_OF[job.category]), fields)


def _do_remove_last(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    if s.step is Step.STORAGE:
        if s.batch is not None:
            s2 = replace(s, batch=None, armed=True)
            return _ok(s2, t("ok.reweigh_undone", code=",".join(s.batch.package_codes)[:40])), []
        last = s.reweighs[-1]
        return _ok(replace(s, reweighs=s.reweighs[:-1], armed=True),
                   t("ok.reweigh_undone", code=last.package_code)), []
    last_line = s.lines[-1]
    return _ok(replace(s, lines=s.lines[:-1], armed=True), t("ok.bag_removed", code=last_line.package_code),
               speak=True), []


def _do_edit(s: State, code: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    return _ok(replace(s, editing=code), t("prompt.edit")), []


def _do_confirm(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    return _ok(replace(s, step=Step.CONFIRM), t("ok.confirm"), speak=True), []


def _do_confirm_pin(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    return _refuse(s, t("err.pin_unchecked"))     # the shell should have checked it and sent PinConfirmed


def _do_back(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    return _ok(replace(s, step=Step.STOP), NONE), []


def _do_cancel(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    if s.step is Step.STOP:
        if _busy_stop(s):
            message = t("ok.cancelled" if s.editing else "ok.bag_cancelled")
            return _ok(replace(s, pending=None, print_job=None, editing=None), message), []
        s2 = replace(s, step=Step.ROUND, department=None)
        return _ok(s2, t("ok.left_stop"), speak=True), _retract(s)
    effects = _retract(s) if s.step is Step.STORAGE else []
    s = replace(s, step=Step.ROUND, place=None, reweighs=(), batch=None, keeper=None, manifest=None,
                void_reason=None)
    return _ok(s, t("ok.cancelled"), speak=True), effects


def _do_batch(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    problem = _weight_problem(s)
    if problem is not None:
        return _refuse(s, problem)
    assert s.weight is not None and s.weight.net_g is not None
    batch = Batch(_unweighed(s), s.weight.net_g, _weighing(s))
    s = replace(s, batch=batch, armed=False)
    return _ok(s, t("ok.batch", count=len(batch.package_codes), grams=batch.weight_g), speak=True), []


def _do_finish(s: State, _arg: str, _value: str, at: datetime, _ids: Callable[[], str]) -> Result:
    if s.step is Step.STORAGE:
        if not s.carried:
            return _refuse(s, t("err.nothing_to_store"))
        if not s.reweighs and s.batch is None:
            return _refuse(s, t("err.reweigh_first"))
        rtype, body = "storage_in", storage_in_body(s, at)
    else:
        if not s.stored:
            return _refuse(s, t("err.nothing_to_transfer"))
        if s.manifest is None:
            return _refuse(s, t("err.manifest_needed"))
        rtype, body = "transfer", transfer_body(s, at)
    s = replace(s, step=Step.SAVING, saving=Saving(rtype, s.step, at), last_seq=None, error=NONE, message=NONE)
    return _speak(s, t("prompt.saving")), [Commit(rtype, body)]


def _do_manifest(s: State, _arg: str, value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    number = value.strip().upper()
    if not wire.ID_PATTERN.match(number):
        return _refuse(s, t("err.manifest_bad"))
    return _ok(replace(s, manifest=number), t("ok.manifest", number=number)), []


def _reason(value: str) -> str | None:
    reason = " ".join(value.split())
    return reason[:REASON_MAX] if reason else None


def _do_void_bag(s: State, _arg: str, value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    reason = _reason(value)
    if reason is None:
        return _refuse(s, t("err.reason_needed"))
    return _ok(replace(s, step=Step.VOID, void_reason=reason), t("ok.void_scan"), speak=True), []


def _do_void(s: State, record_id: str, value: str, at: datetime, _ids: Callable[[], str]) -> Result:
    reason = _reason(value)
    if reason is None:
        return _refuse(s, t("err.reason_needed"))
    assert s.last_record is not None
    body = void_body(s, at=at, reason=reason, record_id=record_id, rtype=s.last_record.rtype)
    s = replace(s, step=Step.SAVING, saving=Saving("void", Step.ROUND, at, void_record=record_id),
                last_seq=None, error=NONE, message=NONE)
    return _speak(s, t("prompt.saving")), [Commit("void", body)]


def _void_bag(s: State, code: str, at: datetime) -> Result:
    bag = next((b for b in (*s.carried, *s.stored) if b.package_code == code), None)
    if bag is None:
        return _refuse(s, t("err.not_on_cart", code=code))
    assert s.void_reason is not None
    body = void_body(s, at=at, reason=s.void_reason, record_id=bag.record_id, rtype="handover", package=code)
    s = replace(s, step=Step.SAVING, saving=Saving("void", Step.ROUND, at, void_package=code),
                last_seq=None, error=NONE, message=NONE)
    return _speak(s, t("prompt.saving")), [Commit("void", body)]


def _typed_place(s: State, target: Step, value: str) -> Result:
    """start_storage / start_transfer: the room or vehicle code typed instead of scanned."""
    ident = value.strip().upper()
    if not wire.ID_PATTERN.match(ident):
        return _refuse(s, t("err.place_bad"))
    return _place(s, target, ident)


def _do_start_storage(s: State, _arg: str, value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    return _typed_place(s, Step.STORAGE, value)


def _do_start_transfer(s: State, _arg: str, value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    return _typed_place(s, Step.TRANSFER, value)


def _do_scale(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    direction = "extend" if s.step in (Step.STOP, Step.STORAGE) else "retract"
    return _ok(s, t("ok.scale_moving")), [Actuate(direction)]


_HANDLERS: dict[str, ActionHandler] = {
    "end_round": _do_end_round, "choose": _do_choose, "print_label": _do_print,
    "remove_last": _do_remove_last, "edit": _do_edit, "confirm": _do_confirm, "confirm_pin": _do_confirm_pin,
    "back": _do_back, "cancel": _do_cancel, "batch_weight": _do_batch, "finish": _do_finish,
    "manifest": _do_manifest, "void_bag": _do_void_bag, "void": _do_void, "scale_out": _do_scale,
    "scale_in": _do_scale, "start_storage": _do_start_storage, "start_transfer": _do_start_transfer,
}
_WITH_ARG = {"choose", "edit", "void"}


def action_known(action_id: str) -> bool:
    """Is ``action_id`` one the machine understands at all (the kiosk answers 400 otherwise)?"""
    name, colon, arg = action_id.partition(":")
    if name not in _HANDLERS:
        return False
    if name == "choose":
        return not colon or arg in CATEGORY_NAMES
    return bool(arg) if name in _WITH_ARG else not colon


def _busy_stop(s: State) -> bool:
    return s.pending is not None or s.print_job is not None or s.editing is not None


def _available(s: State, name: str, arg: str) -> bool:
    """Whether action ``name[:arg]`` applies in this state.  The single source for both the
    handler's gate and the button list, so a listed button is never "not available"."""
    step_ = s.step
    if name in ("end_round", "start_storage", "start_transfer"):
        return step_ is Step.ROUND
    if name == "choose":
        if step_ is not Step.STOP or s.print_job is not None or arg not in CATEGORY_NAMES:
            return False
        if s.editing is not None or s.pending is not None:
            return True
        w = s.weight                          # offer categories once something lies on the scale
        return w is not None and w.net_g is not None and w.net_g >= EMPTY_BELOW_G
    if name == "print_label":
        p = s.pending
        return step_ is Step.STOP and s.print_job is None and p is not None and p.category is not None
    if name == "remove_last":
        if step_ is Step.STORAGE:
            return bool(s.reweighs) or s.batch is not None
        return step_ is Step.STOP and bool(s.lines) and not _busy_stop(s)
    if name == "edit":
        return step_ is Step.STOP and not _busy_stop(s) and any(
            ln.package_code == arg and ln.editable for ln in s.lines)
    if name == "confirm":
        return step_ is Step.STOP and bool(s.lines) and not _busy_stop(s)
    if name in ("confirm_pin", "back"):
        return step_ is Step.CONFIRM
    if name == "cancel":
        if step_ is Step.STOP:
            return _busy_stop(s) or not s.lines
        return step_ in (Step.STORAGE, Step.TRANSFER, Step.VOID)
    if name == "batch_weight":
        return step_ is Step.STORAGE and bool(_unweighed(s))
    if name == "finish":
        if step_ is Step.STORAGE:
            return bool(s.carried)
        return step_ is Step.TRANSFER and bool(s.stored)
    if name == "manifest":
        return step_ is Step.TRANSFER
    if name == "void_bag":
        return step_ is Step.ROUND and bool(s.carried or s.stored)
    if name == "void":
        last = s.last_record
        return step_ is Step.ROUND and last is not None and last.rtype != "void" and arg == last.record_id
    if name == "scale_out":
        return step_ in (Step.STOP, Step.STORAGE) and s.actuator in ("unknown", "retracted", "retracting", "fault")
    if name == "scale_in":
        return step_ not in (Step.STOP, Step.STORAGE, Step.SAVING) and s.actuator in (
            "extended", "extending", "fault")
    return False


# record bodies ------------------------------------------------------------------------------

def totals(lines: Iterable[Line | Bag]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for line in lines:
        tt = out.setdefault(line.category, {"category": line.category, "count": 0, "weight_g": 0})
        tt["count"] += 1
        tt["weight_g"] += line.weight_g
    return list(out.values())


def handover_body(s: State, *, nurse: str, at: datetime, auth: str = "card") -> dict[str, Any]:
    """The handover record (waste-domain §8.4) for the lines at the current stop."""
    assert s.collector is not None and s.department is not None and s.round_id is not None
    return {
        "org": s.org,
        "round_id": s.round_id,
        "handover_at": _iso(at),
        "department": s.department,
        "from_party": {"person_id": nurse, "auth_method": auth},
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


def tolerance_g(limits: Limits, expected_g: int) -> int:
    """Allowed |re-weigh - expected|: a fixed floor (scale uncertainty) or a share, the larger."""
    return max(limits.tolerance_g, expected_g * limits.tolerance_pct // 100)


def _permille(delta: int, expected: int) -> int:
    return round(delta * 1000 / expected) if expected else 0


def storage_in_body(s: State, at: datetime) -> dict[str, Any]:
    """The storage-in record (waste-domain §8.5, direction IN) with its reconciliation against
    the bags handed over since the last check-in: per bag OK / DEVIATION / MISSING / IN_BATCH,
    overdue flags, and a summary.  Problems are recorded (ACCEPTED_WITH_NOTE), never hidden."""
    assert s.collector is not None and s.place is not None
    lim = s.limits
    reweighed = {r.package_code: r for r in s.reweighs}
    in_batch = set(s.batch.package_codes) if s.batch else set()
    packages: list[dict[str, Any]] = []
    counts = {"missing": 0, "deviation": 0, "overdue": 0}
    expected_present = reweigh_sum = 0
    for bag in s.carried:
        overdue = (at - bag.handed_over_at).total_seconds() > lim.storage_overdue_s
        entry: dict[str, Any] = {
            "package_code": bag.package_code, "category": bag.category,
            "waste_code": wire.CATEGORIES[bag.category][1], "department": bag.department,
            "handover_record_id": bag.record_id, "handed_over_at": _iso(bag.handed_over_at),
            "expected_g": bag.weight_g, "reweigh_g": None, "delta_g": None, "overdue": overdue}
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
        "org": s.org, "facility": s.place, "direction": "IN", "moved_at": _iso(at),
        "operator": {"person_id": s.collector, "device_id": s.cart},
        "packages": packages,
        "tolerance": {"min_g": lim.tolerance_g, "pct": lim.tolerance_pct},
        "overdue_after_s": lim.storage_overdue_s,
    }
    if s.round_id is not None:
        body["round_id"] = s.round_id
    if s.keeper is not None:
        body["keeper"] = {"person_id": s.keeper, "auth_method": "card"}
    if s.batch is not None:
        expected = sum(b.weight_g for b in s.carried if b.package_code in in_batch)
        delta = s.batch.weight_g - expected
        status = "DEVIATION" if abs(delta) > tolerance_g(lim, expected) else "OK"
        counts["deviation"] += status == "DEVIATION"
        reweigh_sum += s.batch.weight_g
        body["batch"] = {"package_codes": list(s.batch.package_codes), "expected_g": expected,
                         "reweigh_g": s.batch.weight_g, "delta_g": delta,
                         "delta_permille": _permille(delta, expected), "status": status,
                         "weighing": s.batch.weighing}
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


def transfer_body(s: State, at: datetime) -> dict[str, Any]:
    """The hand-over to the transporter (waste-domain §8.6, the cart's part: what left, on which
    vehicle, under which manifest).  Disposal method and final destination come from the receiver."""
    assert s.collector is not None and s.place is not None and s.manifest is not None
    body: dict[str, Any] = {
        "org": s.org, "handed_over_at": _iso(at),
        "from_party": {"person_id": s.collector, "device_id": s.cart},
        "carrier": {"vehicle": s.place},
        "manifest": {"type": "national" if _NATIONAL_MANIFEST.match(s.manifest) else "local",
                     "number": s.manifest},
        "lines": [{"package_code": b.package_code, "category": b.category,
                   "waste_code": wire.CATEGORIES[b.category][1], "weight_g": b.weight_g,
                   "facility": b.facility or "UNKNOWN"} for b in s.stored],
        "totals": totals(s.stored),
        "disposal_method": None, "final_destination": None,
    }
    if s.round_id is not None:
        body["round_id"] = s.round_id
    return body


def void_body(s: State, *, at: datetime, reason: str, record_id: str | None, rtype: str | None,
              package: str | None = None) -> dict[str, Any]:
    """A void (waste-domain §8 conventions): a new record pointing at the original, with a reason."""
    assert s.collector is not None
    return {"org": s.org, "voided_at": _iso(at), "voided_record_id": record_id, "voided_type": rtype,
            "package_code": package, "reason": reason,
            "by": {"person_id": s.collector, "device_id": s.cart}}


def replay(s: State, records: Iterable[tuple[str, str, int, dict[str, Any]]]) -> State:
    """Rebuild what the cart carries and has in storage from its own committed records
    ``(record_id, rtype, seq, body)`` in seq order: the ledger is the truth, and a restarted cart
    must still refuse a bag handed over before the restart (and reconcile it at storage-in)."""
    carried, stored, last = s.carried, s.stored, s.last_record
    for record_id, rtype, seq, body in records:
        before = (carried, stored)
        if rtype == "handover":
            at = datetime.fromisoformat(body["handover_at"])
            carried += tuple(Bag(ln["package_code"], ln["category"], ln["weight_g"], body["department"], at,
                                 record_id) for ln in body["lines"])
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
            continue
        last = LastRecord(record_id, rtype, seq, before)
    return replace(s, carried=carried, stored=stored, last_record=last)


# the screen model ---------------------------------------------------------------------------

def _prompt(s: State) -> Text:
    if s.step is Step.STOP:
        if s.print_job is not None:
            return t("prompt.printing")
        if s.editing is not None:
            return t("prompt.edit")
        if s.pending is not None:
            return t("prompt.choose" if s.pending.category is None else "prompt.print_or_scan")
        w = s.weight
        if s.lines and not s.armed:
            return t("prompt.next_bag")
        if w is None or w.net_g is None or w.net_g < EMPTY_BELOW_G:
            return t("prompt.place_bag")
        return t("prompt.label_or_choose" if w.stable else "prompt.wait_stable")
    if s.step is Step.STORAGE and s.carried and not _unweighed(s):
        return t("prompt.storage_done")
    if s.step is Step.TRANSFER and s.manifest is not None:
        return t("prompt.transfer_ready")
    return t(f"prompt.{s.step.value}")


def _cat_json(category: str) -> dict[str, str]:
    name = category_name(category)
    return {"zh": name.zh, "en": name.en}


def _actions(s: State) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(action_id: str, label: Text, style: str = "normal", needs: str | None = None) -> None:
        name, _, arg = action_id.partition(":")
        if _available(s, name, arg):
            out.append({"id": action_id, "label": label.as_json(), "style": style, "needs": needs})

    for cat in CATEGORY_NAMES:
        add(f"choose:{cat}", category_name(cat))
    add("print_label", t("action.print_label"), "primary")
    add("confirm", t("action.confirm"), "primary")
    add("confirm_pin", t("action.confirm_pin"), "primary", "pin")
    add("batch_weight", t("action.batch_weight"))
    add("manifest", t("action.manifest"), "primary" if s.manifest is None else "normal", "text")
    add("finish", t("action.finish_storage" if s.step is Step.STORAGE else "action.finish_transfer"), "primary")
    for ln in s.lines:
        add(f"edit:{ln.package_code}", t("action.edit", code=ln.package_code))
    add("remove_last", t("action.undo_reweigh" if s.step is Step.STORAGE else "action.remove_last"), "danger")
    add("back", t("action.back"))
    cancel = ("action.cancel_edit" if s.editing else "action.cancel_bag" if s.pending or s.print_job
              else "action.leave_stop" if s.step is Step.STOP else "action.cancel")
    add("cancel", t(cancel), "danger" if s.step is not Step.STOP else "normal")
    if s.last_record is not None:
        add(f"void:{s.last_record.record_id}", t("action.void_record", seq=s.last_record.seq), "danger", "reason")
    add("start_storage", t("action.start_storage"), needs="text")
    add("start_transfer", t("action.start_transfer"), needs="text")
    add("void_bag", t("action.void_bag"), "danger", "reason")
    add("end_round", t("action.end_round"))
    add("scale_out", t("action.scale_out"))
    add("scale_in", t("action.scale_in"))
    return out


def _weight_json(s: State) -> dict[str, Any] | None:
    w = s.weight
    if w is None:
        return None
    return {"net_g": w.net_g, "stable": w.stable, "error": split(w.error).as_json() if w.error else None}


def _lines_json(s: State) -> tuple[list[dict[str, Any]], list[Line | Bag]]:
    if s.step in (Step.STOP, Step.CONFIRM) or (s.step is Step.SAVING and s.lines):
        return [{"package_code": ln.package_code, "category": ln.category, "category_name": _cat_json(ln.category),
                 "weight_g": ln.weight_g, "editable": _available(s, "edit", ln.package_code), "status": None}
                for ln in s.lines], list(s.lines)
    if s.step is Step.STORAGE or (s.step is Step.SAVING and s.saving and s.saving.rtype == "storage_in"):
        reweighed = {r.package_code: r.weight_g for r in s.reweighs}
        in_batch = set(s.batch.package_codes) if s.batch else set()
        out = []
        for b in s.carried:
            grams = reweighed.get(b.package_code)
            status = ("batch" if b.package_code in in_batch else "waiting" if grams is None
                      else "deviation" if abs(grams - b.weight_g) > tolerance_g(s.limits, b.weight_g) else "ok")
            out.append({"package_code": b.package_code, "category": b.category,
                        "category_name": _cat_json(b.category), "weight_g": b.weight_g if grams is None else grams,
                        "editable": False, "status": status})
        return out, list(s.carried)
    if s.step is Step.TRANSFER or (s.step is Step.SAVING and s.saving and s.saving.rtype == "transfer"):
        return [{"package_code": b.package_code, "category": b.category, "category_name": _cat_json(b.category),
                 "weight_g": b.weight_g, "editable": False, "status": None} for b in s.stored], list(s.stored)
    return [], list(s.carried)   # between stops: what the cart carries


def view(s: State, now: datetime) -> dict[str, Any]:
    """The kiosk's screen model (JSON-able; the shell adds ``device``).  Line entries carry one
    addition to the contract: ``status`` (storage: waiting | ok | deviation | batch, else null)."""
    lines, counted = _lines_json(s)
    p = s.pending
    pending: dict[str, Any] | None = None
    if p is not None or s.editing is not None or s.print_job is not None:
        line = next((ln for ln in s.lines if ln.package_code == s.editing), None)
        category = (s.print_job.category if s.print_job else p.category if p else line.category if line else None)
        pending = {
            "package_code": (s.print_job.package_code if s.print_job else p.package_code if p
                             else s.editing),
            "category": category, "category_name": _cat_json(category) if category else None,
            "weight_g": p.weight_g if p else line.weight_g if line else None,
            "printing": s.print_job is not None, "editing": s.editing is not None,
        }
    asks = s.step is Step.STOP and s.print_job is None and _available(s, "choose", "INFECTIOUS")
    return {
        "step": s.step.value,
        "title": t(f"title.{s.step.value}").as_json(),
        "prompt": _prompt(s).as_json(),
        "error": s.error.as_json(),
        "message": s.message.as_json(),
        "saved_seq": s.last_seq,
        "collector": s.collector,
        "department": s.department,
        "place": s.place,
        "round_started_at": _iso(s.round_started_at) if s.round_started_at else None,
        "round_overdue": round_overdue(s, now),
        "weight": _weight_json(s),
        "lines": lines,
        "totals": [{**tt, "category_name": _cat_json(tt["category"])} for tt in totals(counted)],
        "pending": pending,
        "actions": _actions(s),
        "categories": [{"id": c, "name": {"zh": zh, "en": en}, "color": color}
                       for c, (zh, en, color) in CATEGORY_NAMES.items()] if asks else [],
        "voice": {"id": s.voice_seq, "zh": s.voice.zh, "en": s.voice.en} if s.voice_seq else None,
    }
