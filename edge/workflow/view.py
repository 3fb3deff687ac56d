"""The kiosk's screen model: ``view(state, now)`` as a typed contract (``ScreenModel``).

The page (``edge/kiosk/static/kiosk.js``) renders exactly this; the kiosk tests check the page's
hand-written models against these types.  This is where message keys become words: every text
field is ``{"zh": …, "en": …}`` (or null), looked up in ``edge.messages``.  The agent adds the
``device`` block.
"""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict

from edge.catalogue import CATEGORIES, CATEGORY, LABEL_NOTE
from edge.messages import Msg, Text, category_name, msg
from edge.workflow.actions import ActionView, TextView, available, buttons
from edge.workflow.machine import dwell_levels, round_overdue
from edge.workflow.records import stamp, tolerance_g, totals
from edge.workflow.state import EMPTY_BELOW_G, Bag, Line, State, Step
from edge.workflow.visits import unweighed


class WeightView(TypedDict):
    net_g: int | None
    stable: bool
    error: TextView | None


class LineView(TypedDict):
    package_code: str
    category: str
    category_name: TextView
    weight_g: int
    editable: bool
    status: str | None  # storage: waiting | ok | deviation | batch (catalogue.LINE_STATUSES); else null


class TotalView(TypedDict):
    category: str
    count: int
    weight_g: int
    category_name: TextView


class PendingView(TypedDict):
    package_code: str | None
    category: str | None
    category_name: TextView | None
    weight_g: int | None
    printing: bool
    editing: bool
    notes: list[TextView]      # the label notes chosen (备注)
    components: str            # 主要成分 typed (chemical waste)


class DwellView(TypedDict):
    """A bag past the warning share of its limit (on the cart since its handover, or in storage)."""

    package_code: str
    where: str          # cart | storage
    hours: float
    limit_h: float
    level: str          # warn | over


class CategoryView(TypedDict):
    id: str
    name: TextView
    color: str


class VoiceView(TypedDict):
    id: int
    zh: str
    en: str


class DeviceView(TypedDict):
    """Added by the agent: the link and each device's state (``catalogue.DEVICES``)."""

    online: bool
    unsent: int
    rejected: NotRequired[int]  # records the gateway refused for good (a red pill on the bar when > 0)
    scale: str
    camera: str
    printer: str
    actuator: str
    clock: str


class ScreenModel(TypedDict):
    step: str
    title: TextView
    prompt: TextView
    error: TextView | None
    message: TextView | None
    saved_seq: int | None
    collector: str | None
    collector_name: str | None
    department: str | None
    department_name: str | None
    place: str | None
    place_name: str | None
    signer: str | None          # who has signed at this place so far (keeper, driver), by name
    dwell: list[DwellView]
    round_started_at: str | None
    round_overdue: bool
    weight: WeightView | None
    lines: list[LineView]
    totals: list[TotalView]
    pending: PendingView | None
    actions: list[ActionView]
    categories: list[CategoryView]
    voice: VoiceView | None
    device: NotRequired[DeviceView]


def _words(m: Msg | Text) -> TextView:
    t = m.text if isinstance(m, Msg) else m
    return {"zh": t.zh, "en": t.en}


def _shown(m: Msg | Text) -> TextView | None:
    return _words(m) if m else None


def _cat(category: str) -> TextView:
    name = category_name(category)
    return {"zh": name.zh, "en": name.en}


def _prompt(s: State) -> Msg:
    stop = s.stop
    if s.step is Step.STOP and stop is not None:
        if stop.print_job is not None:
            return msg("prompt.printing")
        if stop.editing is not None:
            return msg("prompt.edit")
        if stop.pending is not None:
            if stop.pending.category is None:
                return msg("prompt.choose")
            return msg("prompt.components" if _needs_components(s) else "prompt.print_or_scan")
        w = s.weight
        if stop.lines and not s.armed:
            return msg("prompt.next_bag")
        if w is None or w.net_g is None or w.net_g < EMPTY_BELOW_G:
            return msg("prompt.place_bag")
        return msg("prompt.label_or_choose" if w.stable else "prompt.wait_stable")
    room = s.storage
    if s.step is Step.STORAGE and room is not None:
        if room.lost is not None:
            return msg("prompt.lost_approve")
        if s.carried and not unweighed(s):
            return msg("prompt.storage_done" if room.keeper is not None else "prompt.keeper")
    transfer = s.transfer
    if s.step is Step.TRANSFER and transfer is not None:
        if transfer.manifest is None:
            return msg("prompt.manifest")
        return msg("prompt.transfer_ready" if transfer.driver is not None else "prompt.driver")
    void = s.void
    if s.step is Step.VOID and void is not None and void.record_id is not None:
        return msg("prompt.void_approve")
    fix = s.correction
    if s.step is Step.CORRECT and fix is not None and fix.manifest is not None:
        return msg("prompt.correct_approve")
    return msg(f"prompt.{s.step.value}")


