"""``edge.backoff.FailureRuns``, the one back-off/lockout mechanism of the kiosk's PINs and the
console's logins, on its own: the waits double to their cap, a lockout ends in a fresh run, a
quiet run is forgotten when asked to, and the table stays within ``tracked``."""

from __future__ import annotations

from edge.backoff import FailureRuns, RunPolicy, Wait


def test_waits_double_after_the_free_failures_up_to_the_cap() -> None:
    runs = FailureRuns(RunPolicy(free_failures=2, backoff_s=1.0, backoff_max_s=3.0))
    now = 100.0
    assert [runs.fail("k", now), runs.fail("k", now)] == [1, 2]
    waits = []
    for _ in range(3):
        wait = runs.wait("k", now)
        assert wait is not None and not wait.locked
        waits.append(wait.seconds)
        now += wait.seconds
        assert runs.wait("k", now) is None
        runs.fail("k", now)
    assert waits == [1.0, 2.0, 3.0]
    runs.end("k")
    assert runs.wait("k", now) is None and "k" not in runs


def test_a_lockout_ends_in_a_fresh_run() -> None:
    runs = FailureRuns(RunPolicy(free_failures=5, backoff_s=1.0, backoff_max_s=1.0))
    runs.fail("k", 0.0)
    runs.lock("k", 60.0)
    assert runs.locked("k") and runs.wait("k", 59.5) == Wait(True, 0.5)
    assert runs.wait("k", 60.0) is None and not runs.locked("k")
    assert runs.fail("k", 60.0) == 1


def test_a_quiet_run_is_forgotten_and_the_table_is_bounded() -> None:
    runs = FailureRuns(RunPolicy(free_failures=1, backoff_s=1.0, backoff_max_s=1.0, forget_after_s=10.0, tracked=3))
    runs.fail("k", 0.0)
    assert runs.fail("k", 11.0) == 1  # quiet longer than forget_after_s: counted from scratch
    for key in ("a", "b", "c"):
        runs.fail(key, 12.0)
    assert len(runs) == 3 and "k" not in runs  # the least recently failed went first
    kept = FailureRuns(RunPolicy(free_failures=1, backoff_s=1.0, backoff_max_s=1.0))
    kept.fail("k", 0.0)
    assert kept.fail("k", 1e6) == 2  # without forget_after_s a run lasts until it ends
