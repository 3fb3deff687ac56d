"""Forwarder: the gateway's outbox to the platform (idempotency keys, backoff, rate limit, dead letters).

One ``edge.worker.Worker`` owns the HTTP client.  It wakes when ingest committed (``wake()``) or
when the earliest retry is due, and for each due record: marks it ``forwarding`` in the store
(durably, BEFORE the POST), POSTs it to ``{platform}/records`` with ``Idempotency-Key: <id>``,
and records the outcome: 2xx accepted; 408/429/5xx/timeouts/connection errors retried with
exponential backoff and full jitter; any other 4xx dead-lettered with status and text.

Exactly once, as far as we can: a real platform may ignore idempotency keys, so a record is only
sent again when its outcome is unknown: a timeout or connection loss after the request went out,
or a record found in ``forwarding`` at start-up (crash between POST and answer).  Those
re-deliveries are counted in the store (``redeliveries``), never hidden.  A connection refused or
a connect timeout is not one: the request never left.

Platform-down pacing (a circuit breaker, ``Breaker``): a connection failure or timeout, or
``breaker_failures`` failed attempts in a row, pauses the WHOLE outbox for the backoff of the
consecutive failure count (full jitter); then one record probes the platform.  So a platform
outage of hours costs one request per backoff period, not one per due record, and a
platform that fails a share of requests at random (the odd 503) does not stall the outbox.

The HTTP transport is injectable (``transport=``, an ``httpx.BaseTransport``; default the real
one): a unit test drives the retry / dead-letter / idempotency path through ``httpx.MockTransport``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from edge.worker import Worker
from gateway.config import ForwardConfig
from gateway.errors import ForwardError
from gateway.metrics import FORWARD_LATENCY
from gateway.store import Outbox, Pending

log = logging.getLogger(__name__)

# Longest sleep with nothing due (s): a safety net only; commits and retries wake the thread.
IDLE_WAIT_S = 30.0
# Response text kept in a dead-letter reason (characters).
REASON_MAX_CHARS = 500
# Status codes worth retrying besides 5xx: request timeout, too many requests.
RETRYABLE_4XX = frozenset({408, 429})
# How long stop() waits for an in-flight request to finish (s, on top of the request timeout).
STOP_GRACE_S = 5.0
# httpx errors raised before a single byte of the request left: not a re-delivery when retried.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
            httpx.ProxyError)


def platform_body(rec: Pending) -> dict[str, Any]:
    """The record as this platform wants it (the one place to adapt to another platform)."""
    return {"id": rec.id, "site": rec.site, "cart": rec.cart, "seq": rec.seq, "type": rec.type,
            "created_at": rec.created_at, "hash": rec.hash, "body": rec.envelope["body"]}


def backoff_s(attempt: int, cfg: ForwardConfig, rng: random.Random) -> float:
    """Delay before attempt ``attempt + 1`` (attempt >= 1): base * 2^(attempt-1), capped, full jitter."""
    ceiling = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** min(attempt - 1, 62))
    return rng.uniform(0, ceiling) if cfg.jitter else ceiling


class TokenBucket:
    """``rate`` tokens per second, burst ``rate`` (at least 1); waits with ``wait`` instead of sleeping."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = max(1.0, rate)
        self._tokens = self._burst
        self._clock = clock
        self._last = clock()

    def take(self, wait: Callable[[float], bool]) -> bool:
        """Take one token; ``wait(s)`` waits up to s seconds and returns True when stopping (then
        False: no token).  ``Worker.sleep`` or ``threading.Event.wait``."""
        while True:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            if wait((1 - self._tokens) / self._rate):
                return False


class Breaker:
    """Pauses the whole outbox after the platform looked down (pure: injected clock and rng)."""

    def __init__(self, cfg: ForwardConfig, rng: random.Random, clock: Callable[[], float] = time.monotonic) -> None:
        self._cfg = cfg
        self._rng = rng
        self._clock = clock
        self.failures = 0  # consecutive failed attempts
        self.opened = 0  # times the breaker opened (a metric)
        self._open_until = 0.0

    def success(self) -> None:
        self.failures = 0
        self._open_until = 0.0

    def failure(self, *, unreachable: bool) -> None:
        """A failed attempt; ``unreachable`` (no answer at all) opens the breaker at once."""
        self.failures += 1
        if unreachable or self.failures >= self._cfg.breaker_failures:
            self._open_until = self._clock() + backoff_s(self.failures, self._cfg, self._rng)
            self.opened += 1

    def wait_s(self) -> float:
        """How long the outbox must still wait (0: closed, or time for one probe)."""
        return max(0.0, self._open_until - self._clock())


