"""The PIN guard on a made-up clock: back-off doubling to its cap, tries during a wait not counted
(and the PIN not checked), lockouts per person and per kiosk and their expiry, the counters."""

from __future__ import annotations

import threading

import pytest

from edge.pin_guard import Checked, Lockout, PinGuard, Refused
from edge.pins import PinPolicy

POLICY = PinPolicy(free_failures=2, backoff_s=2.0, backoff_max_s=5.0, lockout_after=6, kiosk_lockout_after=8,
                   window_min=10.0, lockout_min=15.0)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Pins:
    """The PIN check the guard is handed: answers ``who`` and counts how often it was asked."""

    def __init__(self) -> None:
        self.checks = 0

    def wrong(self) -> str | None:
        self.checks += 1
        return None

    def right(self) -> str | None:
        self.checks += 1
        return "NUR-01"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(clock: Clock) -> PinGuard:
    return PinGuard(POLICY, clock)


def test_back_off_doubles_after_the_free_failures_up_to_its_cap(guard: PinGuard, clock: Clock) -> None:
    pins = Pins()
    free = [guard.attempt("COL-1", pins.wrong) for _ in range(2)]  # no wait between them
    assert free == [Checked(None, 1), Checked(None, 2)]
    waits = []
    for _ in range(3):
        refused = guard.attempt("COL-1", pins.wrong)
        assert isinstance(refused, Refused) and not refused.locked
        waits.append(refused.seconds)
        clock.t += refused.seconds
        assert isinstance(guard.attempt("COL-1", pins.wrong), Checked)
    assert waits == [2.0, 4.0, 5.0]  # 2 s, doubled, then the 5 s cap
    assert pins.checks == 5 and guard.failures == 5


def test_a_try_during_the_wait_is_not_checked_and_not_counted(guard: PinGuard, clock: Clock) -> None:
    pins = Pins()
    guard.attempt("COL-1", pins.wrong)
    guard.attempt("COL-1", pins.wrong)
    clock.t += 1.2
    for verify in (pins.wrong, pins.right, pins.wrong):
        refused = guard.attempt("COL-1", verify)
        assert isinstance(refused, Refused) and not refused.locked and refused.whole_seconds == 1
    assert pins.checks == 2 and guard.failures == 2  # nothing checked, nothing counted
    clock.t += 0.8
    assert guard.attempt("COL-1", pins.right) == Checked("NUR-01")  # the wait is over: a right PIN goes in


def test_a_person_is_locked_out_then_entry_reopens_with_a_fresh_run(guard: PinGuard, clock: Clock) -> None:
    pins = Pins()
    outcomes = []
    for _ in range(6):
        outcome = guard.attempt("COL-1", pins.wrong)
        while isinstance(outcome, Refused):  # wait out each back-off
            clock.t += outcome.seconds
            outcome = guard.attempt("COL-1", pins.wrong)
        outcomes.append(outcome)
    assert [o.lockout for o in outcomes[:5]] == [None] * 5
    assert outcomes[5].lockout == Lockout("person", "COL-1", 6, 900.0)
    assert (guard.failures, guard.lockouts) == (6, 1)
    clock.t += 899.0
    locked = guard.attempt("COL-1", pins.right)
    assert isinstance(locked, Refused) and locked.locked and locked.whole_minutes == 1 and pins.checks == 6
    assert isinstance(guard.attempt("COL-2", pins.wrong), Checked)  # another collector is not locked out
    clock.t += 1.0
    assert guard.attempt("COL-1", pins.wrong) == Checked(None, 1)  # expired: a fresh run, two free tries
    assert guard.attempt("COL-1", pins.wrong) == Checked(None, 2)


def _lock_out(guard: PinGuard, clock: Clock, person: str) -> Lockout:
    """Wrong PINs (waiting out each back-off) until a lockout; its details."""
    while True:
        outcome = guard.attempt(person, Pins().wrong)
        if isinstance(outcome, Refused):
            clock.t += outcome.seconds
        elif outcome.lockout is not None:
            return outcome.lockout


