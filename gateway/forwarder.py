"""Forwarder: the gateway's outbox to the platform (idempotency keys, backoff, rate limit, dead letters).

One thread owns the HTTP client.  It wakes when ingest committed (``wake()``) or when the earliest
retry is due, POSTs each due record to ``{platform}/records`` with ``Idempotency-Key: <id>``, and
records the outcome in the store: 2xx accepted; 408/429/5xx/timeouts/connection errors retried
with exponential backoff and full jitter; any other 4xx dead-lettered with status and text.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from gateway.config import ForwardConfig
from gateway.errors import ForwardError
from gateway.store import GatewayStore, Pending

log = logging.getLogger(__name__)

# Longest sleep with nothing due (s): a safety net only; commits and retries wake the thread.
IDLE_WAIT_S = 30.0
# Response text kept in a dead-letter reason (characters).
REASON_MAX_CHARS = 500
# Status codes worth retrying besides 5xx: request timeout, too many requests.
RETRYABLE_4XX = frozenset({408, 429})
# How long stop() waits for an in-flight request to finish (s, on top of the request timeout).
STOP_GRACE_S = 5.0


def platform_body(rec: Pending) -> dict[str, Any]:
    """The record as this platform wants it (the one place to adapt to another platform)."""
    return {"id": rec.id, "site": rec.site, "cart": rec.cart, "seq": rec.seq, "type": rec.type,
            "created_at": rec.created_at, "hash": rec.hash, "body": rec.envelope["body"]}


def backoff_s(attempt: int, cfg: ForwardConfig, rng: random.Random) -> float:
    """Delay before attempt ``attempt + 1`` (attempt >= 1): base * 2^(attempt-1), capped, full jitter."""
    ceiling = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** min(attempt - 1, 62))
    return rng.uniform(0, ceiling) if cfg.jitter else ceiling


class TokenBucket:
    """``rate`` tokens per second, burst ``rate`` (at least 1); waits on ``stop`` instead of sleeping."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = max(1.0, rate)
        self._tokens = self._burst
        self._clock = clock
        self._last = clock()

    def take(self, stop: threading.Event) -> bool:
        """Take one token; False if ``stop`` was set while waiting for it."""
        while True:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            if stop.wait((1 - self._tokens) / self._rate):
                return False


class PlatformClient:
    """The HTTP boundary: httpx errors and non-2xx answers become ForwardError."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self._url = f"{base_url}/records"
        self._http = httpx.Client(timeout=timeout_s)

    def post(self, rec: Pending) -> None:
        try:
            resp = self._http.post(self._url, json=platform_body(rec), headers={"Idempotency-Key": rec.id})
        except httpx.TimeoutException as exc:
            raise ForwardError(f"platform timed out: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise ForwardError(f"platform unreachable: {exc!r}") from exc
        if resp.is_success:
            return
        text = resp.text[:REASON_MAX_CHARS]
        permanent = 400 <= resp.status_code < 500 and resp.status_code not in RETRYABLE_4XX
        raise ForwardError(f"HTTP {resp.status_code}: {text}", permanent=permanent)

    def close(self) -> None:
        self._http.close()


class Forwarder:
    """Owns the forwarding thread and its PlatformClient."""

    def __init__(self, store: GatewayStore, platform: str, cfg: ForwardConfig,
                 on_change: Callable[[], None], rng: random.Random | None = None) -> None:
        self._store = store
        self._cfg = cfg
        self._on_change = on_change
        self._rng = rng or random.Random()
        self._client = PlatformClient(platform, cfg.timeout_s)
        self._bucket = TokenBucket(cfg.rate_per_s)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gw-forwarder", daemon=True)
        self._counters = {"forward_attempts": 0, "forward_retries": 0, "forward_errors": 0}

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New records were committed."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(self._cfg.timeout_s + STOP_GRACE_S)
            if self._thread.is_alive():
                log.error("forwarder: thread did not stop in time")
        self._client.close()

    def stats(self) -> dict[str, int]:
        return dict(self._counters)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the pass: a commit during the pass wakes the next wait
            try:
                self._pass()
                wait = self._idle_wait()
            except Exception:  # the one guard of this loop: log, count, retry after a pause
                self._counters["forward_errors"] += 1
                log.exception("forwarder: pass failed")
                wait = self._cfg.backoff_base_s
            self._wake.wait(wait)

    def _idle_wait(self) -> float:
        due = self._store.next_attempt_at()
        return IDLE_WAIT_S if due is None else min(IDLE_WAIT_S, max(0.0, due - time.time()))

    def _pass(self) -> None:
        """Forward everything due now, batch by batch."""
        while not self._stop.is_set():
            due = self._store.due_for_forwarding(time.time(), self._cfg.batch)
            if not due:
                return
            for rec in due:
                if not self._bucket.take(self._stop):
                    return
                self._forward(rec)

    def _forward(self, rec: Pending) -> None:
        self._counters["forward_attempts"] += 1
        try:
            self._client.post(rec)
        except ForwardError as exc:
            attempt = rec.attempts + 1
            limit = self._cfg.max_attempts
            if exc.permanent or (limit is not None and attempt >= limit):
                log.warning("forwarder: record %s (cart %s seq %d) dead-lettered: %s",
                            rec.id, rec.cart, rec.seq, exc)
                self._store.mark_dead(rec.id, str(exc))
                self._on_change()
            else:
                delay = backoff_s(attempt, self._cfg, self._rng)
                self._counters["forward_retries"] += 1
                log.info("forwarder: record %s attempt %d failed (%s); retry in %.2f s", rec.id, attempt, exc, delay)
                self._store.mark_retry(rec.id, str(exc), time.time() + delay)
            return
        # If this commit fails, the record is sent again later; its idempotency key makes that harmless.
        self._store.mark_accepted(rec.id, time.time())
        self._on_change()
