"""The forwarder's retry, dead-letter and idempotency path, on a real SQLite outbox, with the
platform played by ``httpx.MockTransport`` (httpx's own in-process transport: the request goes
through the real client, headers, JSON body and error mapping; only the socket is replaced).

The integration tests drive the same code against the real simulated platform over HTTP; here
each answer (a status code, or an httpx error raised where the network would) is scripted per
record, so every branch is reached deterministically.  Waits are on a Condition the forwarder's
``on_change`` notifies, never on sleeps.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import ForwardConfig
from gateway.forwarder import Forwarder
from gateway.store import SqliteStore
from tests.unit.test_gateway_store import NOW, h, rec

WAIT_S = 10.0  # s: generous for a loaded 2-core machine; a pass here takes milliseconds
URL = "http://platform.test"
# Fast retries (s) without jitter, so a test waits milliseconds for a retry, and a high rate.
FAST = ForwardConfig(backoff_base_s=0.01, backoff_max_s=0.05, jitter=False, rate_per_s=10_000)

Answer = int | httpx.HTTPError


class ScriptedPlatform:
    """Answers each POST with the next scripted answer of its record (200 once they run out)."""

    def __init__(self, script: dict[str, list[Answer]]) -> None:
        self._script = {rid: list(answers) for rid, answers in script.items()}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str | None, dict[str, Any]]] = []  # (path, Idempotency-Key, body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        with self._lock:
            self.requests.append((request.url.path, request.headers.get("Idempotency-Key"), body))
            answers = self._script.get(body["id"], [])
            answer = answers.pop(0) if answers else 200
        if isinstance(answer, httpx.HTTPError):
            raise answer
        return httpx.Response(answer, text="accepted" if answer < 300 else f"refused with {answer}")

    def sent(self, rid: str) -> list[tuple[str | None, dict[str, Any]]]:
        with self._lock:
            return [(key, body) for _, key, body in self.requests if body["id"] == rid]


class Rig:
    """A store with records 1..n of CART-1 and a started Forwarder posting through the script."""

    def __init__(self, path: Path, script: dict[str, list[Answer]], cfg: ForwardConfig, n: int) -> None:
        self.store = SqliteStore(path)
        self.store.store_batch([rec(seq) for seq in range(1, n + 1)], NOW)
        self.platform = ScriptedPlatform(script)
        self._changed = threading.Condition()
        self.forwarder = Forwarder(self.store, URL, cfg, self._notify, rng=random.Random(7),
                                   transport=httpx.MockTransport(self.platform))

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, what: str, predicate: Callable[[], bool]) -> None:
        with self._changed:
            assert self._changed.wait_for(predicate, WAIT_S), f"timed out waiting for {what}"

    def settled(self, rid: str) -> dict[str, Any]:
        """Wait until ``rid`` is accepted or dead; its final forwarding state."""
        def done() -> bool:
            state = self.store.record_state(rid)
            return state is not None and state["forward_state"] in ("accepted", "dead")

        self.wait_for(f"{rid} accepted or dead", done)
        state = self.store.record_state(rid)
        assert state is not None
        return state


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(script: dict[str, list[Answer]], cfg: ForwardConfig = FAST, n: int = 1) -> Rig:
        rig = Rig(tmp_path / f"gw{len(rigs)}" / "gateway.sqlite", script, cfg, n)
        rigs.append(rig)
        rig.forwarder.start()
        return rig

    yield make
    for rig in rigs:
        rig.forwarder.stop()
        rig.store.close()


def test_temporary_failures_are_retried_with_the_same_idempotency_key(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig({"id-CART-1-1": [503, 429, 408]})
    state = rig.settled("id-CART-1-1")
    assert (state["forward_state"], state["attempts"], state["redelivered"]) == ("accepted", 4, 0)
    sent = rig.platform.sent("id-CART-1-1")
    assert [key for key, _ in sent] == ["id-CART-1-1"] * 4  # one key for every attempt of one record
    assert all(body == sent[0][1] for _, body in sent)  # the same body each time
    assert sent[0][1] == {"id": "id-CART-1-1", "site": "H1", "cart": "CART-1", "seq": 1, "type": "handover",
                          "created_at": "2024-01-01T00:00:00+08:00", "hash": h("id-CART-1-1"),
                          "body": {"n": 1}}
    assert {path for path, _, _ in rig.platform.requests} == {"/records"}
    stats = rig.forwarder.stats()
    assert (stats["forward_attempts"], stats["forward_retries"], stats["forward_errors"]) == (4, 3, 0)
    assert stats["breaker_opened"] == 1  # the third failure in a row (breaker_failures=3) paused the outbox


def test_a_permanent_refusal_is_dead_lettered_at_once_with_the_reason(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig({"id-CART-1-1": [422]}, n=2)
    dead = rig.settled("id-CART-1-1")
    assert (dead["forward_state"], dead["attempts"], dead["last_error"]) == ("dead", 1, "HTTP 422: refused with 422")
    assert rig.settled("id-CART-1-2")["forward_state"] == "accepted"  # the outbox goes on past a dead letter
    assert len(rig.platform.sent("id-CART-1-1")) == 1
    assert [(d["id"], d["reason"]) for d in rig.store.dead_letters()] == [("id-CART-1-1", "HTTP 422: refused with 422")]
    assert rig.store.counts()["dead"] == 1


def test_temporary_failures_end_in_a_dead_letter_after_max_attempts(make_rig: Callable[..., Rig]) -> None:
    cfg = FAST.model_copy(update={"max_attempts": 3, "breaker_failures": 100})
    rig = make_rig({"id-CART-1-1": [503] * 10}, cfg)
    state = rig.settled("id-CART-1-1")
    assert (state["forward_state"], state["attempts"]) == ("dead", 3)
    assert state["last_error"] == "HTTP 503: refused with 503"
    assert len(rig.platform.sent("id-CART-1-1")) == 3
    assert rig.forwarder.stats()["forward_retries"] == 2


def test_only_an_unknown_outcome_counts_as_a_redelivery(make_rig: Callable[..., Rig]) -> None:
    """A read timeout may have reached the platform: its next attempt is a counted re-delivery.
    A refused connection never left: retried, not counted."""
    rig = make_rig({"id-CART-1-1": [httpx.ReadTimeout("no answer")],
                    "id-CART-1-2": [httpx.ConnectError("connection refused")]}, n=2)
    first, second = rig.settled("id-CART-1-1"), rig.settled("id-CART-1-2")
    assert (first["forward_state"], first["attempts"], first["redelivered"]) == ("accepted", 2, 1)
    assert (second["forward_state"], second["attempts"], second["redelivered"]) == ("accepted", 2, 0)
    assert rig.store.counts()["redeliveries"] == 1
    assert [key for key, _ in rig.platform.sent("id-CART-1-1")] == ["id-CART-1-1"] * 2
    assert rig.forwarder.stats()["breaker_opened"] == 2  # no answer at all: the outbox paused each time
