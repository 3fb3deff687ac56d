"""The scale slide-out actuator: a motor that pushes the weighing platform out and pulls it back.

One travel mechanism (``Actuator``) over a small ``Drive`` interface: the drive starts and stops
the motor and reports when an end stop closes; the actuator owns the state and a watchdog, so a
jammed slide or a broken end-stop switch becomes a ``fault`` with a reason instead of a motor
left running.  Two drives: ``GpioDrive`` (gpiozero: an H-bridge motor and two end-stop switches
on a Raspberry Pi) and ``SimDrive`` (a timer; can be jammed to inject the fault).  The workflow
only sees the states: it asks for "extend" when a bag is to be weighed and accepts weights only
while the platform is out.

States: ``retracted`` → ``extending`` → ``extended`` → ``retracting`` → ``retracted``;
``fault`` from a travel that timed out or impossible end stops; ``unknown`` at start-up when
neither end stop is closed (the next command moves it to a known end).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol, get_args

from edge.messages import NO_MSG, Msg, msg
from edge.worker import Worker

log = logging.getLogger(__name__)

Direction = Literal["extend", "retract"]
ActuatorState = Literal["unknown", "retracted", "extending", "extended", "retracting", "fault"]
STATES: tuple[ActuatorState, ...] = get_args(ActuatorState)  # all but "none" of catalogue.DEVICES["actuator"]
_MOVING: dict[Direction, ActuatorState] = {"extend": "extending", "retract": "retracting"}
_ARRIVED: dict[Direction, ActuatorState] = {"extend": "extended", "retract": "retracted"}
_TIMED_OUT = {"extend": "actuator.extend_timeout", "retract": "actuator.retract_timeout"}
STOP_JOIN_S = 1.0  # s close() waits for the watchdog thread: its passes only look at a clock


class Drive(Protocol):
    """The motor and end stops; ``on_end(direction)`` must be called when an end stop closes."""

    on_end: Callable[[Direction], None]

    def start(self, direction: Direction) -> None: ...
    def stop(self) -> None: ...
    def at_end(self) -> Direction | None: ...   # which end stop is closed now (None: neither)
    def close(self) -> None: ...


class Actuator:
    """Drives a ``Drive`` to an end stop with a watchdog; reports every state change with its reason.

    ``on_state(state, reason)`` gets the reason as a message (``NO_MSG`` unless the state is a
    fault); the watchdog is a ``Worker`` that sleeps until a travel's deadline (or until woken).
    """

    def __init__(self, drive: Drive, *, timeout_s: float = 5.0,
                 on_state: Callable[[ActuatorState, Msg], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._drive = drive
        self._timeout_s = timeout_s  # a healthy slide travels in ~1-2 s; beyond this it is stuck
        self._on_state = on_state or (lambda state, reason: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._target: Direction | None = None
        self._deadline: float | None = None  # clock() by which the travel to _target must end
        self._watchdog = Worker("actuator-watchdog", self._watch, join_s=STOP_JOIN_S)
        end = drive.at_end()
        self._state: ActuatorState = _ARRIVED[end] if end else "unknown"
        self.reason: Msg = NO_MSG
        drive.on_end = self._arrived

    @property
    def state(self) -> ActuatorState:
        return self._state

    def extend(self) -> None:
        self._move("extend")

    def retract(self) -> None:
        self._move("retract")

    def _move(self, direction: Direction) -> None:
        with self._lock:
            if self._state in (_ARRIVED[direction], _MOVING[direction]):
                return
            if not self._watchdog.is_alive():  # started by the first travel: an idle slide needs no thread
                self._watchdog.start()
            self._target = direction
            self._deadline = self._clock() + self._timeout_s
            self._set(_MOVING[direction], NO_MSG)
            self._drive.start(direction)
        self._watchdog.wake()
        if self._drive.at_end() == direction:  # already there (switch closed before we looked)
            self._arrived(direction)

    def _arrived(self, direction: Direction) -> None:
        with self._lock:
            if self._target != direction:
                return  # the other end stop, or a bounce after we stopped: not the travel we asked
            self._drive.stop()
            self._target = self._deadline = None
            self._set(_ARRIVED[direction], NO_MSG)

    def _watch(self) -> float | None:
        """One watchdog pass: the motor off and a fault once a travel is past its deadline; else
        the time left to it (None: no travel, sleep until the next one wakes us)."""
        with self._lock:
            if self._target is None or self._deadline is None:
                return None
            left = self._deadline - self._clock()
            if left > 0:
                return left
            self._drive.stop()
            direction, self._target, self._deadline = self._target, None, None
            self._set("fault", msg(_TIMED_OUT[direction], seconds=f"{self._timeout_s:g}"))
        return None

    def _set(self, state: ActuatorState, reason: Msg) -> None:
        self._state, self.reason = state, reason
        if reason:
            log.warning("actuator %s: %s", state, reason)
        self._on_state(state, reason)

    def close(self) -> None:
        with self._lock:
            self._target = self._deadline = None
            self._drive.stop()
        self._watchdog.stop()
        self._drive.close()


class SimDrive:
    """A slide that takes ``travel_s`` to reach either end; ``jam()`` makes it stop arriving."""

    def __init__(self, travel_s: float = 0.3, start_at: Direction | None = "retract") -> None:
        self.travel_s = travel_s
        self.on_end: Callable[[Direction], None] = lambda d: None
        self._end: Direction | None = start_at
        self._timer: threading.Timer | None = None
        self.jammed = False

    def start(self, direction: Direction) -> None:
        self.stop()
        self._end = None
        if not self.jammed:
            self._timer = threading.Timer(self.travel_s, self._reach, args=(direction,))
            self._timer.daemon = True
            self._timer.start()

    def _reach(self, direction: Direction) -> None:
        self._end = direction
        self.on_end(direction)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def at_end(self) -> Direction | None:
        return self._end

    def jam(self, jammed: bool = True) -> None:
        self.jammed = jammed

    def close(self) -> None:
        self.stop()


class GpioDrive:
    """gpiozero H-bridge motor + two end-stop switches (closed = pressed, pulled up)."""

    def __init__(self, *, forward_pin: int, backward_pin: int, extended_pin: int, retracted_pin: int,
                 pin_factory: Any = None) -> None:
        from gpiozero import Button, Motor  # type: ignore[import-untyped]  # only on a Pi (or with gpiozero's mock pins in tests)

        self.on_end: Callable[[Direction], None] = lambda d: None
        self._motor = Motor(forward_pin, backward_pin, pwm=False, pin_factory=pin_factory)
        self._ends: dict[Direction, Any] = {"extend": Button(extended_pin, pin_factory=pin_factory),
                      "retract": Button(retracted_pin, pin_factory=pin_factory)}
        for direction, button in self._ends.items():
            button.when_pressed = lambda _b=None, d=direction: self.on_end(d)

    def start(self, direction: Direction) -> None:
        if direction == "extend":
            self._motor.forward()
        else:
            self._motor.backward()

    def stop(self) -> None:
        self._motor.stop()

    def at_end(self) -> Direction | None:
        closed = [d for d, b in self._ends.items() if b.is_pressed]
        return closed[0] if len(closed) == 1 else None  # both closed: a wiring fault, not an end

    def close(self) -> None:
        self._motor.close()
        for b in self._ends.values():
            b.close()
