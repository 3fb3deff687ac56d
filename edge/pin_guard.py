"""How many PIN tries the kiosk takes (``PinPolicy``): back-off, then a lockout, per person and per kiosk.

A 4-digit PIN has 10,000 values; without limits a script on the cart's screen tries them all in a
minute.  ``PinGuard`` is the bookkeeping only — numbers and an injected monotonic clock, no I/O,
no sleeping: a try that comes too early is answered at once, unchecked.  The agent turns its
outcomes into screen messages, log lines and an alarm (``edge.agent``).

Who "the person" is: the collector signed in at the cart (``State.collector``), whose round asks
for the nurse's confirmation.  A wrong PIN names nobody (it matches no nurse), so it cannot be
charged to the nurse it was meant to be; charging it to the collector at the screen is the one
person it can be.  Signing in again with another badge starts a new person's run, so the kiosk
also counts every failure within ``window_min``, whoever was signed in.

- After ``free_failures`` wrong PINs in a row by a person, each further try waits
  ``backoff_s * 2**k`` after the last failure (k = 0, 1, …; at most ``backoff_max_s``).  A try
  during the wait is refused without checking the PIN: it is not a guess, and not counted.
- ``lockout_after`` failures in a row by a person, or ``kiosk_lockout_after`` failures at the kiosk
  within ``window_min``: PIN entry is locked for ``lockout_min`` (for that person; for everyone
  when the kiosk's count locked it), and every try is refused unchecked until then.
- Lockouts escalate: each one within ``ESCALATION_S`` of the one before (whichever scope) lasts
  twice as long as that one, up to ``lockout_max_min``; an attacker who waits out every lockout
  gets a few dozen PINs checked a day instead of hundreds.
- A right PIN ends the person's run (the kiosk's window keeps its failures).  The end of a lockout
  re-opens entry with a fresh run; a kiosk lockout also starts a fresh window and fresh runs.

Tries are serialised: ``attempt`` holds the guard's lock while it verifies the PIN, so a burst of
concurrent guesses cannot all pass the back-off check before the first failure is recorded.
The table holds one entry per collector with failures (badges are MAC-checked codes, so an
attacker cannot make up collectors to grow it).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from edge.backoff import FailureRuns, RunPolicy, Wait
from edge.pins import PinPolicy

NOBODY = ""  # the run key when no collector is signed in (PIN entry is offered only in a round)
ESCALATION_S = 24 * 3600.0  # s: a lockout this soon after the previous one lasts twice as long as it


Refused = Wait  # the PIN was not checked: PIN entry is ``locked``, or the back-off asks to wait


@dataclass(frozen=True)
class Lockout:
    """This failure locked PIN entry: for ``person`` or the whole ``kiosk``, for ``seconds``."""

    scope: Literal["person", "kiosk"]
    person: str
    failures: int  # in a row by the person, or at the kiosk within the window
    seconds: float


@dataclass(frozen=True)
class Checked:
    """The PIN was checked: ``who`` it belongs to (None: wrong), the person's run after it, a lockout."""

    who: str | None
    run: int = 0
    lockout: Lockout | None = None


Outcome = Refused | Checked


class PinGuard:
    """Back-off and lockout for PIN tries (see the module docstring); safe to call from any thread."""

    def __init__(self, policy: PinPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._runs = FailureRuns(RunPolicy(policy.free_failures, policy.backoff_s, policy.backoff_max_s))
        self._window: deque[float] = deque()  # the kiosk's failures within window_min (monotonic times)
        self._kiosk_until: float | None = None
        self._last_lock: tuple[float, float] | None = None  # (when, seconds) of the latest lockout: escalation
        self.failures = 0  # wrong PINs checked since start (telemetry); written under the lock
        self.lockouts = 0  # lockouts since start (telemetry); written under the lock

    def attempt(self, person: str | None, verify: Callable[[], str | None]) -> Outcome:
        """A PIN typed while ``person`` is signed in: refused unchecked, or ``verify()`` (who it
        belongs to, or None) is called and its answer recorded."""
        key = person or NOBODY
        with self._lock:
            refused = self._refusal(key, self._clock())
            if refused is not None:
                return refused
            who = verify()
            return self._record(key, who, self._clock())

    def _refusal(self, key: str, now: float) -> Refused | None:
        if self._kiosk_until is not None:
            if now < self._kiosk_until:
                return Refused(True, self._kiosk_until - now)
            self._kiosk_until = None  # expired: entry re-opens (runs and window were cleared at the lockout)
        return self._runs.wait(key, now)

    def _record(self, key: str, who: str | None, now: float) -> Checked:
        p = self.policy
        if who is not None:
            self._runs.end(key)  # a right PIN ends the run; the kiosk's window keeps its failures
            return Checked(who)
        self.failures += 1
        count = self._runs.fail(key, now)
        self._window.append(now)
        while self._window and self._window[0] <= now - p.window_min * 60:
            self._window.popleft()
        if len(self._window) >= p.kiosk_lockout_after:
            failures, lock_s = len(self._window), self._lock_length(now)
            self._kiosk_until = now + lock_s
            self._window.clear()
            self._runs.clear()
            self.lockouts += 1
            return Checked(None, count, Lockout("kiosk", key, failures, lock_s))
        if count >= p.lockout_after:
            lock_s = self._lock_length(now)
            self._runs.lock(key, now + lock_s)
            self.lockouts += 1
            return Checked(None, count, Lockout("person", key, count, lock_s))
        return Checked(None, count)

    def _lock_length(self, now: float) -> float:
        """Seconds of the lockout starting now: ``lockout_min``, or twice the previous one if that
        began within ``ESCALATION_S``, at most ``lockout_max_min``."""
        p = self.policy
        lock_s = p.lockout_min * 60
        if self._last_lock is not None and now - self._last_lock[0] < ESCALATION_S:
            lock_s = min(p.lockout_max_min * 60, self._last_lock[1] * 2)
        self._last_lock = (now, lock_s)
        return lock_s
