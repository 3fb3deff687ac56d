"""The actions that close a visit with a signed record: the storage room (re-weighs, the keeper,
missing bags: REJECTED or lost by an incident), the vehicle (manifest typed twice, the driver), and
voids (a listed reason, then a supervisor).  ``edge.workflow.actions`` lists them as buttons."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from edge import manifest as manifests
from edge import wire
from edge.catalogue import VOID_REASON
from edge.messages import Msg, category_name, msg
from edge.workflow.moves import Result, ok, refuse, start_commit, void_ready
from edge.workflow.records import storage_in_body, transfer_body
from edge.workflow.state import REASON_MAX, Correction, LostReport, State, Step, Storage, Transfer, VoidScan

Handler = Callable[[State, str, str, datetime, Callable[[], str]], Result]


def unweighed(s: State) -> tuple[str, ...]:
    room = s.storage
    done: set[str] = set()
    if room is not None:
        done = {r.package_code for r in room.reweighs} | set(room.batch.package_codes if room.batch else ())
    return tuple(b.package_code for b in s.carried if b.package_code not in done)


def void_reason(value: str) -> tuple[str, str] | Msg:
    """A void's reason as the kiosk sends it, ``ID`` or ``ID|words`` (ID from VOID_REASONS; OTHER needs words)."""
    code, _, words = value.partition("|")
    code = code.strip().upper()
    text = " ".join(words.split())[:REASON_MAX]
    if code not in VOID_REASON:
        return msg("rules.reason_code_needed")
    if code == "OTHER" and not text:
        return msg("rules.reason_text_needed")
    return code, text


def changed(room: Storage, **changes: Any) -> Storage:
    """A change to the re-weighs: the keeper's signature and a loss report no longer cover it."""
    return replace(room, keeper=None, lost=None, **changes)


def finish(s: State, _arg: str, _value: str, at: datetime, _ids: Callable[[], str]) -> Result:
    rnd, room, transfer = s.round, s.storage, s.transfer
    assert rnd is not None  # available(): a storage or transfer visit is always inside a round
    if room is not None:
        if not s.carried:
            return refuse(s, msg("err.nothing_to_store"))
        if not room.reweighs and room.batch is None:
            return refuse(s, msg("err.reweigh_first"))
        if room.lost is not None:
            return refuse(s, msg("prompt.lost_approve"))
        missing = unweighed(s)
        if missing:
            return refuse(s, msg("rules.missing", count=len(missing), codes="、".join(missing[:6])))
        if room.keeper is None:
            return refuse(s, msg("rules.keeper_needed"))
        return start_commit(s, "storage_in", storage_in_body(s, rnd, room, at, room.keeper), s.step)
    assert transfer is not None  # available()
    if not s.stored:
        return refuse(s, msg("err.nothing_to_transfer"))
    if transfer.manifest is None:
        return refuse(s, msg("err.manifest_needed"))
    if transfer.driver is None:
        return refuse(s, msg("rules.driver_needed"))
    receiver = s.roster.receivers[s.roster.vehicles[transfer.vehicle].receiver]
    refused = next((b.category for b in s.stored if b.category not in receiver.disposal), None)
    if refused is not None:
        return refuse(s, msg("rules.receiver_refuses", receiver=receiver.name, category=category_name(refused)))
    return start_commit(s, "transfer", transfer_body(s, rnd, transfer, at), s.step)


def reject_storage(s: State, _arg: str, _value: str, at: datetime, _ids: Callable[[], str]) -> Result:
    """The keeper refuses a delivery with bags missing: recorded as REJECTED, every bag stays on the cart."""
    rnd, room = s.round, s.storage
    assert rnd is not None and room is not None  # available()
    if not unweighed(s):
        return refuse(s, msg("rules.nothing_missing"))
    if room.keeper is None:
        return refuse(s, msg("rules.keeper_needed"))
    return start_commit(s, "storage_in", storage_in_body(s, rnd, room, at, room.keeper), s.step)