class PlatformClient:
    """The HTTP boundary: httpx errors and non-2xx answers become ForwardError.

    ``transport``: where requests go (None: httpx's real one); ``httpx.MockTransport`` in tests.
    """

    def __init__(self, base_url: str, timeout_s: float, transport: httpx.BaseTransport | None = None) -> None:
        self._url = f"{base_url}/records"
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    def post(self, rec: Pending) -> None:
        try:
            resp = self._http.post(self._url, json=platform_body(rec), headers={"Idempotency-Key": rec.id})
        except NOT_SENT as exc:
            raise ForwardError(f"platform unreachable: {exc!r}", unreachable=True) from exc
        except httpx.TimeoutException as exc:
            raise ForwardError(f"platform timed out, outcome unknown: {exc!r}", unreachable=True,
                               unknown=True) from exc
        except httpx.HTTPError as exc:  # connection lost after sending (reset, protocol error)
            raise ForwardError(f"platform connection lost, outcome unknown: {exc!r}", unreachable=True,
                               unknown=True) from exc
        if resp.is_success:
            return
        text = resp.text[:REASON_MAX_CHARS]
        permanent = 400 <= resp.status_code < 500 and resp.status_code not in RETRYABLE_4XX
        raise ForwardError(f"HTTP {resp.status_code}: {text}", permanent=permanent)

    def close(self) -> None:
        self._http.close()


class Forwarder:
    """Owns the forwarding worker and its PlatformClient."""

    def __init__(self, store: Outbox, platform: str, cfg: ForwardConfig, on_change: Callable[[], None],
                 rng: random.Random | None = None, transport: httpx.BaseTransport | None = None) -> None:
        self._store = store
        self._cfg = cfg
        self._on_change = on_change
        self._rng = rng or random.Random()
        self._client = PlatformClient(platform, cfg.timeout_s, transport)
        self._bucket = TokenBucket(cfg.rate_per_s)
        self._breaker = Breaker(cfg, self._rng)
        # A pass that raised (a store error) is retried after backoff_base_s; stop() waits for an
        # in-flight request to end: its timeout plus a grace.
        self._worker = Worker("gw-forwarder", self._run_once, join_s=cfg.timeout_s + STOP_GRACE_S,
                              retry_s=cfg.backoff_base_s)
        self._counters = {"forward_attempts": 0, "forward_retries": 0, "recovered": 0}

    def start(self) -> None:
        """Recover what a previous run left in 'forwarding' (outcome unknown), then start the worker."""
        self._counters["recovered"] = self._store.recover_forwarding(time.time())
        if self._counters["recovered"]:
            log.warning("forwarder: %d record(s) were being forwarded when the gateway stopped; "
                        "sending them again (counted as re-deliveries)", self._counters["recovered"])
        self._worker.start()

    def wake(self) -> None:
        """New records were committed."""
        self._worker.wake()

    def stop(self) -> None:
        self._worker.stop()
        self._client.close()

    def stats(self) -> dict[str, int]:
        # forward_errors: passes that raised (a store error), logged and counted by the worker's guard
        return {**self._counters, "forward_errors": self._worker.errors, "breaker_opened": self._breaker.opened,
                "platform_down": int(self._breaker.wait_s() > 0)}

    def _run_once(self) -> float:
        """One worker pass: forward what is due, then wait until the next record is due."""
        self._pass()
        return self._idle_wait()

    def _idle_wait(self) -> float:
        paused = self._breaker.wait_s()
        if paused > 0:
            return paused
        due = self._store.next_attempt_at()
        return IDLE_WAIT_S if due is None else min(IDLE_WAIT_S, max(0.0, due - time.time()))

    def _pass(self) -> None:
        """Forward everything due now, batch by batch, until done, stopped or the breaker opens."""
        while not self._worker.stopping:
            due = self._store.due_for_forwarding(time.time(), self._cfg.batch)
            if not due:
                return
            for rec in due:
                if self._breaker.wait_s() > 0 or not self._bucket.take(self._worker.sleep):
                    return
                self._forward(rec)

    def _forward(self, rec: Pending) -> None:
        self._counters["forward_attempts"] += 1
        attempt = self._store.mark_forwarding(rec.id, time.time())  # durable before the request leaves
        sent = time.monotonic()
        try:
            self._client.post(rec)
        except ForwardError as exc:
            FORWARD_LATENCY.observe(time.monotonic() - sent)
            self._failed(rec, attempt, exc)
            return
        FORWARD_LATENCY.observe(time.monotonic() - sent)
        self._breaker.success()
        # If this commit fails, the record stays 'forwarding': re-sent (and counted) after a restart.
        self._store.mark_accepted(rec.id, time.time())
        self._on_change()

    def _failed(self, rec: Pending, attempt: int, exc: ForwardError) -> None:
        limit = self._cfg.max_attempts
        if not exc.permanent:
            self._breaker.failure(unreachable=exc.unreachable)
        if exc.permanent or (limit is not None and attempt >= limit):
            log.warning("forwarder: record %s (cart %s seq %d) dead-lettered: %s", rec.id, rec.cart, rec.seq, exc)
            self._store.mark_dead(rec.id, str(exc))
            self._on_change()
            return
        delay = backoff_s(attempt, self._cfg, self._rng)
        self._counters["forward_retries"] += 1
        log.info("forwarder: record %s attempt %d failed (%s); retry in %.2f s", rec.id, attempt, exc, delay)
        self._store.mark_retry(rec.id, str(exc), time.time() + delay, unknown=exc.unknown)
        self._on_change()
