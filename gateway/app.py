"""The gateway's composition root: config -> store -> forwarder -> ingest, and their stop order.

Nothing happens at construction beyond checking keys and loading the gateway's own
(``gateway.identity``: created in ``DATA/gateway.key`` on first use; ``public_key`` is what carts
trust); ``start()`` opens the database and the connections.

Benchmark only: ``WASTECART_BENCH_UNSIGNED_ACKS=1`` (refused unless ``WASTECART_BENCH=1`` too)
makes acks, rejects and commands go out unsigned, so ``tests/bench/bench_gateway.py`` can measure
what signing costs in the same run.  No cart accepts them.

``wait_until`` lets a caller (CLI, demo, tests) wait for a condition on ``stats()`` without
polling: every commit, accept and connection change notifies one Condition.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from edge import tls, wire
from gateway.alerts.workers import AlertWorkers
from gateway.config import GatewayConfig
from gateway.errors import GatewayError
from gateway.forwarder import Forwarder
from gateway.identity import load_or_create, public_text
from gateway.ingest import Ingest, KeyRing
from gateway.store import GatewayRepository, QuarantineLimits, SqliteStore

if TYPE_CHECKING:
    from gateway.console.server import ConsoleServer

log = logging.getLogger(__name__)

BENCH_UNSIGNED = "WASTECART_BENCH_UNSIGNED_ACKS"  # benchmark only: "1" sends replies unsigned
BENCH = "WASTECART_BENCH"  # must be "1" as well, so the switch cannot be left on by accident


def bench_unsigned(env: Mapping[str, str]) -> bool:
    """True if the benchmark asked for unsigned replies; GatewayError if asked outside a benchmark."""
    if env.get(BENCH_UNSIGNED, "") in ("", "0"):
        return False
    if env.get(BENCH_UNSIGNED) != "1" or env.get(BENCH) != "1":
        raise GatewayError(f"{BENCH_UNSIGNED} is for benchmarks only: it needs {BENCH}=1 as well "
                           "(no cart accepts an unsigned ack); unset it")
    return True


class GatewayApp:
    """One gateway process: ``start()``, ``stop()``, ``stats()``, ``wait_until()``."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        try:
            self._keys = KeyRing(config.cart_keys, config.cart_keys_dir)
        except wire.ContractError as exc:
            raise GatewayError(f"cart_keys: {exc}") from exc
        if config.tls is not None:  # a bad file stops the gateway here, not as a handshake retried forever
            try:
                tls.check(config.tls)
            except tls.TlsError as exc:
                raise GatewayError(f"setting tls.{exc.field}: {exc}") from exc
        self._key = load_or_create(config.data)
        self.public_key = public_text(self._key)
        self._unsigned = bench_unsigned(os.environ)
        self._changed = threading.Condition()
        self._store: GatewayRepository | None = None
        self._ingest: Ingest | None = None
        self._forwarder: Forwarder | None = None
        self._alerts: AlertWorkers | None = None  # rules, history upkeep, webhook (gateway.alerts)
        self._final: dict[str, int] | None = None
        self._console: ConsoleServer | None = None  # gateway.console: when config.console.port is set
        self.console_url: str | None = None  # http://HOST:PORT/ while the operator console serves

    @property
    def store(self) -> GatewayRepository:
        if self._store is None:
            raise GatewayError("gateway is not started")
        return self._store

    def start(self) -> None:
        log.info("gateway: database %s, platform %s/records, broker %s, public key %s",
                 self.config.db_path, self.config.platform, self.config.broker, self.public_key)
        if self._unsigned:
            log.warning("gateway: %s=1: acks, rejects and commands go out UNSIGNED (benchmark only; "
                        "no cart accepts them)", BENCH_UNSIGNED)
        q = self.config.quarantine
        self._store = SqliteStore(self.config.db_path, QuarantineLimits(q.keep_bytes, q.budget_bytes),
                                  self.config.ledger.timezone)
        self._forwarder = Forwarder(self._store, self.config.platform, self.config.forward, self._notify)
        self._ingest = Ingest(self.config, self._store, self._keys, self._on_commit, self._notify,
                              None if self._unsigned else self._key)
        self._forwarder.start()  # downstream first: ingest may hand over as soon as it connects
        self._ingest.start()
        self._alerts = AlertWorkers(self._store, self.config, self._notify)
        self._alerts.start()
        if self.config.console.port is not None:  # last: it reads what the others write
            from gateway.console.hooks import GatewayHooks
            from gateway.console.server import ConsoleServer, metrics_app  # the `gateway` extra: only when asked

            hooks = GatewayHooks(keys=self._keys, data_dir=self.config.data, ledger=self.config.ledger,
                                 command=self._ingest.operator_command, wake_forwarder=self._forwarder.wake,
                                 cart_keys_dir=self.config.cart_keys_dir)
            console = ConsoleServer(lambda: self.store, self.config.console, self.config.db_path, hooks,
                                    metrics_app(self))
            try:
                console.start()
            except GatewayError:
                self.stop()  # a taken port ends the start as one line, with nothing left running
                raise
            self._console, self.console_url = console, console.url

    def stop(self) -> None:
        """Console stops, ingest stops taking messages (and acks what it took), forwarder stops, store closes."""
        if self._console is not None:
            self._console.stop()
            self._console = self.console_url = None
        if self._ingest is not None:
            self._ingest.stop()
        if self._forwarder is not None:
            self._forwarder.stop()
        if self._alerts is not None:
            self._alerts.stop()
            self._alerts = None
        if self._store is not None:
            self._final = self.stats()
            self._store.close()
        self._store = self._ingest = self._forwarder = None
        self._notify()
        log.info("gateway: stopped")

    def stats(self) -> dict[str, int]:
        """Store counts (``Queries.counts``: received, stored, duplicates, quarantined, pending,
        held, forwarding, accepted, dead, redeliveries, alerts) + the threads' counters."""
        if self._store is None:
            return dict(self._final or {})
        out = self._store.counts()
        if self._ingest is not None:
            out.update(self._ingest.stats())
        if self._forwarder is not None:
            out.update(self._forwarder.stats())
        return out

    def wait_until(self, predicate: Callable[[dict[str, int]], bool], timeout: float) -> bool:
        """Block until ``predicate(stats())`` holds (True) or ``timeout`` seconds passed (False)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.stats()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def _on_commit(self) -> None:
        if self._forwarder is not None:
            self._forwarder.wake()
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()