def report_lost(s: State, _arg: str, value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    room = s.storage
    assert room is not None  # available()
    description = " ".join(value.split())[:500]
    if not description:
        return refuse(s, msg("rules.description_needed"))
    missing = unweighed(s)
    s = replace(s, visit=replace(room, lost=LostReport(missing, description)))
    return ok(s, msg("rules.lost_reported", count=len(missing), codes="、".join(missing[:6])), spoken=True), []


def manifest_entry(kind: str) -> Handler:
    """``manifest`` (national: 14 digits, year / province / city checked) and ``manifest_local`` (a
    local 联单, marked so on purpose): each number typed twice alike before it counts."""
    def handle(s: State, _arg: str, value: str, at: datetime, _ids: Callable[[], str]) -> Result:
        transfer: Transfer | Correction | None = s.transfer or s.correction   # the same fields
        assert transfer is not None  # available()
        number = value.strip().upper()
        if not wire.ID_PATTERN.match(number):
            return refuse(s, msg("err.manifest_bad"))
        national = manifests.is_national_shape(number)
        if kind == "national":
            if not national:
                return refuse(s, msg("rules.manifest_not_national", number=number))
            problem = manifests.national_problem(number, at.astimezone(s.zone).date())
            if problem is not None:
                return refuse(s, problem)
        elif national:
            return refuse(s, msg("rules.manifest_is_national", number=number))
        if isinstance(transfer, Correction) and (kind, number) == transfer.was:
            return refuse(s, msg("rules.correct_same", number=number))
        first = transfer.first
        if first is None or first[0] != kind:
            what = manifests.describe(number) if kind == "national" else msg("rules.local_what", number=number)
            s = replace(s, visit=replace(transfer, first=(kind, number), manifest=None))
            return ok(s, msg("rules.manifest_again", what=what), spoken=True), []
        if first[1] != number:
            s = replace(s, visit=replace(transfer, first=None, manifest=None))
            return refuse(s, msg("rules.manifest_mismatch", first=first[1], second=number))
        s = replace(s, visit=replace(transfer, first=None, manifest=number, manifest_type=kind))
        return ok(s, msg("rules.manifest_confirmed", number=number, kind=msg(f"rules.kind_{kind}")), spoken=True), []
    return handle


def void_bag(s: State, _arg: str, value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    reason = void_reason(value)
    if isinstance(reason, Msg):
        return refuse(s, reason)
    return ok(replace(s, step=Step.VOID, visit=VoidScan(*reason)), msg("ok.void_scan"), spoken=True), []


def void_record(s: State, record_id: str, value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    """Void the last record (a handover or a check-in): then a supervisor confirms."""
    reason = void_reason(value)
    if isinstance(reason, Msg):
        return refuse(s, reason)
    last = s.last_record
    assert last is not None  # available()
    s = replace(s, step=Step.VOID, visit=VoidScan(*reason, record_id=record_id, rtype=last.rtype))
    return ok(s, void_ready(s), spoken=True), []


def can_void(s: State, arg: str) -> bool:
    """The last record, if it is a handover or a check-in: a transfer's bags have left (it is corrected,
    never voided), an incident stands, a void is not voided again."""
    last = s.last_record
    return (s.step is Step.ROUND and last is not None and last.rtype in ("handover", "storage_in")
            and arg == last.record_id)


def lost_pending(s: State) -> bool:
    return s.storage is not None and s.storage.lost is not None


def can_correct(s: State, arg: str) -> bool:
    """The last record is a transfer: its bags have left, so it is corrected (its manifest), never voided."""
    last = s.last_record
    return s.step is Step.ROUND and last is not None and last.rtype == "transfer" and arg == last.record_id


def correct_record(s: State, record_id: str, value: str, _at: datetime, _ids: Callable[[], str]) -> Result:
    """Correct the last transfer's manifest number: the reason now, the number twice, then a supervisor."""
    reason = void_reason(value)
    if isinstance(reason, Msg):
        return refuse(s, reason)
    last = s.last_record
    assert last is not None and last.manifest is not None  # available(): a transfer names its manifest
    s = replace(s, step=Step.CORRECT, visit=Correction(record_id, last.manifest, *reason))
    return ok(s, msg("rules.correct_start", number=last.manifest[1]), spoken=True), []

