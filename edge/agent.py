"""The cart agent's loop: events in from devices and the kiosk, the pure workflow applied, effects out.

Hardware threads (scale reader, scanner, actuator) and the kiosk's HTTP threads only turn bytes,
frames and taps into events on one queue; one workflow thread applies them to the state machine
and carries out its effects, so the state is never touched from two threads.  Printing runs on
its own worker so a slow printer never holds up the workflow.  Every failure of an effect comes
back to the machine as an event with its reason (``CommitFailed``, ``Printed(False, …)``): the
workflow is never left waiting for an answer that will not come.

Two of the gateway's commands are carried out here (``remote_handlers``, registered with the
uplink): ``config`` on the workflow thread (the thresholds change between two events, saved first
so that a failure to keep them changes nothing), ``reprint`` on the print worker (the bag's label
from the cart's own handover record, on its printer).  Each answers once, done or refused and why.

The agent is the kiosk's source (``edge.kiosk.contract.KioskSource``): ``snapshot`` is the screen
model plus the device block, ``act`` / ``scan`` hand a tap over.

A PIN is checked here, on the kiosk's thread (``pins.who``: every nurse's hash, constant time),
within the limits of ``edge.pin_guard``; only the outcome reaches the machine.  Outside the nurse
screen the PIN is not looked at and every try gets the machine's one "not available" answer, so
the answer never tells a right PIN from a wrong one.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edge import codes, pins, remote, workflow
from edge.clock import SystemClock
from edge.errors import CodeError, EdgeError
from edge.kiosk.contract import Changes, KioskError
from edge.ledger.trust import CmdAnswer
from edge.messages import Msg, Text, msg
from edge.pin_guard import Checked, PinGuard, Refused
from edge.pins import PinPolicy
from edge.wire.core import CMD_CONFIG, CMD_REPRINT
from edge.worker import Worker
from edge.workflow.actions import available

if TYPE_CHECKING:
    from edge.devices.scales import Reading

TICK_S = 30.0  # the workflow hears time pass this often (round-overdue warning)
EVENT_WAIT_S = 0.5  # s the loop waits for an event before it checks whether a tick is due
PRINT_WAIT_S = 0.5  # s the print worker waits for a job before it checks whether it should stop

log = logging.getLogger(__name__)


class Ledger(Protocol):
    """What the agent needs of the ledger: commit a record durably, count what is unsent or rejected."""

    def commit(self, rtype: str, body: Mapping[str, Any], *, now: datetime, clock: Any) -> Any: ...
    def unsynced_count(self) -> int: ...
    def rejected_count(self) -> int: ...
    def bodies(self, types: Iterable[str]) -> list[tuple[str, str, int, dict[str, Any]]]: ...


class LabelPrinter(Protocol):
    def print_label(self, label: Any) -> Any: ...


@dataclass(frozen=True)
class _PinAnswer:
    """A PIN's outcome, decided on a kiosk thread.  The workflow thread applies it only if the nurse
    screen is still up; otherwise it answers like any try outside it (the step may have changed
    while the PIN was being checked, and the answer must not tell a right PIN from a wrong one)."""

    event: workflow.Rejected | workflow.PinConfirmed


Reply = Callable[[CmdAnswer], None]


@dataclass(frozen=True)
class _Configure:
    """A ``config`` command, applied on the workflow thread between two events."""

    args: Mapping[str, Any]
    reply: Reply


@dataclass(frozen=True)
class _Reprint:
    """A ``reprint`` command, carried out on the print worker like a label of the workflow's."""

    package_code: str
    reply: Reply


def _refusal(refused: Refused) -> Msg:
    """What the kiosk shows for a try the guard refused (the PIN was not checked)."""
    if refused.locked:
        return msg("agent.pin_locked", minutes=refused.whole_minutes)
    return msg("agent.pin_wait", seconds=refused.whole_seconds)


def to_weight(r: Reading) -> workflow.Weight:
    """A scale reading as the workflow sees it: only trusted, in-range mass readings have a weight."""
    problem: Msg | Text | None = None
    if r.error:
        problem = Text(r.error, r.error)  # the parser's own words about the frame
    elif r.overload or r.underload:
        problem = msg("agent.overload" if r.overload else "agent.underload")
    return workflow.Weight(
        net_g=None if problem else r.weight_g, stable=bool(r.stable) and not problem,
        tare_g=r.tare_g or 0, protocol=r.protocol, raw=r.raw.decode("latin-1"), error=problem)


