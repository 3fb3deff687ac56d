"""The webhook sender: each queued alert change POSTed as JSON to ``[webhook].url``, in order.

Body: ``{"event": "opened"|"acknowledged"|"resolved", "at": unix s, "alert": {id, kind, cart, site,
subject, detail, count, raised_at, last_seen, acknowledged_at, acknowledged_by, ack_note,
resolved_at}}`` — the alert as it was right after the change (queued in the change's transaction:
``gateway.store.alerting``).  A 2xx removes it from the queue; anything else (an error status, a
refused connection, a timeout) is tried again after ``backoff_base_s`` doubled per failed attempt, up
to ``backoff_max_s``.  Strictly oldest first: a receiver sees an alert's changes in order, and a
receiver that is down is asked once per backoff, not once per queued change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import httpx

from gateway.alerts.settings import WebhookConfig

log = logging.getLogger(__name__)

# Longest wait with nothing queued (s): the rules worker wakes the sender at once; alerts raised by
# ingest (tampering, domain flags) are picked up within this.
IDLE_S = 1.0


class WebhookQueue(Protocol):
    def webhook_head(self) -> tuple[int, str, int, float] | None: ...

    def webhook_sent(self, item_id: int) -> None: ...

    def webhook_retry(self, item_id: int, error: str, next_attempt_at: float) -> None: ...


class WebhookSender:
    """One thread that owns the HTTP client and drains the store's webhook queue."""

    def __init__(self, queue: WebhookQueue, config: WebhookConfig,
                 on_change: Callable[[], None] = lambda: None) -> None:
        if config.url is None:
            raise ValueError("WebhookSender needs [webhook].url")
        self._queue, self._config, self._url, self._on_change = queue, config, config.url, on_change
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self.sent = self.failed = self.errors = 0

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Something was queued: look now."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def stats(self) -> dict[str, int]:
        return {"webhook_posts_ok": self.sent, "webhook_posts_failed": self.failed, "webhook_errors": self.errors}

    def _run(self) -> None:
        with httpx.Client(timeout=self._config.timeout_s, headers={"user-agent": "wastecart-gateway"}) as client:
            while not self._stopping:
                try:
                    delay = self.step(client, time.time())
                except Exception:  # the one guard of this thread: log, count, back off
                    self.errors += 1
                    log.exception("webhook: pass failed")
                    delay = self._config.backoff_base_s
                if delay > 0:
                    self._wake.wait(delay)
                self._wake.clear()

    def step(self, client: httpx.Client, now: float) -> float:
        """Send the oldest queued change if it is due; how long to wait before the next step (s)."""
        head = self._queue.webhook_head()
        if head is None:
            return IDLE_S
        item_id, body, attempts, due = head
        if due > now:
            return due - now
        error = self._post(client, body)
        if error is None:
            self._queue.webhook_sent(item_id)
            self.sent += 1
            self._on_change()
            return 0.0
        delay = min(self._config.backoff_base_s * 2.0 ** min(attempts, 32), self._config.backoff_max_s)
        self._queue.webhook_retry(item_id, error, now + delay)
        self.failed += 1
        self._on_change()
        log.warning("webhook: %s (attempt %d); next in %.1f s", error, attempts + 1, delay)
        return delay

    def _post(self, client: httpx.Client, body: str) -> str | None:
        """POST one body; None if the receiver took it, else why not (httpx errors translated here)."""
        try:
            response = client.post(self._url, content=body.encode("utf-8"),
                                   headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"[:200]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"
