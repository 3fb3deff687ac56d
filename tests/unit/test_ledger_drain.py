"""The drain policy (edge.ledger.drain) with made-up times: no broker, no thread, no sleep."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.ledger.drain import IDLE_WAIT_S, MAINTENANCE_S, PACE_TICK_S, Allowance, Drain, Restart
from edge.ledger.settings import UplinkSettings

UNPACED = UplinkSettings(drain_rate=0, window=100, max_unacked=5000, resend_after_s=30)


def drain(now: float = 100.0, **changes: float) -> Drain:
    return Drain(UNPACED.model_copy(update=changes), now)


def publish(d: Drain, allowance: Allowance, first_seq: int) -> int:
    """Hand ``allowance.records`` records to the drain as sent, from ``first_seq``; the next seq."""
    for seq in range(first_seq, first_seq + allowance.records):
        d.sent(seq, f"id-{seq}")
    return first_seq + allowance.records


# where to publish from ---------------------------------------------------------------------------

def test_a_new_connection_restarts_from_the_first_unsynced() -> None:
    d = drain()
    assert d.check(generation=1, now=100.0) is Restart.CONNECTED
    publish(d, d.allowance(0, 100.0), 1)
    assert d.published_upto == 100 and len(d.inflight) == 100
    assert d.check(generation=1, now=101.0) is None  # same connection: carry on
    assert d.check(generation=2, now=102.0) is Restart.CONNECTED  # a reconnect: the broker may have forgotten
    assert d.published_upto == 0 and not d.inflight


def test_no_ack_progress_for_resend_after_restarts_but_acks_keep_it_going() -> None:
    d = drain(resend_after_s=30)
    d.check(1, 100.0)
    publish(d, d.allowance(0, 100.0), 1)
    assert d.check(1, 129.0) is None
    d.acked(10, [], 129.0)  # progress: the timer starts again
    assert d.check(1, 158.0) is None
    assert d.check(1, 159.5) is Restart.STALLED
    assert d.published_upto == 0 and not d.inflight


def test_nothing_in_flight_never_stalls() -> None:
    d = drain(resend_after_s=30)
    d.check(1, 100.0)
    assert d.check(1, 10_000.0) is None  # idle for hours: nothing to re-send


def test_resend_command_moves_the_cursor_back() -> None:
    d = drain()
    d.check(1, 100.0)
    publish(d, d.allowance(0, 100.0), 1)
    d.resend_from(42, 101.0)
    assert d.published_upto == 41 and not d.inflight and d.last_progress == 101.0
    d.resend_from(1, 102.0)
    assert d.published_upto == 0


def test_an_ack_removes_up_to_its_seq_and_its_listed_ids_only() -> None:
    d = drain()
    d.check(1, 100.0)
    publish(d, Allowance(10, paced=False), 1)
    d.acked(3, ["id-7", "id-99"], 105.0)
    assert list(d.inflight) == [4, 5, 6, 8, 9, 10]
    assert d.last_progress == 105.0
    assert d.published_upto == 10  # an ack never moves the cursor back


# how much ----------------------------------------------------------------------------------------

def test_budgets_unacked_and_puback_window() -> None:
    d = drain(window=100, max_unacked=150)
    d.check(1, 100.0)
    assert d.allowance(0, 100.0) == Allowance(100, paced=False)  # the in-flight window
    nxt = publish(d, d.allowance(0, 100.0), 1)
    assert d.allowance(100, 100.0).records == 0  # all awaiting their PUBACK
    assert d.allowance(0, 100.0).records == 50  # PUBACKed, but only 150 may await the gateway's ack
    publish(d, d.allowance(0, 100.0), nxt)
    assert d.allowance(0, 100.0).records == 0
    d.acked(120, [], 101.0)
    assert d.allowance(0, 101.0).records == 100  # 30 unacked: the window bounds it again
    assert d.budget(-5) == 100  # PUBACKs of an old session never widen the window


def test_pacing_slices_a_backlog() -> None:
    d = drain(now=0.0, drain_rate=100)
    d.check(1, 0.0)
    first = d.allowance(0, 0.0)
    assert first == Allowance(5, paced=True)  # the least slice: 100/s × 50 ms
    publish(d, first, 1)
    assert d.allowance(0, 0.0).records == 0  # spent until time passes
    assert d.wait(paced=True) == PACE_TICK_S and d.wait(paced=False) == IDLE_WAIT_S
    assert d.allowance(0, 0.5).records == 45  # 100/s × 0.5 s, less the 5 sent
    assert d.allowance(0, 3.0) == Allowance(5, paced=True)  # after an idle gap: a fresh window, no burst


def test_pacing_that_allows_more_than_the_budgets_is_not_what_stops_the_drain() -> None:
    d = drain(now=0.0, drain_rate=10_000, window=20)
    d.check(1, 0.0)
    assert d.allowance(0, 0.5) == Allowance(20, paced=False)


def test_refill_when_half_the_window_is_free() -> None:
    d = drain(window=100)
    assert not d.refill_due(50) and d.refill_due(49)


# when --------------------------------------------------------------------------------------------

def test_telemetry_and_maintenance_are_due_first_then_by_period() -> None:
    d = drain(now=100.0, telemetry_s=10)
    assert d.telemetry_due(100.0) and d.maintenance_due(100.0)
    assert not d.telemetry_due(109.9) and not d.maintenance_due(109.9)
    assert d.telemetry_due(110.0)
    assert not d.maintenance_due(100.0 + MAINTENANCE_S - 1)
    assert d.maintenance_due(100.0 + MAINTENANCE_S)


# properties --------------------------------------------------------------------------------------

passes = st.lists(st.floats(min_value=0.0, max_value=2.5, allow_nan=False), min_size=1, max_size=200)


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(min_value=1.0, max_value=5000.0), gaps=passes)
def test_a_paced_drain_never_outruns_its_rate(rate: float, gaps: list[float]) -> None:
    """Publishing everything allowed at every pass, however the passes fall in time, stays within
    drain_rate over the run, plus at most one least slice (50 ms) per pacing window."""
    d = Drain(UplinkSettings(drain_rate=rate, window=10_000, max_unacked=60_000), 0.0)
    d.check(1, 0.0)
    now, seq = 0.0, 1
    for gap in gaps:
        now += gap
        seq = publish(d, d.allowance(0, now), seq)
        d.acked(seq - 1, [], now)  # a gateway that keeps up: only the pacing limits
        windows = now / 1.0 + 1
        assert seq - 1 <= rate * (now + PACE_TICK_S * windows) + 1e-6


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.one_of(
    st.tuples(st.just("pass"), st.integers(0, 150)),  # a pass; this many PUBACKs outstanding
    st.tuples(st.just("ack"), st.integers(0, 400)),
    st.tuples(st.just("resend"), st.integers(1, 400)),
    st.tuples(st.just("reconnect"), st.just(0)),
    st.tuples(st.just("wait"), st.integers(1, 40)),
), max_size=80), window=st.integers(1, 150), max_unacked=st.integers(1, 300))
def test_the_budgets_hold_whatever_happens(steps: list[tuple[str, int]], window: int, max_unacked: int) -> None:
    """Unacked records never exceed max_unacked; one pass never exceeds the free window; what is
    in flight is always a run of published seqs at or below the cursor, in seq order."""
    d = Drain(UplinkSettings(drain_rate=0, window=window, max_unacked=max_unacked, resend_after_s=30), 0.0)
    now, generation, backlog = 0.0, 1, 10_000
    for kind, n in steps:
        if kind == "pass":
            d.check(generation, now)
            allowed = d.allowance(n, now).records
            assert allowed <= max(0, window - n)
            for seq in range(d.published_upto + 1, min(d.published_upto + allowed, backlog) + 1):
                d.sent(seq, f"id-{seq}")
        elif kind == "ack":
            d.acked(n, [], now)
            assert all(seq > n for seq in d.inflight)
        elif kind == "resend":
            d.resend_from(n, now)
            assert d.published_upto == n - 1 and not d.inflight
        elif kind == "reconnect":
            generation += 1
        else:
            now += n
        assert len(d.inflight) <= max_unacked
        assert list(d.inflight) == sorted(d.inflight)
        assert all(seq <= d.published_upto for seq in d.inflight)


@pytest.mark.parametrize("rate", [0.0, 500.0])
def test_wait_after_a_pass(rate: float) -> None:
    d = drain(drain_rate=rate)
    d.check(1, 100.0)
    allowance = d.allowance(0, 100.0)
    assert d.wait(allowance.paced) == (PACE_TICK_S if rate else IDLE_WAIT_S)


def test_a_rejected_record_waits_for_no_ack() -> None:
    d = Drain(UNPACED, 0.0)
    d.check(0, 0.0)
    for seq in (1, 2, 3):
        d.sent(seq, f"id{seq}")
    d.rejected(2, 5.0)
    d.acked(1, ["id3"], 6.0)
    assert not d.inflight and d.published_high == 3
    assert d.check(0, 100.0) is None  # nothing in flight: no stall re-send


def test_unsynced_records_skipped_by_a_resend_are_sent_again_after_a_stall() -> None:
    """A resend from past the unacked records clears what is in flight; the stall timer still
    brings them back (issue 11: a far resend stopped the upload until a reconnect)."""
    d = Drain(UNPACED, 0.0)
    d.check(0, 0.0)
    for seq in (1, 2, 3):
        d.sent(seq, f"id{seq}")
    d.resend_from(4, 1.0)
    assert not d.inflight and d.published_upto == 3
    assert d.check(0, 20.0, unsynced=3) is None
    assert d.check(0, 31.5, unsynced=3) is Restart.STALLED
    assert d.published_upto == 0
    assert d.check(0, 100.0, unsynced=0) is None  # nothing waits: no re-send
