"""The ingest worker: broker -> checks -> one SQLite commit per batch -> signed replies.

paho's network thread only hands ``(connection, mid, topic, payload)`` to a queue (manual acks, so
the broker keeps a message until we PUBACK it).  One worker (``edge.worker.Worker``) takes
batches, checks each message (``gateway.ingest.checks``: records by topic, schema, cart, seal;
status, telemetry and command results by the cart's signature), stores the batch in one
transaction (chain checks, quarantine and alerts included: ``IngestRepository.store_batch``), and
only then sends the PUBACKs and the signed replies (``gateway.ingest.replies``: acks, rejects, a
``resend`` for a cart whose seqs have a gap, a ``time`` offer to a cart whose verified birth arrived).

Poison isolation: every number is bounded by the checks before it reaches SQLite, and a message
that fails them is quarantined alone.  Should a batch's transaction still fail, the batch is
retried message by message: a message whose own transaction fails is quarantined alone with the
reason (and PUBACKed, so a restart does not meet it again), the rest are stored and acked.  Only
when quarantining fails too (the disk, not a message) does the worker wait and retry.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.reasoncodes import ReasonCode

from edge import wire
from edge.mqtt import Link
from edge.tls import TlsError
from edge.worker import Worker
from gateway.config import GatewayConfig
from gateway.errors import GatewayError, GatewayStoreError, IngestError
from gateway.ingest.checks import (
    KeyRing,
    check_all,
    check_device,
    check_in_pool,
    device_rejected,
    init_pool_worker,
    is_record_topic,
)
from gateway.ingest.replies import Replies, ResendPacer
from gateway.metrics import INGEST_LATENCY
from gateway.store import BatchResult, DeviceUpdate, Incoming, IngestRepository, Outcome, Rejected

log = logging.getLogger(__name__)

# Wait before retrying a batch whose commit failed (s): long enough not to spin on a full disk.
STORE_RETRY_S = 1.0
# Below this many records a batch is checked in the ingest thread: shipping it to the worker
# processes costs more than it saves.
POOL_MIN_BATCH = 32
# How long stop() waits for the worker to drain what it already took (s).
STOP_TIMEOUT_S = 10.0
# Quarantined payloads logged one by one before the log says only every QUARANTINE_LOG_EVERY-th.
QUARANTINE_LOG_FIRST = 20
QUARANTINE_LOG_EVERY = 1_000
# Device topics the gateway follows besides records (status: retained births / wills; command results).
STATUS_SUBSCRIPTION = f"{wire.TOPIC_ROOT}/+/+/{wire.STATUS}"
TELEMETRY_SUBSCRIPTION = f"{wire.TOPIC_ROOT}/+/+/{wire.TELEMETRY}"
CMD_RESULT_SUBSCRIPTION = f"{wire.TOPIC_ROOT}/+/+/{wire.CMD_RESULT}"
SUBSCRIPTIONS = [(wire.RECORD_SUBSCRIPTION, wire.QOS[wire.RECORD]), (STATUS_SUBSCRIPTION, wire.QOS[wire.STATUS]),
                 (TELEMETRY_SUBSCRIPTION, wire.QOS[wire.TELEMETRY]),
                 (CMD_RESULT_SUBSCRIPTION, wire.QOS[wire.CMD_RESULT])]


@dataclass(frozen=True)
class _Message:
    generation: int  # which connection delivered it: a mid is only valid on that connection
    mid: int
    qos: int  # a QoS 0 message (a misbehaving publisher) has no PUBACK to send
    topic: str
    payload: bytes
    received: float  # time.monotonic() when paho handed it over: the ingest latency starts here


_STOP = object()  # queue sentinel: the worker finishes what is ahead of it, then exits


class Ingest:
    """Owns the MQTT link and the ingest worker."""

    def __init__(self, config: GatewayConfig, store: IngestRepository, keys: KeyRing,
                 on_commit: Callable[[], None], on_change: Callable[[], None],
                 key: Ed25519PrivateKey | None) -> None:
        """``key``: the gateway's signing key (``gateway.identity``); None only for the benchmark's
        unsigned comparison (``gateway.app``)."""
        self._config = config
        self._store = store
        self._keys = keys
        self._on_commit = on_commit  # wakes the forwarder and waiters
        self._on_change = on_change  # connection state changed: wakes waiters
        self._queue: queue.Queue[_Message | object] = queue.Queue()  # bounded by the broker's in-flight window
        self._closing = threading.Event()  # set first in stop(): paho's thread hands nothing more over
        self._generation = 0
        self._connected = False
        self._subscribed = False
        self._counters = {"ingest_batches": 0, "ingest_errors": 0, "device_updates": 0, "device_errors": 0,
                          "device_ignored": 0, "poison": 0, "quarantine_logged": 0}
        self._pool: ProcessPoolExecutor | None = None
        # retry_s=0: a batch that raised is already off the queue (unacked: the broker keeps it),
        # so the next one is taken at once; stopping puts the sentinel that ends the drain.
        self._worker = Worker("gw-ingest", self._run_once, join_s=STOP_TIMEOUT_S, retry_s=0.0,
                              on_stop=lambda: self._queue.put(_STOP))
        try:
            self._link = Link(config.broker, config.client_id, manual_ack=True, tls=config.tls)
        except TlsError as exc:  # checked at start-up (gateway.app); a file changed since
            raise GatewayError(f"setting tls.{exc.field}: {exc}") from exc
        self._client = self._link.client
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._replies = Replies(self._client, store, key, ResendPacer(config.ingest.resend_interval_s),
                                self._counters)

    # ---------------------------------------------------------------- life cycle

    def start(self) -> None:
        log.info("ingest: connecting to %s as %r, subscribing %s", self._config.broker,
                 self._config.client_id, ", ".join(t for t, _ in SUBSCRIPTIONS))
        if self._config.ingest.workers:
            # spawn, not fork: this process already runs threads (paho's, the forwarder's)
            self._pool = ProcessPoolExecutor(
                self._config.ingest.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=init_pool_worker, initargs=(dict(self._config.cart_keys), self._config.cart_keys_dir))
        self._worker.start()
        self._link.start()  # paho keeps retrying, so a gateway may start before its broker

    def stop(self) -> None:
        """Stop taking messages, commit and ack what was taken, then disconnect."""
        self._closing.set()
        self._worker.stop()  # drains the queue up to the sentinel (bounded join, logged if late)
        self._link.stop()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def operator_command(self, site: str, cart: str, name: str, args: Mapping[str, Any],
                         requested_by: str) -> int | None:
        """A command an operator asked for in the console: logged, signed, published (``Replies.command``);
        its counter, or None if it could not be sent."""
        return self._replies.operator_command(site, cart, name, args, requested_by)

    def stats(self) -> dict[str, int]:
        # ingest_errors: failed commits (retried) + passes that raised (logged by the worker's guard)
        return {**self._counters, "ingest_errors": self._counters["ingest_errors"] + self._worker.errors,
                "mqtt_connected": int(self._connected), "subscribed": int(self._subscribed)}

    # ---------------------------------------------------------------- paho callbacks: hand over only

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Any) -> None:
        if reason_code.is_failure:  # logged by the link, once per cause, with the identity it refused
            return
        self._generation += 1
        self._connected = True
        log.info("ingest: connected to %s (session present: %s)", self._config.broker, flags.session_present)
        client.subscribe(SUBSCRIPTIONS)
        self._on_change()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reason_codes: list[ReasonCode], properties: Any) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("ingest: subscription to %s refused: %s", SUBSCRIPTIONS, reason_codes)
            return
        self._subscribed = True
        self._on_change()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason_code: ReasonCode, properties: Any) -> None:
        was, self._connected, self._subscribed = self._connected, False, False
        if was and not self._closing.is_set():  # a failed attempt is the link's to report, once
            log.warning("ingest: disconnected from %s (%s); paho reconnects", self._config.broker, reason_code)
        self._on_change()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._closing.is_set():
            return  # not acked: the broker keeps it in our session for the next start
        try:
            name = msg.topic
        except UnicodeDecodeError:  # paho raises on a topic that is not UTF-8; it still gets quarantined
            name = repr(msg._topic)
        self._queue.put(_Message(self._generation, msg.mid, msg.qos, name, bytes(msg.payload), time.monotonic()))

    # ---------------------------------------------------------------- worker

    def _run_once(self) -> float:
        """One worker pass: a batch, or the open gaps after a quiet ``resend_interval_s``.  Once
        stopping, the pass drains the queue up to the sentinel: what paho handed over before
        ``stop()`` is committed and acked."""
        while True:
            batch, stop = self._take_batch()
            if batch:
                self._handle(batch)
            elif not stop:
                self._ask_open_gaps()  # quiet for resend_interval_s: re-ask gaps a quiet cart left
            if stop or not self._worker.stopping:
                return 0.0

    def _take_batch(self) -> tuple[list[_Message], bool]:
        """Wait for one message (at most resend_interval_s: then ([], False)), then take more until
        batch_max or linger_ms passed."""
        try:
            first = self._queue.get(timeout=self._config.ingest.resend_interval_s)
        except queue.Empty:
            return [], False
        if first is _STOP:
            return [], True
        assert isinstance(first, _Message)
        batch = [first]
        deadline = time.monotonic() + self._config.ingest.linger_ms / 1000
        while len(batch) < self._config.ingest.batch_max:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            assert isinstance(item, _Message)
            batch.append(item)
        return batch, False

    def _handle(self, batch: list[_Message]) -> None:
        items = self._check_records([m for m in batch if is_record_topic(m.topic)])
        devices: list[DeviceUpdate] = []
        for m in batch:
            if is_record_topic(m.topic):
                continue
            try:
                devices.append(check_device(m.topic, m.payload, self._keys))
            except IngestError as exc:  # not verified: changes nothing, quarantined (within budget)
                self._counters["device_errors"] += 1
                items.append(device_rejected(m.topic, m.payload, exc))
        result = self._commit(items, devices)
        if result is None:
            return  # stopping before the commit succeeded: nothing acked, the broker keeps them
        INGEST_LATENCY.observe_since((m.received for m in batch), time.monotonic())
        self._counters["ingest_batches"] += 1
        self._counters["device_updates"] += result.devices.count("applied")
        self._counters["device_ignored"] += len(result.devices) - result.devices.count("applied")
        for item, outcome in zip(items, result.outcomes, strict=True):
            if outcome.status == "rejected":
                self._log_quarantined(item.topic, outcome)
        for alert in result.alerts:
            log.warning("ALERT %s cart=%s subject=%s: %s", alert.kind, alert.cart, alert.subject, alert.detail)
        for m in batch:  # PUBACK only now that the batch is committed
            if m.qos > 0 and m.generation == self._generation:
                self._client.ack(m.mid, m.qos)
        self._replies.after_commit(items, result, devices)
        self._on_commit()

    def _log_quarantined(self, topic: str, outcome: Outcome) -> None:
        self._counters["quarantine_logged"] += 1
        n = self._counters["quarantine_logged"]
        if n <= QUARANTINE_LOG_FIRST or n % QUARANTINE_LOG_EVERY == 0:
            log.warning("ingest: quarantined a payload on %s (%s): %s [%d quarantined since start]",
                        topic[:200], outcome.kind, outcome.reason, n)

    def _check_records(self, records: list[_Message]) -> list[Incoming | Rejected]:
        """Check in this thread, or spread over the worker processes when the batch is worth it."""
        pairs = [(m.topic, m.payload) for m in records]
        if self._pool is None or len(pairs) < POOL_MIN_BATCH:
            return check_all(pairs, self._keys)
        return check_in_pool(self._pool, self._config.ingest.workers, pairs)

    # ---------------------------------------------------------------- commit, poison isolation

    def _commit(self, items: list[Incoming | Rejected], devices: list[DeviceUpdate]) -> BatchResult | None:
        """The batch in one transaction; if that fails, message by message (``_commit_one``)."""
        try:
            return self._store.store_batch(items, now=time.time(), devices=devices)
        except GatewayStoreError as exc:
            self._counters["ingest_errors"] += 1
            log.error("ingest: a batch of %d failed (%s); storing it message by message",
                      len(items) + len(devices), exc)
        merged = BatchResult([])
        for item in items:
            one = self._commit_one(item)
            if one is None:
                return None
            merged.outcomes += one.outcomes
            self._merge(merged, one)
        for update in devices:
            one = self._commit_one(update)
            if one is None:
                return None
            merged.devices.append(one.devices[0] if one.devices else "poison")
            self._merge(merged, one)
        return merged

    @staticmethod
    def _merge(into: BatchResult, one: BatchResult) -> None:
        into.alerts += one.alerts
        into.gaps = [g for g in into.gaps if all(g.cart != n.cart for n in one.gaps)] + one.gaps
        into.heads.update(one.heads)

    def _commit_one(self, item: Incoming | Rejected | DeviceUpdate) -> BatchResult | None:
        """One message in its own transaction.  If it fails, it is the poison: quarantined alone with
        the reason (its outcome "rejected"); if even that fails the store is failing, not the
        message: wait and retry until it works or we stop (None)."""
        while True:
            try:
                if isinstance(item, DeviceUpdate):
                    return self._store.store_batch([], now=time.time(), devices=[item])
                return self._store.store_batch([item], now=time.time())
            except GatewayStoreError as exc:
                reason = f"store: {exc}"
            try:
                poison = Rejected(item.topic, item.payload, reason[:500], "MALFORMED", item.site, item.cart)
                quarantined = self._store.store_batch([poison], now=time.time())
            except GatewayStoreError as exc:
                self._counters["ingest_errors"] += 1
                log.error("ingest: cannot commit, not even to quarantine (retrying in %s s): %s", STORE_RETRY_S, exc)
                if self._worker.sleep(STORE_RETRY_S):
                    return None
                continue
            self._counters["poison"] += 1
            log.error("ingest: a message on %s could not be stored and was quarantined alone: %s",
                      item.topic[:200], reason)
            outcome = Outcome("rejected", cart=item.cart, reason=reason, kind="MALFORMED")
            return BatchResult([] if isinstance(item, DeviceUpdate) else [outcome], alerts=quarantined.alerts)

    def _ask_open_gaps(self) -> None:
        for gap in self._store.open_gaps():
            self._replies.ask_resend(gap)