class Agent:
    def __init__(self, machine: workflow.Machine, *, clock: SystemClock, ledger: Ledger, code_book: codes.CodeBook,
                 pin_hashes: Mapping[str, str], printer: LabelPrinter | None,
                 devices: Callable[[], dict[str, Any]], online: Callable[[], bool],
                 on_commit: Callable[[], None] = lambda: None,
                 actuate: Callable[[str], None] | None = None, pin_policy: PinPolicy | None = None,
                 on_alarm: Callable[[], None] = lambda: None, overrides: Path | None = None) -> None:
        self.machine = machine
        self._overrides = overrides  # where config commands are kept (remote.OVERRIDES_FILE); None: not kept
        if overrides is not None:
            machine.state = replace(machine.state, limits=remote.apply_saved(machine.state.limits, overrides))
        self.clock = clock
        self.ledger = ledger
        self.code_book = code_book
        self.printer = printer
        self.printer_state = "ok" if printer is not None else "none"
        self._pins = dict(pin_hashes)
        self._devices = devices  # what each device is doing (the app's view of its parts)
        self._online = online
        self._on_commit = on_commit  # wakes the uplink
        self._actuate = actuate
        self.pin_guard = PinGuard(pin_policy or PinPolicy())
        self._on_alarm = on_alarm  # a PIN lockout: the uplink reports it now
        self.changes = Changes()  # the kiosk waits on this; bumped after every visible change
        self._events: queue.Queue[workflow.Event | _PinAnswer | _Configure] = queue.Queue()
        self._jobs: queue.Queue[workflow.PrintLabel | _Reprint] = queue.Queue()
        self._next_tick = time.monotonic() + TICK_S
        self._shown: tuple[dict[str, Any], workflow.State] | None = None  # what the kiosk was last told of
        self._loop = Worker("workflow", self._pass, join_s=5.0, retry_s=0.0)  # a bug loses one event, not a second
        self._print_worker = Worker("printer", self._print_pass, join_s=10.0)

    # hand-overs from devices and the kiosk ---------------------------------------------------

    def put(self, event: workflow.Event) -> None:
        self._events.put(event)

    def on_reading(self, r: Reading) -> None:
        self.put(workflow.Weighed(to_weight(r), self.clock.now()))

    def on_actuator(self, state: str, reason: Msg | None = None) -> None:
        self.put(workflow.ActuatorChanged(state, self.clock.now(), reason))

    def submit_code(self, text: str) -> None:
        """A scanned payload (camera, a hand scanner, or typed at the kiosk)."""
        now = self.clock.now()
        try:
            self.put(workflow.Scanned(self.code_book.decode(text), now))
        except CodeError as exc:
            log.info("rejected code %r: %s", text[:64], exc)
            self.put(workflow.Rejected(exc.msg, now))

    # the kiosk's source -----------------------------------------------------------------------

    def device(self) -> dict[str, Any]:
        """The link and each device's state (``workflow.view.DeviceView``)."""
        return {"online": self._online(), "unsent": self.ledger.unsynced_count(),
                "rejected": self.ledger.rejected_count(), **self._devices(), "printer": self.printer_state}

    def snapshot(self) -> dict[str, Any]:
        model: dict[str, Any] = dict(workflow.view(self.machine.state, self.clock.now()))
        model["device"] = self.device()
        return model

    def act(self, id: str, value: str | None) -> None:
        """A kiosk button.  A PIN is checked here, never passed to the machine (nor logged)."""
        if not workflow.action_known(id):
            raise KioskError("kiosk.unknown_action", id=repr(id))
        now = self.clock.now()
        if id == "confirm_pin":
            self._confirm_pin(value or "", now)
            return
        self.put(workflow.Action(id, value or "", now))

    def _confirm_pin(self, pin: str, now: datetime) -> None:
        """Outside the nurse screen: the machine's "not available", the PIN unlooked at.  On it: the
        guard's refusal (unchecked), or the PIN checked and the outcome recorded."""
        state = self.machine.state
        if not available(state, "confirm_pin"):
            self.put(workflow.Action("confirm_pin", "", now))  # the same answer whatever was typed
            return
        outcome = self.pin_guard.attempt(state.collector, lambda: pins.who(pin, self._pins))
        if isinstance(outcome, Refused):
            log.debug("PIN try refused unchecked (%s, %.1f s left)", "locked" if outcome.locked else "back-off",
                      outcome.seconds)
            self._events.put(_PinAnswer(workflow.Rejected(_refusal(outcome), now)))
        elif outcome.who is not None:
            self._events.put(_PinAnswer(workflow.PinConfirmed(outcome.who, now)))
        else:
            self._wrong_pin(outcome, state.collector, now)

    def _wrong_pin(self, outcome: Checked, collector: str | None, now: datetime) -> None:
        """Logged (never the PIN); a lockout at WARNING, and the alarm raised."""
        log.info("wrong PIN typed at the kiosk (collector %s: %d in a row)", collector, outcome.run)
        lock = outcome.lockout
        if lock is None:
            self._events.put(_PinAnswer(workflow.Rejected(msg("agent.wrong_pin"), now)))
            return
        until = self.clock.now() + timedelta(seconds=lock.seconds)
        scope = (f"in a row while collector {collector} was signed in; locked for that collector"
                 if lock.scope == "person" else
                 f"at this kiosk within {self.pin_guard.policy.window_min:g} min (the last while collector "
                 f"{collector} was signed in); locked for everyone")
        log.warning("PIN entry locked until %s: %d wrong PINs %s", until.isoformat(timespec="seconds"),
                    lock.failures, scope)
        self._events.put(_PinAnswer(workflow.Rejected(_refusal(Refused(True, lock.seconds)), now)))
        self._on_alarm()

    def scan(self, text: str) -> None:
        self.submit_code(text)

    def wait_changed(self, version: int, timeout: float) -> int:
        return self.changes.wait_changed(version, timeout)

    # the workflow thread ------------------------------------------------------------------------

    @property
    def state(self) -> workflow.State:
        return self.machine.state

    def wait_until(self, predicate: Callable[[workflow.State], bool], timeout: float) -> bool:
        """Block until the workflow state satisfies ``predicate`` (the demo and tests use this)."""
        deadline = time.monotonic() + timeout
        version = self.changes.version
        while not predicate(self.machine.state):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            version = self.changes.wait_changed(version, left)
        return True

    def _pass(self) -> float:
        """One event (or a tick), then tell the kiosk if what it shows changed."""
        try:
            got: workflow.Event | _PinAnswer | _Configure | None = self._events.get(timeout=EVENT_WAIT_S)
        except queue.Empty:
            got = None
        if isinstance(got, _Configure):
            self._configure(got)
            return 0
        if isinstance(got, _PinAnswer):  # the nurse screen may have gone while the PIN was checked
            got = got.event if available(self.machine.state, "confirm_pin") else workflow.Action(
                "confirm_pin", "", got.event.at)
        event = got
        if event is None and time.monotonic() >= self._next_tick:
            event, self._next_tick = workflow.Tick(self.clock.now()), time.monotonic() + TICK_S
        if event is not None:
            self.apply(event)
        # The kiosk is told only of what it would show differently: a steady scale sends 20
        # identical readings a second, and each push re-renders the page on the cart's Pi.
        device, state = self.device(), self.machine.state
        shown_device, shown_state = self._shown or (device, state)
        if (self._shown is None or device != shown_device
                or isinstance(event, workflow.Tick)  # Tick: the round's age on screen
                or replace(state, weight_at=None) != replace(shown_state, weight_at=None)):
            self._shown = (device, state)
            self.changes.bump()
        return 0

    def apply(self, event: workflow.Event) -> None:
        """Feed one event, then carry out the effects, including those the results cause."""
        effects = self.machine.handle(event)
        while effects:
            effect, *effects = effects
            effects = self._carry_out(effect) + effects

    def _carry_out(self, effect: workflow.Effect) -> list[workflow.Effect]:
        if isinstance(effect, workflow.Actuate):
            if self._actuate is not None:
                self._actuate(effect.direction)
            return []
        if isinstance(effect, workflow.PrintLabel):
            self._jobs.put(effect)
            return []
        now, stamp = self.clock.stamp()
        try:
            done = self.ledger.commit(effect.rtype, effect.body, now=now, clock=stamp)
        except EdgeError as exc:  # every failure to commit comes back to the workflow, with its reason
            log.error("commit failed: %s", exc)
            return self.machine.handle(workflow.CommitFailed(exc.msg, self.clock.now()))
        log.info("committed %s seq=%d id=%s", effect.rtype, done.seq, done.id)
        self._on_commit()
        return self.machine.handle(workflow.Committed(done.seq, done.id, self.clock.now()))

    # the print worker ---------------------------------------------------------------------------

    def _print_pass(self) -> float:
        try:
            job = self._jobs.get(timeout=PRINT_WAIT_S)
        except queue.Empty:
            return 0
        if isinstance(job, _Reprint):
            job.reply(self._reprint(job.package_code))
        else:
            self._print(job)
        return 0

    def _print(self, job: workflow.PrintLabel) -> None:
        """On the print worker: a slow or absent printer never holds up the workflow thread."""
        from edge.labels import MedicalLabel

        f = job.fields
        try:
            if self.printer is None:
                raise EdgeError("agent.no_printer")
            label = MedicalLabel(
                code=self.code_book.encode(job.code), org_name=f.org_name, department=f.department_name,
                category=f.category, weight_g=f.weight_g, produced_at=f.produced_at, notes=f.notes,
                main_components=f.main_components)
            result = self.printer.print_label(label)
        except EdgeError as exc:
            log.warning("label not printed: %s", exc)
            if self.printer is not None:
                self.printer_state = "error"
            self.put(workflow.Printed(False, exc.msg, self.clock.now()))
            return
        except Exception:  # the worker's one guard: a bug must not leave the kiosk "printing…" forever
            log.exception("printing label %s failed", job.code.ident)
            self.printer_state = "error"
            self.put(workflow.Printed(False, msg("agent.print_failed"), self.clock.now()))
            return
        log.info("label %s printed (%d bytes, %s)", job.code.ident, result.bytes, result.language)
        self.printer_state = "ok"
        self.put(workflow.Printed(True, None, self.clock.now()))

    # the gateway's commands ------------------------------------------------------------------------

    def remote_handlers(self) -> dict[str, Callable[[Mapping[str, Any], Reply], None]]:
        """The commands this agent carries out, for ``Uplink.handle``."""
        return {CMD_CONFIG: lambda args, reply: self._events.put(_Configure(dict(args), reply)),
                CMD_REPRINT: lambda args, reply: self._jobs.put(_Reprint(str(args["label"]), reply))}

    def _configure(self, job: _Configure) -> None:
        """On the workflow thread: saved first (a failure to keep it changes nothing), then applied."""
        try:
            limits, changed = remote.with_config(self.machine.state.limits, job.args)
            if self._overrides is not None and changed:
                remote.save_overrides(self._overrides, job.args)
        except (ValueError, OSError) as exc:
            log.warning("config from the gateway refused: %s", exc)
            job.reply(CmdAnswer(False, str(exc)))
            return
        self.machine.state = replace(self.machine.state, limits=limits)
        log.warning("workflow settings changed by the gateway: %s", ", ".join(changed) or "nothing")
        job.reply(CmdAnswer(True, ("changed " + ", ".join(changed)) if changed else "no change: already set"))

    def _reprint(self, package_code: str) -> CmdAnswer:
        """On the print worker: the label of a bag this cart handed over, as its handover recorded it."""
        from edge.labels import MedicalLabel

        try:
            found = remote.find_bag(self.ledger.bodies(("handover", "void")), package_code)
        except EdgeError as exc:
            return CmdAnswer(False, f"ledger unreadable: {exc}")
        if isinstance(found, str):
            return CmdAnswer(False, found)
        if self.printer is None:
            return CmdAnswer(False, "this cart has no printer")
        try:
            code = codes.Code("B", found.org, package_code, codes.LETTER_OF[found.category])
            state = self.machine.state
            label = MedicalLabel(code=self.code_book.encode(code), org_name=state.roster.org_name,
                                 department=state.roster.department_name(found.department), category=found.category,
                                 weight_g=found.weight_g, produced_at=found.produced_at.astimezone(state.zone),
                                 notes=found.notes, main_components=found.components)
            result = self.printer.print_label(label)
        except EdgeError as exc:
            log.warning("label %s not reprinted: %s", package_code, exc)
            self.printer_state = "error"
            return CmdAnswer(False, f"printer error: {exc}")
        except Exception:  # the worker's one guard, as for the workflow's labels
            log.exception("reprinting label %s failed", package_code)
            self.printer_state = "error"
            return CmdAnswer(False, "printing failed on the cart (see its log)")
        log.info("label %s reprinted for the gateway (%d bytes, %s)", package_code, result.bytes, result.language)
        self.printer_state = "ok"
        return CmdAnswer(True, f"label {package_code} printed")

    # lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()
        self._print_worker.start()

    def stop(self) -> None:
        self._loop.stop()
        self._print_worker.stop()
