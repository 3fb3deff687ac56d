"""The kiosk's buttons: one declaration per action — its handler, when it applies, its label and style,
and what it needs typed.  The same declaration gates the handler and lists the button, so a listed
button is never "not available"; ``ACTIONS`` is in the order the buttons are shown.

Action ids: ``end_round``; ``choose:<CATEGORY>`` (or ``choose`` with value=<CATEGORY>);
``print_label``; ``remove_last``; ``edit:<package_code>``; ``confirm`` (to the nurse screen);
``confirm_pin`` (the SHELL checks the PIN and sends PinConfirmed or Rejected; never forwarded);
``back``; ``cancel``; ``batch_weight``; ``finish``; ``manifest`` (needs "text"); ``void_bag`` (needs
"reason"; then scan the bag); ``void:<record_id>`` (needs "reason"; the last committed record);
``scale_out``; ``scale_in``; ``start_storage`` / ``start_transfer`` (needs "text": a room / vehicle
code typed instead of scanned).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, NotRequired, TypedDict

from edge import wire
from edge.catalogue import CATEGORIES, CATEGORY, LABEL_NOTE, LABEL_NOTES, VOID_REASONS
from edge.codes import Code
from edge.messages import NO_MSG, Msg, Text, category_name, msg
from edge.workflow.events import Action, Actuate, LabelFields, PrintLabel
from edge.workflow.moves import (
    Result,
    add_line,
    end_round,
    enter,
    known_package,
    ok,
    refuse,
    retract,
    taken_weight,
    with_stop,
)
from edge.workflow.records import note_words
from edge.workflow.state import (
    COMPONENTS_MAX,
    EMPTY_BELOW_G,
    Batch,
    Line,
    Pending,
    PrintJob,
    State,
    Step,
    Stop,
)
from edge.workflow.visits import (
    Handler,
    can_correct,
    can_void,
    changed,
    correct_record,
    finish,
    lost_pending,
    manifest_entry,
    reject_storage,
    report_lost,
    unweighed,
    void_bag,
    void_record,
)


class TextView(TypedDict):
    """A text on the screen, in both languages."""

    zh: str
    en: str


class ReasonView(TypedDict):
    id: str
    zh: str
    en: str


class ActionView(TypedDict):
    """A button as the screen model lists it."""

    id: str
    label: TextView
    style: str          # normal | primary | danger | chosen (a note that is on)
    needs: str | None   # text | reason | pin
    reasons: NotRequired[list[ReasonView]]  # needs "reason": the list to choose from (value "ID|words")


@dataclass(frozen=True)
class Spec:
    """One action: ``handle(state, arg, value, at, new_package_id)`` runs only when ``available(state, arg)``."""

    name: str
    handle: Handler
    available: Callable[[State, str], bool]
    label: Callable[[State, str], Msg | Text]
    style: Callable[[State], str] = lambda _s: "normal"
    needs: str | None = None                            # "text" | "reason" | "pin": what the kiosk asks for
    arg: Literal["none", "any", "category"] = "none"    # what may follow "name:"
    args: Callable[[State], Iterable[str]] = lambda _s: ("",)  # the buttons listed: one per arg


def _busy(s: State) -> bool:
    return s.stop is not None and s.stop.busy


# handlers -----------------------------------------------------------------------------------

def _end_round(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    return end_round(s)


def _choose(s: State, cat: str, _value: str, at: datetime, _ids: Callable[[], str]) -> Result:
    stop = s.stop
    assert stop is not None  # available() holds only at a stop
    if stop.editing is not None:
        return _edit_to(s, stop, stop.editing, cat, at)
    p = stop.pending
    if p is not None and p.category is None and p.package_code is not None:  # scanned label without category
        return add_line(s, stop, Line(p.package_code, cat, p.weight_g, p.weighing, "plain"))
    if p is not None:
        return ok(with_stop(s, stop, pending=replace(p, category=cat)),
                  msg("ok.category_chosen", category=category_name(cat))), []
    taken = taken_weight(s)
    if not isinstance(taken, tuple):
        return refuse(s, taken)
    s = with_stop(s, stop, pending=Pending(*taken, cat, None, "printed"))
    return ok(s, msg("ok.category_chosen", category=category_name(cat))), []


def _edit_to(s: State, stop: Stop, code: str, cat: str, at: datetime) -> Result:
    line = next(ln for ln in stop.lines if ln.package_code == code)
    if cat == line.category:
        return ok(with_stop(s, stop, editing=None), msg("ok.cancelled")), []
    if CATEGORY[cat].needs_components and not line.components:
        return refuse(s, msg("rules.edit_to_chemical"))
    if line.label == "printed":                   # the label shows the category: reprint it first
        job = PrintJob(code, cat, reprint=True)
        s = replace(with_stop(s, stop, print_job=job), error=NO_MSG, message=NO_MSG)
        return s, [_print(s, job, line.weight_g, at)]
    lines = tuple(replace(ln, category=cat, notes=notes_for(ln.notes, cat)) if ln.package_code == code else ln
                  for ln in stop.lines)
    return ok(with_stop(s, stop, lines=lines, editing=None),
              msg("ok.category_changed", code=code, category=category_name(cat)), spoken=True), []


def _print_label(s: State, _arg: str, _value: str, at: datetime, new_package_id: Callable[[], str]) -> Result:
    stop = s.stop
    assert stop is not None and stop.pending is not None and stop.pending.category is not None  # available()
    p = stop.pending
    code = p.package_code
    for _ in range(3):                            # a generator repeating itself must not make a duplicate
        if code is not None and wire.ID_PATTERN.match(code) and known_package(s, code, pending_too=False) is None:
            break
        code = new_package_id()
    else:
        return refuse(s, msg("err.package_id"))
    assert code is not None and p.category is not None
    if CATEGORY[p.category].needs_components and not p.components:
        return refuse(s, msg("rules.components_needed"))
    job = PrintJob(code, p.category)
    s = replace(with_stop(s, stop, pending=replace(p, package_code=code), print_job=job), error=NO_MSG,
                message=NO_MSG)
    return s, [_print(s, job, p.weight_g, at)]


def notes_for(notes: tuple[str, ...], category: str) -> tuple[str, ...]:
    """The notes that still apply after a category change."""
    return tuple(n for n in notes if not LABEL_NOTE[n].categories or category in LABEL_NOTE[n].categories)


def _print(s: State, job: PrintJob, weight_g: int, at: datetime) -> PrintLabel:
    """The label of waste-domain §8.3 (medical minimum; Decree 36): names from the roster, the time
    in the cart's zone, the notes chosen; the printer module lays it out."""
    c = CATEGORY[job.category]
    stop = s.stop
    line = next((ln for ln in stop.lines if ln.package_code == job.package_code), None) if stop else None
    p = stop.pending if stop else None
    notes = notes_for(line.notes if line else p.notes if p else (), c.id)
    components = line.components if line else p.components if p else ""
    department = s.department or ""
    fields = LabelFields(
        org=s.org, department=department, category=c.id, category_name=c.zh, category_name_en=c.en,
        waste_code=c.waste_code, weight_g=weight_g,
        produced_at=at.astimezone(s.zone).replace(microsecond=at.microsecond // 1000 * 1000),
        package_code=job.package_code, collector=s.collector or "", cart=s.cart, notes=note_words(notes),
        org_name=s.roster.org_name, department_name=s.roster.department_name(department),
        main_components=components)
    return PrintLabel(Code("B", s.org, job.package_code, c.letter), fields)


def _note(s: State, note: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    stop = s.stop
    assert stop is not None and stop.pending is not None  # available()
    p = stop.pending
    on = note not in p.notes
    notes = (*p.notes, note) if on else tuple(n for n in p.notes if n != note)
    words = Text(LABEL_NOTE[note].zh, LABEL_NOTE[note].en)
    return ok(with_stop(s, stop, pending=replace(p, notes=notes)),
              msg("rules.note_on" if on else "rules.note_off", note=words)), []


def _components(s: State, _arg: str, value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    stop = s.stop
    assert stop is not None and stop.pending is not None  # available()
    text = " ".join(value.split())
    if not text or len(text) > COMPONENTS_MAX or any(ord(ch) < 32 for ch in text):
        return refuse(s, msg("rules.components_bad", max=COMPONENTS_MAX))
    return ok(with_stop(s, stop, pending=replace(stop.pending, components=text)),
              msg("rules.components_set", text=text)), []


def _remove_last(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    room = s.storage
    if room is not None:
        if room.batch is not None:
            s2 = replace(s, visit=changed(room, batch=None), armed=True)
            return ok(s2, msg("ok.reweigh_undone", code=",".join(room.batch.package_codes)[:40])), []
        last = room.reweighs[-1]
        return ok(replace(s, visit=changed(room, reweighs=room.reweighs[:-1]), armed=True),
                  msg("ok.reweigh_undone", code=last.package_code)), []
    stop = s.stop
    assert stop is not None  # available()
    last_line = stop.lines[-1]
    return ok(replace(with_stop(s, stop, lines=stop.lines[:-1]), armed=True),
              msg("ok.bag_removed", code=last_line.package_code), spoken=True), []


def _edit(s: State, code: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    assert s.stop is not None  # available()
    return ok(with_stop(s, s.stop, editing=code), msg("prompt.edit")), []


def _confirm(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    return ok(replace(s, step=Step.CONFIRM), msg("ok.confirm"), spoken=True), []


def _confirm_pin(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    return refuse(s, msg("err.pin_unchecked"))     # the shell should have checked it and sent PinConfirmed


def _can_pin(s: State, _arg: str) -> bool:
    """Where a signature is due: the nurse's screen, the storage room (keeper; supervisor for a loss),
    the vehicle (driver), a void with its bag known (supervisor)."""
    if s.step in (Step.CONFIRM, Step.STORAGE, Step.TRANSFER):
        return True
    if s.step is Step.CORRECT:
        return s.correction is not None and s.correction.manifest is not None
    return s.step is Step.VOID and s.void is not None and s.void.record_id is not None


def _back(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    return ok(replace(s, step=Step.STOP), NO_MSG), []


def _cancel(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    stop = s.stop
    if s.step is Step.STOP and stop is not None:
        if stop.busy:
            message = msg("ok.cancelled" if stop.editing else "ok.bag_cancelled")
            return ok(with_stop(s, stop, pending=None, print_job=None, editing=None), message), []
        return ok(replace(s, step=Step.ROUND, visit=None), msg("ok.left_stop"), spoken=True), retract(s)
    room = s.storage
    if room is not None and room.lost is not None:
        return ok(replace(s, visit=replace(room, lost=None)), msg("rules.lost_cancelled")), []
    effects = retract(s) if s.step is Step.STORAGE else []
    return ok(replace(s, step=Step.ROUND, visit=None), msg("ok.cancelled"), spoken=True), effects


def _batch(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    room = s.storage
    assert room is not None  # available()
    taken = taken_weight(s)
    if not isinstance(taken, tuple):
        return refuse(s, taken)
    batch = Batch(unweighed(s), *taken)
    s = replace(s, visit=changed(room, batch=batch), armed=False)
    return ok(s, msg("ok.batch", count=len(batch.package_codes), grams=batch.weight_g), spoken=True), []


def _typed_place(target: Step) -> Handler:
    """start_storage / start_transfer: the room or vehicle code typed instead of scanned."""
    def handle(s: State, _arg: str, value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
        ident = value.strip().upper()
        if not wire.ID_PATTERN.match(ident):
            return refuse(s, msg("err.place_bad"))
        return enter(s, target, ident)
    return handle


def _scale(s: State, _arg: str, _value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    direction = "extend" if s.step in (Step.STOP, Step.STORAGE) else "retract"
    return ok(s, msg("ok.scale_moving")), [Actuate(direction)]


# when each applies --------------------------------------------------------------------------

def _can_choose(s: State, arg: str) -> bool:
    stop = s.stop
    if s.step is not Step.STOP or stop is None or stop.print_job is not None or arg not in CATEGORY:
        return False
    if stop.editing is not None or stop.pending is not None:
        return True
    w = s.weight                          # offer categories once something lies on the scale
    return w is not None and w.net_g is not None and w.net_g >= EMPTY_BELOW_G


def _can_print(s: State, _arg: str) -> bool:
    stop = s.stop
    return (s.step is Step.STOP and stop is not None and stop.print_job is None and stop.pending is not None
            and stop.pending.category is not None)


def _can_remove_last(s: State, _arg: str) -> bool:
    if s.step is Step.STORAGE:
        return bool(s.reweighs) or s.batch is not None
    return s.step is Step.STOP and bool(s.lines) and not _busy(s)


def _can_edit(s: State, arg: str) -> bool:
    return s.step is Step.STOP and not _busy(s) and any(ln.package_code == arg and ln.editable for ln in s.lines)


def _can_cancel(s: State, _arg: str) -> bool:
    if s.step is Step.STOP:
        return _busy(s) or not s.lines
    return s.step in (Step.STORAGE, Step.TRANSFER, Step.VOID, Step.CORRECT)


def _can_finish(s: State, _arg: str) -> bool:
    if s.step is Step.STORAGE:
        return bool(s.carried)
    return s.step is Step.TRANSFER and bool(s.stored)


def _can_note(s: State, note: str) -> bool:
    stop = s.stop
    if s.step is not Step.STOP or stop is None or stop.print_job is not None or stop.editing is not None:
        return False
    p = stop.pending
    n = LABEL_NOTE.get(note)
    return (p is not None and p.category is not None and p.package_code is None and n is not None
            and (not n.categories or p.category in n.categories))


def _can_components(s: State, _arg: str) -> bool:
    stop = s.stop
    p = stop.pending if stop else None
    return (s.step is Step.STOP and stop is not None and stop.print_job is None and p is not None
            and p.category is not None and CATEGORY[p.category].needs_components)


def _note_label(s: State, note: str) -> Msg:
    n = LABEL_NOTE[note]
    return msg("action.note", note=Text(n.zh, n.en))



def _in(*steps: Step) -> Callable[[State, str], bool]:
    return lambda s, _arg: s.step in steps


def _text(key: str) -> Callable[[State, str], Msg]:
    return lambda _s, _arg: msg(key)


def _cancel_label(s: State, _arg: str) -> Msg:
    return msg("action.cancel_edit" if s.editing else "action.cancel_bag" if s.pending or s.print_job
               else "action.leave_stop" if s.step is Step.STOP else "action.cancel")


ACTIONS: tuple[Spec, ...] = (
    Spec("choose", _choose, _can_choose, lambda _s, cat: category_name(cat), arg="category",
         args=lambda _s: [c.id for c in CATEGORIES]),
    Spec("note", _note, _can_note, _note_label, arg="any", args=lambda _s: [n.id for n in LABEL_NOTES]),
    Spec("components", _components, _can_components, _text("action.components"),
         lambda s: "primary" if s.pending is not None and not s.pending.components else "normal", "text"),
    Spec("print_label", _print_label, _can_print, _text("action.print_label"), lambda _s: "primary"),
    Spec("confirm", _confirm, lambda s, _a: s.step is Step.STOP and bool(s.lines) and not _busy(s),
         _text("action.confirm"), lambda _s: "primary"),
    Spec("confirm_pin", _confirm_pin, _can_pin, _text("action.confirm_pin"),
         lambda s: "primary" if s.step is Step.CONFIRM else "normal", "pin"),
    Spec("batch_weight", _batch, lambda s, _a: s.step is Step.STORAGE and bool(unweighed(s)),
         _text("action.batch_weight")),
    Spec("manifest", manifest_entry("national"), _in(Step.TRANSFER, Step.CORRECT), _text("action.manifest"),
         lambda s: "primary" if s.manifest is None else "normal", "text"),
    Spec("manifest_local", manifest_entry("local"), _in(Step.TRANSFER, Step.CORRECT), _text("action.manifest_local"),
         needs="text"),
    Spec("report_lost", report_lost,
         lambda s, _a: s.step is Step.STORAGE and bool(unweighed(s)) and not lost_pending(s),
         _text("action.report_lost"), lambda _s: "danger", "text"),
    Spec("reject_storage", reject_storage,
         lambda s, _a: s.step is Step.STORAGE and bool(unweighed(s)) and not lost_pending(s),
         _text("action.reject_storage"), lambda _s: "danger"),
    Spec("finish", finish, _can_finish,
         lambda s, _a: msg("action.finish_storage" if s.step is Step.STORAGE else "action.finish_transfer"),
         lambda _s: "primary"),
    Spec("edit", _edit, _can_edit, lambda _s, code: msg("action.edit", code=code), arg="any",
         args=lambda s: [ln.package_code for ln in s.lines]),
    Spec("remove_last", _remove_last, _can_remove_last,
         lambda s, _a: msg("action.undo_reweigh" if s.step is Step.STORAGE else "action.remove_last"),
         lambda _s: "danger"),
    Spec("back", _back, _in(Step.CONFIRM), _text("action.back")),
    Spec("cancel", _cancel, _can_cancel, lambda s, a: msg("action.cancel_lost") if lost_pending(s)
         else _cancel_label(s, a),
         lambda s: "danger" if s.step is not Step.STOP else "normal"),
    Spec("correct", correct_record, can_correct,
         lambda s, _a: msg("action.correct_manifest", seq=s.last_record.seq if s.last_record else 0),
         lambda _s: "danger", "reason", arg="any",
         args=lambda s: [s.last_record.record_id] if s.last_record else []),
    Spec("void", void_record, can_void,
         lambda s, _a: msg("action.void_record", seq=s.last_record.seq if s.last_record else 0),
         lambda _s: "danger", "reason", arg="any",
         args=lambda s: [s.last_record.record_id] if s.last_record else []),
    Spec("start_storage", _typed_place(Step.STORAGE), _in(Step.ROUND), _text("action.start_storage"),
         needs="text"),
    Spec("start_transfer", _typed_place(Step.TRANSFER), _in(Step.ROUND), _text("action.start_transfer"),
         needs="text"),
    Spec("void_bag", void_bag, lambda s, _a: s.step is Step.ROUND and bool(s.carried or s.stored),
         _text("action.void_bag"), lambda _s: "danger", "reason"),
    Spec("end_round", _end_round, _in(Step.ROUND), _text("action.end_round")),
    Spec("scale_out", _scale, lambda s, _a: s.step in (Step.STOP, Step.STORAGE) and s.actuator in (
        "unknown", "retracted", "retracting", "fault"), _text("action.scale_out")),
    Spec("scale_in", _scale, lambda s, _a: s.step not in (Step.STOP, Step.STORAGE, Step.SAVING) and s.actuator in (
        "extended", "extending", "fault"), _text("action.scale_in")),
)
BY_NAME: dict[str, Spec] = {a.name: a for a in ACTIONS}


def action_known(action_id: str) -> bool:
    """Is ``action_id`` one the machine understands at all (the kiosk answers 400 otherwise)?"""
    name, colon, arg = action_id.partition(":")
    spec = BY_NAME.get(name)
    if spec is None:
        return False
    if spec.arg == "category":
        return not colon or arg in CATEGORY
    return bool(arg) if spec.arg == "any" else not colon


def available(s: State, action_id: str) -> bool:
    name, _, arg = action_id.partition(":")
    spec = BY_NAME.get(name)
    return spec is not None and spec.available(s, arg)


def handle(s: State, ev: Action, new_package_id: Callable[[], str]) -> Result:
    name, _, arg = ev.id.partition(":")
    if name == "choose" and not arg:
        arg = ev.value.strip().upper()
    spec = BY_NAME.get(name)
    if spec is None or not spec.available(s, arg):
        return refuse(s, msg("err.not_available"))
    return spec.handle(s, arg, ev.value, ev.at, new_package_id)


def buttons(s: State) -> list[ActionView]:
    """The buttons that apply now, in screen order (the view's ``actions``)."""
    out: list[ActionView] = []
    for spec in ACTIONS:
        for arg in spec.args(s):
            if spec.available(s, arg):
                label = spec.label(s, arg)
                text = label.text if isinstance(label, Msg) else label
                view: ActionView = {"id": f"{spec.name}:{arg}" if spec.arg != "none" else spec.name,
                                    "label": {"zh": text.zh, "en": text.en}, "style": spec.style(s),
                                    "needs": spec.needs}
                if spec.needs == "reason":
                    view["reasons"] = [{"id": r.id, "zh": r.zh, "en": r.en} for r in VOID_REASONS]
                if spec.name == "note" and s.pending is not None and arg in s.pending.notes:
                    view["style"] = "chosen"
                out.append(view)
    return out
