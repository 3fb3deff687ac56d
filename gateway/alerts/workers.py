"""The alert side's threads: the rules pass, the history's upkeep, the webhook; started and stopped
together by ``AlertWorkers`` (what ``GatewayApp`` holds).

Each thread owns one job and loops on ``while not stop.wait(interval)`` (CONVENTIONS 7); one guard
at the top of each loop logs an unexpected error with its traceback and counts it (``errors``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gateway.alerts import rules
from gateway.alerts.webhook import WebhookSender
from gateway.config import GatewayConfig
from gateway.store import GatewayRepository, Retention

log = logging.getLogger(__name__)

# How often the rules run over the fleet (s): a cart's will turns into an OFFLINE alert within this
# much after offline_min.  A pass reads the devices table (one row per cart) and writes only changes
# and the active alerts' last_seen: ~10 ms for 1,000 carts.
RULES_INTERVAL_S = 2.0
# How often the history's rollup and retention run (s); a pass folds batches until none is left or
# HISTORY_PASS_BATCHES were done, releasing the store's lock between batches.
HISTORY_INTERVAL_S = 60.0
# Rollup batches per pass (count, each ROLLUP_BATCH rows): 50 x 5,000 rows a minute is 100x what
# 1,000 carts reporting every 30 s produce, so a backlog after downtime is caught up in minutes.
HISTORY_PASS_BATCHES = 50


class _Loop:
    """One named thread running ``step`` every ``interval`` seconds until stopped."""

    def __init__(self, name: str, interval: float, step: Callable[[], None]) -> None:
        self.name, self.interval, self._step = name, interval, step
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            try:
                self._step()
            except Exception:  # the one guard of this thread: log, count, try again next interval
                self.errors += 1
                log.exception("%s: pass failed", self.name)
            if self._stop.wait(self.interval):
                return


class AlertWorkers:
    """The rules pass, the history upkeep and (if ``[webhook].url``) the webhook sender."""

    def __init__(self, store: GatewayRepository, config: GatewayConfig, on_change: Callable[[], None],
                 rules_interval_s: float = RULES_INTERVAL_S, history_interval_s: float = HISTORY_INTERVAL_S) -> None:
        self._store, self._limits, self._on_change = store, config.alerts, on_change
        h = config.history
        self._keep = Retention(h.raw_hours * 3600, h.minute_days * 86400, h.hour_days * 86400)
        self.webhook: WebhookSender | None = None
        if config.webhook.url is not None:
            store.enable_webhook(config.webhook.queue_max)
            self.webhook = WebhookSender(store, config.webhook, on_change)
        self._rules = _Loop("alert-rules", rules_interval_s, self._rules_step)
        self._history = _Loop("history", history_interval_s, self._history_step)
        self.opened = self.resolved = 0

    def start(self) -> None:
        if self.webhook is not None:
            self.webhook.start()
        self._rules.start()
        self._history.start()

    def stop(self) -> None:
        self._rules.stop()
        self._history.stop()
        if self.webhook is not None:
            self.webhook.stop()

    def rules_pass(self, now: float | None = None) -> list[tuple[str, int]]:
        """Evaluate the rules over the fleet and apply the result in one transaction."""
        now = time.time() if now is None else now
        changes = self._store.apply_conditions(rules.evaluate(self._store.fleet_state(), self._limits, now), now)
        if changes:
            self.opened += sum(1 for event, _ in changes if event == "opened")
            self.resolved += sum(1 for event, _ in changes if event == "resolved")
            if self.webhook is not None:
                self.webhook.wake()
            self._on_change()
        return changes

    def _rules_step(self) -> None:
        self.rules_pass()

    def _history_step(self) -> None:
        self.history_pass()

    def history_pass(self, now: float | None = None) -> int:
        """Roll up and drop aged history, at most HISTORY_PASS_BATCHES batches; the rows consumed."""
        now = time.time() if now is None else now
        total = 0
        for _ in range(HISTORY_PASS_BATCHES):
            done = self._store.history_maintenance(now, self._keep)
            total += done
            if not done:
                break
        return total

    def stats(self) -> dict[str, int]:
        out = {"alert_rule_errors": self._rules.errors + self._history.errors, "alerts_opened": self.opened,
               "alerts_resolved": self.resolved}
        if self.webhook is not None:
            out.update(self.webhook.stats())
        return out