def _needs_components(s: State) -> bool:
    p = s.pending
    return p is not None and p.category is not None and CATEGORY[p.category].needs_components and not p.components


def _weight(s: State) -> WeightView | None:
    w = s.weight
    if w is None:
        return None
    error: TextView | None = None
    if w.error:
        error = _words(w.error)
    return {"net_g": w.net_g, "stable": w.stable, "error": error}


def _lines(s: State) -> tuple[list[LineView], list[Line | Bag]]:
    saving = s.saving.rtype if s.step is Step.SAVING and s.saving else None
    if s.step in (Step.STOP, Step.CONFIRM) or (s.step is Step.SAVING and s.lines):
        return [{"package_code": ln.package_code, "category": ln.category, "category_name": _cat(ln.category),
                 "weight_g": ln.weight_g, "editable": available(s, f"edit:{ln.package_code}"), "status": None}
                for ln in s.lines], list(s.lines)
    if s.step is Step.STORAGE or saving == "storage_in":
        reweighed = {r.package_code: r.weight_g for r in s.reweighs}
        in_batch = set(s.batch.package_codes) if s.batch else set()
        out: list[LineView] = []
        for b in s.carried:
            grams = reweighed.get(b.package_code)
            status = ("batch" if b.package_code in in_batch else "waiting" if grams is None
                      else "deviation" if abs(grams - b.weight_g) > tolerance_g(s.limits, b.weight_g) else "ok")
            out.append({"package_code": b.package_code, "category": b.category, "category_name": _cat(b.category),
                        "weight_g": b.weight_g if grams is None else grams, "editable": False, "status": status})
        return out, list(s.carried)
    if s.step is Step.TRANSFER or saving == "transfer":
        return [{"package_code": b.package_code, "category": b.category, "category_name": _cat(b.category),
                 "weight_g": b.weight_g, "editable": False, "status": None} for b in s.stored], list(s.stored)
    return [], list(s.carried)   # between stops: what the cart carries


def _pending(s: State) -> PendingView | None:
    stop = s.stop
    if stop is None or not stop.busy:
        return None
    p, job = stop.pending, stop.print_job
    line = next((ln for ln in stop.lines if ln.package_code == stop.editing), None)
    category = job.category if job else p.category if p else line.category if line else None
    return {
        "package_code": job.package_code if job else p.package_code if p else stop.editing,
        "category": category, "category_name": _cat(category) if category else None,
        "weight_g": p.weight_g if p else line.weight_g if line else None,
        "printing": job is not None, "editing": stop.editing is not None,
        "notes": [{"zh": LABEL_NOTE[n].zh, "en": LABEL_NOTE[n].en} for n in (p.notes if p else ())],
        "components": p.components if p else "",
    }


def _place_name(s: State) -> str | None:
    if s.storage is not None:
        return s.roster.room_name(s.storage.room)
    t = s.transfer
    if t is not None:
        v = s.roster.vehicles.get(t.vehicle)
        return v.plate if v else t.vehicle
    return None


def _signer(s: State) -> str | None:
    who = s.storage.keeper if s.storage else s.transfer.driver if s.transfer else None
    return s.roster.name_of(who.person_id) if who else None


def view(s: State, now: datetime) -> ScreenModel:
    """The kiosk's screen model (JSON-able; the shell adds ``device``)."""
    lines, counted = _lines(s)
    asks = s.step is Step.STOP and s.print_job is None and available(s, "choose:INFECTIOUS")
    return {
        "step": s.step.value,
        "title": _words(msg(f"title.{s.step.value}")),
        "prompt": _words(_prompt(s)),
        "error": _shown(s.error),
        "message": _shown(s.message),
        "saved_seq": s.last_seq,
        "collector": s.collector,
        "collector_name": s.roster.name_of(s.collector) if s.collector else None,
        "department": s.department,
        "department_name": s.roster.department_name(s.department) if s.department else None,
        "place": s.place,
        "place_name": _place_name(s),
        "signer": _signer(s),
        "dwell": [{"package_code": code, "where": where, "hours": round(seconds / 3600, 1),
                   "limit_h": round(limit / 3600, 2), "level": level}
                  for code, where, seconds, limit, level in dwell_levels(s, now)],
        "round_started_at": stamp(s, s.round_started_at) if s.round_started_at else None,
        "round_overdue": round_overdue(s, now),
        "weight": _weight(s),
        "lines": lines,
        "totals": [{"category": tt["category"], "count": tt["count"], "weight_g": tt["weight_g"],
                    "category_name": _cat(tt["category"])} for tt in totals(counted)],
        "pending": _pending(s),
        "actions": buttons(s),
        "categories": [{"id": c.id, "name": {"zh": c.zh, "en": c.en}, "color": c.color}
                       for c in CATEGORIES] if asks else [],
        "voice": {"id": s.voice_seq, "zh": s.voice.zh, "en": s.voice.en} if s.voice_seq else None,
    }
