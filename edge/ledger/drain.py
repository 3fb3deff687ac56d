"""The drain's policy: what to publish next and when, as plain code with the clock passed in.

Numbers in, decisions out; no I/O, no threads, no paho.  The uplink (``edge.ledger.uplink``)
asks it on every pass and carries out what it says; the unit tests drive it with made-up times.

- **Where to publish from**: the record after ``published_upto``.  After a new connection, a
  ``resend`` command, or no ack progress for ``resend_after_s`` while records are unacked, it
  starts again from the first unsynced record (or the asked seq): the gateway de-duplicates, so
  re-sending is always safe, and trusting a PUBACK is not (a broker killed with SIGKILL forgets).
- **How much**: at most ``max_unacked`` records published and not yet acked by the gateway, at
  most ``window`` messages awaiting the broker's PUBACK (paho rescans its whole outgoing queue on
  every PUBACK, so nothing may wait beyond its in-flight window), and with ``drain_rate`` > 0 at
  most that many records a second, published in slices ``PACE_TICK_S`` apart.
- **When**: telemetry every ``telemetry_s``, the retention purge every ``MAINTENANCE_S``, both due
  on the first pass.

Times are seconds on one monotonic clock (``time.monotonic`` in the uplink).  Only the drain
thread calls it, except ``refill_due`` which reads settings only (paho's thread asks it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from edge.ledger.settings import UplinkSettings

PACE_TICK_S = 0.05  # s: a paced drain publishes in slices this far apart (also the least slice)
PACE_WINDOW_S = 1.0  # s: the pacing counts records per window this long; an idle gap starts a new one
IDLE_WAIT_S = 1.0  # s: longest wait between passes when nothing wakes the drain (telemetry, stall check)
MAINTENANCE_S = 3600.0  # s: how often synced records past retention are purged


class Restart(enum.Enum):
    """Why the drain starts again from the first unsynced record."""

    CONNECTED = "connected"  # a new connection: send the birth message first
    STALLED = "stalled"  # records unacked and no ack progress for resend_after_s


@dataclass(frozen=True)
class Allowance:
    """What one pass may publish: ``records`` now; ``paced`` when the pacing, not a budget, limits it
    (the drain then comes back after ``PACE_TICK_S`` instead of waiting to be woken)."""

    records: int
    paced: bool


class Drain:
    """The drain thread's bookkeeping and decisions (never shared with another thread)."""

    def __init__(self, settings: UplinkSettings, now: float) -> None:
        self.settings = settings
        self.generation = -1  # the connection the drain last saw (the uplink bumps it per connect)
        self.published_upto = 0  # the last seq published since the last restart
        self.published_high = 0  # the highest seq published by this process: no ack may go beyond it
        self.inflight: dict[int, str] = {}  # seq -> id: published, not yet acked by the gateway
        self.last_progress = now  # the last ack (or restart): the stall timer runs from here
        self.spent = 0  # records published in the current pacing window
        self.window_start = now
        self.next_telemetry = now
        self.next_maintenance = now

    # where to publish from --------------------------------------------------------------------

    def check(self, generation: int, now: float, unsynced: int = 0) -> Restart | None:
        """On each connected pass: a new connection or a stall restarts from the first unsynced.

        A stall is no ack progress for ``resend_after_s`` while records are in flight or, with
        nothing in flight, while ``unsynced`` records wait (a ``resend`` from past them skipped
        them): either way they are sent again, never left waiting for a reconnect."""
        if generation != self.generation:
            self.generation = generation
            self.restart(0, now)
            return Restart.CONNECTED
        if (self.inflight or unsynced) and now - self.last_progress > self.settings.resend_after_s:
            self.restart(0, now)
            return Restart.STALLED
        return None

    def restart(self, after_seq: int, now: float) -> None:
        """Publish again from the first unsynced record after ``after_seq``; forget what is in flight."""
        self.published_upto = after_seq
        self.inflight.clear()
        self.last_progress = now

    def resend_from(self, seq: int, now: float) -> None:
        """The gateway's ``resend`` command (checked: ``seq`` ≤ head + 1): it misses ``seq`` (and
        maybe more after it)."""
        self.restart(max(0, seq - 1), now)

    def rejected(self, seq: int, now: float) -> None:
        """The gateway rejected ``seq`` for good: it waits for no ack (nor holds back the stall timer)."""
        if self.inflight.pop(seq, None) is not None:
            self.last_progress = now

    def acked(self, upto: int, ids: list[str], now: float) -> None:
        """The gateway stored every seq ≤ ``upto`` and the listed ids: they are in flight no more."""
        while self.inflight and next(iter(self.inflight)) <= upto:  # published in seq order: oldest first
            del self.inflight[next(iter(self.inflight))]
        if ids:
            done = set(ids)
            for seq in [s for s, rid in self.inflight.items() if rid in done]:
                del self.inflight[seq]
        self.last_progress = now

    # how much --------------------------------------------------------------------------------

    def budget(self, awaiting_puback: int) -> int:
        """Records the two budgets allow now (unacked by the gateway; awaiting the broker's PUBACK).

        ``max(0, …)``: after a reconnect paho may deliver PUBACKs for messages of the old session,
        so the count of those awaiting one can dip below zero."""
        return min(self.settings.max_unacked - len(self.inflight),
                   self.settings.window - max(0, awaiting_puback))

    def allowance(self, awaiting_puback: int, now: float) -> Allowance:
        """What this pass may publish: the budgets, and the pacing if ``drain_rate`` > 0."""
        budget = self.budget(awaiting_puback)
        if self.settings.drain_rate <= 0:
            return Allowance(max(0, budget), paced=False)
        pace = self._pace(now)
        return Allowance(max(0, min(budget, pace)), paced=pace < budget)

    def _pace(self, now: float) -> int:
        """Records that may still be published now under ``drain_rate`` records/s."""
        elapsed = now - self.window_start
        if elapsed > PACE_WINDOW_S:  # a fresh window: no burst carried over from an idle period
            self.window_start, self.spent, elapsed = now, 0, 0.0
        return max(0, int(self.settings.drain_rate * max(elapsed, PACE_TICK_S)) - self.spent)

    def sent(self, seq: int, rid: str) -> None:
        """Record ``seq`` was handed to paho."""
        self.inflight[seq] = rid
        self.published_upto = seq
        self.published_high = max(self.published_high, seq)
        self.spent += 1

    def refill_due(self, awaiting_puback: int) -> bool:
        """On a PUBACK: wake the drain once half the window is free (reads settings only)."""
        return awaiting_puback < self.settings.window // 2

    # when ------------------------------------------------------------------------------------

    @staticmethod
    def wait(paced: bool) -> float:
        """Seconds until the next pass unless woken: a drain that the pacing stopped (with records
        left) comes back for its next slice; otherwise acks, commits and connects wake it."""
        return PACE_TICK_S if paced else IDLE_WAIT_S

    def telemetry_now(self, now: float) -> None:
        """Something to report before the period is up (``Uplink.report_soon``): due at ``now``."""
        self.next_telemetry = min(self.next_telemetry, now)

    def telemetry_due(self, now: float) -> bool:
        if now < self.next_telemetry:
            return False
        self.next_telemetry = now + self.settings.telemetry_s
        return True

    def maintenance_due(self, now: float) -> bool:
        if now < self.next_maintenance:
            return False
        self.next_maintenance = now + MAINTENANCE_S
        return True
