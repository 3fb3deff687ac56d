"""Runs of failures per key — after a few, each try waits longer; after more, the key is locked —
the one mechanism behind the kiosk's PIN limits (``edge.pin_guard``, keyed by collector) and the
operator console's login limits (``gateway.console.auth``, keyed by user name and by address).

``FailureRuns`` is bookkeeping only: times come in as arguments (an injected monotonic clock), a
try that comes too early is answered at once with a ``Wait``, nothing sleeps.  It is not
thread-safe: its owner holds its own lock around every call (both owners decide more than one
table's fate in one step).  Who is locked for how long is the owner's decision (``lock``): the
kiosk escalates repeated lockouts, the console does not.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Wait:
    """A try refused unchecked: the key is ``locked``, or its back-off asks to wait; ``seconds`` left."""

    locked: bool
    seconds: float

    @property
    def whole_seconds(self) -> int:
        return max(1, math.ceil(self.seconds))

    @property
    def whole_minutes(self) -> int:
        return max(1, math.ceil(self.seconds / 60))


@dataclass(frozen=True)
class RunPolicy:
    free_failures: int  # failures in a row before any try must wait
    backoff_s: float  # the first wait (s); doubles with each further failure
    backoff_max_s: float  # the longest single wait (s)
    forget_after_s: float | None = None  # a run quiet this long is forgotten; None: kept until it ends
    tracked: int | None = None  # keys kept at most (the least recently failed go first); None: unbounded

    def backoff(self, count: int) -> float:
        """The wait after the ``count``-th failure in a row (count >= free_failures)."""
        k = min(count - self.free_failures, 64)  # 2**64 × the least back-off is past any cap
        return float(min(self.backoff_max_s, self.backoff_s * 2.0**k))


@dataclass
class _Run:
    count: int = 0  # failures in a row
    last: float = 0.0  # monotonic time of the latest
    locked_until: float | None = None


class FailureRuns:
    """Failures in a row per key (see the module docstring)."""

    def __init__(self, policy: RunPolicy) -> None:
        self.policy = policy
        self._runs: OrderedDict[str, _Run] = OrderedDict()

    def wait(self, key: str, now: float) -> Wait | None:
        """Why ``key`` may not try now, or None.  A lockout served, or a run quiet for
        ``forget_after_s``, ends here (the next failure starts a fresh run)."""
        run = self._runs.get(key)
        if run is None:
            return None
        if run.locked_until is not None:
            if now < run.locked_until:
                return Wait(True, run.locked_until - now)
            del self._runs[key]
            return None
        forget = self.policy.forget_after_s
        if forget is not None and now - run.last > forget:
            del self._runs[key]
            return None
        if run.count >= self.policy.free_failures:
            ready = run.last + self.policy.backoff(run.count)
            if now < ready:
                return Wait(False, ready - now)
        return None

    def fail(self, key: str, now: float) -> int:
        """Count a failure of ``key``; the length of its run after it."""
        run = self._runs.pop(key, None) or _Run()
        self._runs[key] = run  # most recent last: eviction takes the oldest
        forget = self.policy.forget_after_s
        if forget is not None and run.locked_until is None and run.count and now - run.last > forget:
            run.count = 0
        run.count += 1
        run.last = now
        tracked = self.policy.tracked
        while tracked is not None and len(self._runs) > tracked:
            self._runs.popitem(last=False)
        return run.count

    def lock(self, key: str, until: float) -> None:
        """``key`` may not try before ``until`` (then it starts a fresh run)."""
        self._runs.setdefault(key, _Run()).locked_until = until

    def locked(self, key: str) -> bool:
        run = self._runs.get(key)
        return run is not None and run.locked_until is not None

    def end(self, key: str) -> None:
        """A success: ``key``'s run is over."""
        self._runs.pop(key, None)

    def clear(self) -> None:
        self._runs.clear()

    def __len__(self) -> int:
        """Keys with a run (what ``tracked`` bounds)."""
        return len(self._runs)

    def __contains__(self, key: object) -> bool:
        return key in self._runs