def test_lockouts_within_a_day_double_up_to_the_cap_then_start_over(clock: Clock) -> None:
    """An attacker who waits out every lockout: 15, 30, 60 min …, capped; a day later 15 min again."""
    guard = PinGuard(POLICY.model_copy(update={"lockout_max_min": 100.0, "kiosk_lockout_after": 1000}), clock)
    lengths = []
    for _ in range(4):
        lock = _lock_out(guard, clock, "COL-1")
        lengths.append(lock.seconds / 60)
        clock.t += lock.seconds
    assert lengths == [15.0, 30.0, 60.0, 100.0]
    clock.t += 24 * 3600
    assert _lock_out(guard, clock, "COL-1").seconds == 900.0
    assert guard.lockouts == 5


@pytest.mark.parametrize(("escalate", "most"), [(True, 45), (False, 600)])
def test_pins_checked_in_a_day_by_an_attacker_who_waits_out_every_refusal(escalate: bool, most: int) -> None:
    """The default policy against the fastest patient attacker (a try the moment it is allowed):
    about 40 PINs a day with escalation (a 4-digit PIN space lasts most of a year), 570 without."""
    clock = Clock()
    start = clock.t
    policy = PinPolicy() if escalate else PinPolicy(lockout_max_min=PinPolicy().lockout_min)
    guard = PinGuard(policy, clock)
    checked = 0
    while clock.t - start < 24 * 3600:
        outcome = guard.attempt("COL-1", Pins().wrong)
        if isinstance(outcome, Refused):
            clock.t += outcome.seconds
        else:
            checked += 1
    assert most - 60 < checked <= most, checked


def test_a_policy_whose_longest_lockout_is_shorter_than_the_first_is_refused() -> None:
    with pytest.raises(ValueError, match=r"lockout_max_min \(10\) is shorter than lockout_min \(15\)"):
        PinPolicy(lockout_min=15, lockout_max_min=10)


def test_the_kiosk_locks_across_collectors_within_its_window(guard: PinGuard, clock: Clock) -> None:
    pins = Pins()
    outcomes = []
    for n in range(8):  # two failures each (free), four collectors: no run reaches its back-off
        outcomes.append(guard.attempt(f"COL-{n // 2}", pins.wrong))
        clock.t += 1.0
    assert [o.lockout if isinstance(o, Checked) else o for o in outcomes] == [None] * 7 + [
        Lockout("kiosk", "COL-3", 8, 900.0)]
    refused = guard.attempt("COL-9", pins.right)  # everyone is locked out, a right PIN is not checked
    assert isinstance(refused, Refused) and refused.locked and refused.whole_minutes == 15
    assert pins.checks == 8 and guard.lockouts == 1
    clock.t += 900.0
    assert guard.attempt("COL-9", pins.right) == Checked("NUR-01")  # expiry re-opens entry


def test_failures_older_than_the_window_do_not_count_for_the_kiosk(guard: PinGuard, clock: Clock) -> None:
    pins = Pins()
    for n in range(7):
        guard.attempt(f"COL-{n}", pins.wrong)
    clock.t += 601.0  # window_min = 10: all seven are out of it
    outcome = guard.attempt("COL-8", pins.wrong)
    assert outcome == Checked(None, 1) and guard.lockouts == 0


def test_a_right_pin_ends_the_run_but_not_the_kiosk_window(guard: PinGuard, clock: Clock) -> None:
    pins = Pins()
    for _ in range(2):
        guard.attempt("COL-1", pins.wrong)
    clock.t += 2.0
    assert guard.attempt("COL-1", pins.right) == Checked("NUR-01")
    assert guard.attempt("COL-1", pins.wrong) == Checked(None, 1)  # the run starts again: no wait
    assert guard.attempt("COL-1", pins.wrong) == Checked(None, 2)
    clock.t += 2.0
    guard.attempt("COL-1", pins.right)
    outcomes = [guard.attempt(f"COL-{n + 2}", pins.wrong) for n in range(4)]  # 4 + 4 in the kiosk's window
    outcome = outcomes[-1]
    assert isinstance(outcome, Checked) and outcome.lockout is not None and outcome.lockout.scope == "kiosk"
    assert (guard.failures, guard.lockouts) == (8, 1)


def test_concurrent_guesses_do_not_slip_past_the_back_off(clock: Clock) -> None:
    """Tries are serialised: of 50 simultaneous wrong PINs, only the free ones are checked."""
    guard = PinGuard(POLICY, clock)
    pins = Pins()
    start = threading.Barrier(50)

    def guess() -> None:
        start.wait()
        guard.attempt("COL-1", pins.wrong)

    threads = [threading.Thread(target=guess) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert pins.checks == 2 and guard.failures == 2
