"""The forwarding outbox as a state machine on real SQLite files, and the pure retry policy.

stored -> forwarding -> accepted | dead (| stored again for a retry).  A gateway killed between
the POST and recording its answer leaves the record in 'forwarding': re-opening the store and
recovering makes it due again, and its next attempt is counted as a re-delivery.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gateway.config import ForwardConfig
from gateway.errors import GatewayStoreError
from gateway.forwarder import Breaker, TokenBucket, backoff_s
from gateway.store import SqliteStore, read_summary
from tests.unit.test_gateway_store import NOW, rec


def test_crash_between_post_and_answer_is_resent_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    store = SqliteStore(path)
    store.store_batch([rec(1), rec(2)], NOW)
    assert store.mark_forwarding("id-CART-1-1", NOW) == 1
    store.mark_forwarding("id-CART-1-2", NOW)
    store.mark_accepted("id-CART-1-2", NOW + 1)
    store.close()  # killed here: seq 1 was sent, its answer never recorded

    store = SqliteStore(path)
    try:
        assert store.counts()["forwarding"] == 1
        assert store.due_for_forwarding(NOW + 2, 10) == []  # not due until recovered
        assert store.recover_forwarding(NOW + 2) == 1
        state = store.record_state("id-CART-1-1")
        assert state is not None
        assert (state["forward_state"], state["outcome_unknown"], state["last_error"]) == (
            "stored", 1, "gateway stopped while forwarding")
        assert [p.id for p in store.due_for_forwarding(NOW + 2, 10)] == ["id-CART-1-1"]
        assert store.mark_forwarding("id-CART-1-1", NOW + 3) == 2
        store.mark_accepted("id-CART-1-1", NOW + 4)
        state = store.record_state("id-CART-1-1")
        assert state is not None and (state["redelivered"], state["outcome_unknown"]) == (1, 0)
        assert store.counts()["redeliveries"] == 1
        assert store.recover_forwarding(NOW + 5) == 0  # nothing left in flight
    finally:
        store.close()
    summary = read_summary(tmp_path)
    assert (summary["counts"]["redeliveries"], summary["counts"]["accepted"]) == (1, 2)


def test_timeout_counts_the_next_attempt_refusal_does_not(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.sqlite")
    try:
        store.store_batch([rec(1), rec(2)], NOW)
        store.mark_forwarding("id-CART-1-1", NOW)
        store.mark_retry("id-CART-1-1", "timed out", NOW, unknown=True)  # may have arrived
        store.mark_forwarding("id-CART-1-2", NOW)
        store.mark_retry("id-CART-1-2", "connection refused", NOW, unknown=False)  # never left
        for rid in ("id-CART-1-1", "id-CART-1-2"):
            store.mark_forwarding(rid, NOW + 1)
            store.mark_accepted(rid, NOW + 2)
        states = [store.record_state(r) for r in ("id-CART-1-1", "id-CART-1-2")]
        assert [(s or {})["redelivered"] for s in states] == [1, 0]
        assert [(s or {})["attempts"] for s in states] == [2, 2]
        assert store.counts()["redeliveries"] == 1
    finally:
        store.close()


def test_a_dead_letter_after_a_timeout_is_listed_with_its_reason(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.sqlite")
    try:
        store.store_batch([rec(1)], NOW)
        store.mark_forwarding("id-CART-1-1", NOW)
        store.mark_dead("id-CART-1-1", "HTTP 422: unknown department")
        assert [(d["id"], d["reason"]) for d in store.dead_letters()] == [
            ("id-CART-1-1", "HTTP 422: unknown department")]
        assert store.counts()["dead"] == 1
        # the refusal is an alert for the operator, in the same commit; a second one is counted on it
        store.store_batch([rec(2)], NOW)
        store.mark_forwarding("id-CART-1-2", NOW)
        store.mark_dead("id-CART-1-2", "HTTP 422: unknown category")
        alerts = [a for a in store.alerts() if a["kind"] == "RECORD_REJECTED"]
        assert [(a["cart"], a["count"], a["subject"]) for a in alerts] == [("CART-1", 2, "record id-CART-1-2")]
        assert "unknown category" in alerts[0]["detail"]
        with pytest.raises(GatewayStoreError, match="no attempt in progress"):
            store.mark_dead("id-CART-1-2", "again")
    finally:
        store.close()


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_on_unreachable_at_once_and_after_n_failures() -> None:
    cfg = ForwardConfig(backoff_base_s=1, backoff_max_s=8, jitter=False, breaker_failures=3)
    clock = FakeClock()
    b = Breaker(cfg, random.Random(1), clock)
    b.failure(unreachable=False)
    b.failure(unreachable=False)
    assert b.wait_s() == 0  # two odd 503s: keep going
    b.failure(unreachable=False)
    assert b.wait_s() == 4  # third in a row: base * 2^(3-1)
    clock.t += 4
    assert b.wait_s() == 0  # time for one probe
    b.success()
    b.failure(unreachable=True)
    assert (b.wait_s(), b.opened) == (1, 2)  # connection refused: pause at once
    b.failure(unreachable=True)
    b.failure(unreachable=True)
    b.failure(unreachable=True)
    b.failure(unreachable=True)
    assert b.wait_s() == 8  # capped at backoff_max_s


def test_backoff_grows_caps_and_jitters() -> None:
    cfg = ForwardConfig(backoff_base_s=1, backoff_max_s=10, jitter=False)
    assert [backoff_s(n, cfg, random.Random()) for n in (1, 2, 3, 4, 5, 500)] == [1, 2, 4, 8, 10, 10]
    jittered = ForwardConfig(backoff_base_s=1, backoff_max_s=10)
    rng = random.Random(3)
    draws = [backoff_s(4, jittered, rng) for _ in range(200)]
    assert all(0 <= d <= 8 for d in draws) and max(draws) - min(draws) > 4


def test_token_bucket_waits_for_tokens() -> None:
    import threading

    clock = FakeClock()
    bucket = TokenBucket(2.0, clock)
    stop = threading.Event()
    assert bucket.take(stop.wait) and bucket.take(stop.wait)  # burst of 2
    stop.set()
    assert bucket.take(stop.wait) is False  # empty: it would wait, and stop is set
