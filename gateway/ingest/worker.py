"""The ingest worker: broker -> checks -> one SQLite commit per batch -> acks.

paho's network thread only hands ``(connection, mid, topic, payload)`` to a queue (manual acks, so
the broker keeps a message until we PUBACK it).  One worker (``edge.worker.Worker``) takes
batches, checks each message (``gateway.ingest.checks``: topic, schema, cart, seal), stores the
batch in one transaction (chain checks, quarantine and alerts included:
``IngestRepository.store_batch``), and only then sends the PUBACKs, one application ack per cart
``{upto_seq, ids}`` on ``…/ack`` (DESIGN §3), a ``resend`` for a cart whose seqs have a gap (paced
per cart: ``ResendPacer``) and a ``time`` offer to a cart whose birth (``…/status`` online)
arrived.  Telemetry and status go to the ``devices`` table; a malformed one is logged and dropped
(it is not evidence: nothing is signed).  The paho client is the shared ``edge.mqtt.Link``.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge import wire
from edge.mqtt import Link
from edge.worker import Worker
from gateway.config import GatewayConfig
from gateway.errors import GatewayStoreError, IngestError
from gateway.ingest.checks import (
    KeyRing,
    check_all,
    check_device,
    check_in_pool,
    init_pool_worker,
    is_record_topic,
)
from gateway.store import BatchResult, DeviceUpdate, Gap, Incoming, IngestRepository, Rejected

log = logging.getLogger(__name__)

# Wait before retrying a batch whose commit failed (s): long enough not to spin on a full disk.
STORE_RETRY_S = 1.0
# Below this many records a batch is checked in the ingest thread: shipping it to the worker
# processes costs more than it saves.
POOL_MIN_BATCH = 32
# How long stop() waits for the worker to drain what it already took (s).
STOP_TIMEOUT_S = 10.0
# Device topics the gateway follows besides records (status: retained births / wills).
STATUS_SUBSCRIPTION = f"{wire.TOPIC_ROOT}/+/+/{wire.STATUS}"
TELEMETRY_SUBSCRIPTION = f"{wire.TOPIC_ROOT}/+/+/{wire.TELEMETRY}"
SUBSCRIPTIONS = [(wire.RECORD_SUBSCRIPTION, wire.QOS[wire.RECORD]), (STATUS_SUBSCRIPTION, wire.QOS[wire.STATUS]),
                 (TELEMETRY_SUBSCRIPTION, wire.QOS[wire.TELEMETRY])]


@dataclass(frozen=True)
class _Message:
    generation: int  # which connection delivered it: a mid is only valid on that connection
    mid: int
    qos: int  # a QoS 0 message (a misbehaving publisher) has no PUBACK to send
    topic: str
    payload: bytes


_STOP = object()  # queue sentinel: the worker finishes what is ahead of it, then exits


class ResendPacer:
    """At most one resend request per cart every ``interval_s``: the cart restarts its drain from
    the asked seq, so asking again while it is still re-sending would only multiply duplicates."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}

    def allow(self, cart: str) -> bool:
        """True (and remember it) if ``cart`` may be asked now."""
        now = self._clock()
        last = self._last.get(cart)
        if last is not None and now - last < self._interval:
            return False
        self._last[cart] = now
        return True


class Ingest:
    """Owns the MQTT link and the ingest worker."""

    def __init__(self, config: GatewayConfig, store: IngestRepository, keys: KeyRing,
                 on_commit: Callable[[], None], on_change: Callable[[], None]) -> None:
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
        self._counters = {"ingest_batches": 0, "ingest_errors": 0, "acks_published": 0, "ack_failures": 0,
                          "resends_sent": 0, "time_offers": 0, "device_updates": 0, "device_errors": 0,
                          "cmd_failures": 0}
        self._pacer = ResendPacer(config.ingest.resend_interval_s)
        self._pool: ProcessPoolExecutor | None = None
        # retry_s=0: a batch that raised is already off the queue (unacked: the broker keeps it),
        # so the next one is taken at once; stopping puts the sentinel that ends the drain.
        self._worker = Worker("gw-ingest", self._run_once, join_s=STOP_TIMEOUT_S, retry_s=0.0,
                              on_stop=lambda: self._queue.put(_STOP))
        self._link = Link(config.broker, config.client_id, manual_ack=True)
        self._client = self._link.client
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

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

    def stats(self) -> dict[str, int]:
        # ingest_errors: failed commits (retried) + passes that raised (logged by the worker's guard)
        return {**self._counters, "ingest_errors": self._counters["ingest_errors"] + self._worker.errors,
                "mqtt_connected": int(self._connected), "subscribed": int(self._subscribed)}

    # ---------------------------------------------------------------- paho callbacks: hand over only

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("ingest: broker %s refused the connection: %s", self._config.broker, reason_code)
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
        self._connected = self._subscribed = False
        if not self._closing.is_set():
            log.warning("ingest: disconnected from %s (%s); paho reconnects", self._config.broker, reason_code)
        self._on_change()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._closing.is_set():
            return  # not acked: the broker keeps it in our session for the next start
        try:
            name = msg.topic
        except UnicodeDecodeError:  # paho raises on a topic that is not UTF-8; it still gets quarantined
            name = repr(msg._topic)
        self._queue.put(_Message(self._generation, msg.mid, msg.qos, name, bytes(msg.payload)))

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
        devices: list[DeviceUpdate] = []
        items = self._check_records([m for m in batch if is_record_topic(m.topic)])
        for m in batch:
            if is_record_topic(m.topic):
                continue
            try:
                devices.append(check_device(m.topic, m.payload))
            except IngestError as exc:
                self._counters["device_errors"] += 1
                log.warning("ingest: ignored a device message on %s: %s", m.topic, exc)
        result = self._commit(items, devices)
        if result is None:
            return  # stopping before the commit succeeded: nothing acked, the broker keeps them
        self._counters["ingest_batches"] += 1
        self._counters["device_updates"] += len(devices)
        for item, outcome in zip(items, result.outcomes, strict=True):
            if outcome.status == "rejected":
                log.warning("ingest: quarantined a payload on %s (%s): %s", item.topic, outcome.kind, outcome.reason)
        for alert in result.alerts:
            log.warning("ALERT %s cart=%s subject=%s: %s", alert.kind, alert.cart, alert.subject, alert.detail)
        for m in batch:  # PUBACK only now that the batch is committed
            if m.qos > 0 and m.generation == self._generation:
                self._client.ack(m.mid, m.qos)
        self._after_commit(items, result)
        self._offer_time(devices)
        self._on_commit()

    def _check_records(self, records: list[_Message]) -> list[Incoming | Rejected]:
        """Check in this thread, or spread over the worker processes when the batch is worth it."""
        pairs = [(m.topic, m.payload) for m in records]
        if self._pool is None or len(pairs) < POOL_MIN_BATCH:
            return check_all(pairs, self._keys)
        return check_in_pool(self._pool, self._config.ingest.workers, pairs)

    def _commit(self, items: list[Incoming | Rejected], devices: list[DeviceUpdate]) -> BatchResult | None:
        """Retry a failed commit until it works or we stop (nothing is acked before it works)."""
        while True:
            try:
                return self._store.store_batch(items, now=time.time(), devices=devices)
            except GatewayStoreError as exc:
                self._counters["ingest_errors"] += 1
                log.error("ingest: cannot commit a batch of %d (retrying in %s s): %s",
                          len(items), STORE_RETRY_S, exc)
            if self._worker.sleep(STORE_RETRY_S):
                return None

    def _after_commit(self, items: list[Incoming | Rejected], result: BatchResult) -> None:
        """Application acks per cart, then a resend request for each cart with a gap."""
        acked: dict[tuple[str, str], list[str]] = {}
        for item, outcome in zip(items, result.outcomes, strict=True):
            if isinstance(item, Incoming) and outcome.id is not None:
                acked.setdefault((item.site, item.cart), []).append(outcome.id)
        for (site, cart), ids in acked.items():
            upto = self._store.upto_seq(cart)
            info = self._client.publish(wire.topic(site, cart, wire.ACK), wire.ack_payload(upto, ids),
                                        qos=wire.QOS[wire.ACK])
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                self._counters["acks_published"] += 1
            else:  # the cart re-publishes unacked records; they come back as duplicates and get acked
                self._counters["ack_failures"] += 1
                log.warning("ingest: ack to %s/%s not sent (%s)", site, cart, mqtt.error_string(info.rc))
        for gap in result.gaps:
            self._ask_resend(gap)

    def _ask_open_gaps(self) -> None:
        for gap in self._store.open_gaps():
            self._ask_resend(gap)

    def _ask_resend(self, gap: Gap) -> None:
        if not self._pacer.allow(gap.cart):
            return
        log.info("ingest: cart %s has seqs up to %d of %d: asking to re-send from %d",
                 gap.cart, gap.upto_seq, gap.max_seq, gap.from_seq)
        if self._command(gap.site, gap.cart, wire.CMD_RESEND, wire.resend_payload(gap.from_seq)):
            self._counters["resends_sent"] += 1

    def _offer_time(self, devices: list[DeviceUpdate]) -> None:
        """A cart that came online may have booted without NTP or RTC: give it our clock."""
        for d in devices:
            if d.leaf != "status" or d.data.get("state") != "online":
                continue
            if self._command(d.site, d.cart, wire.CMD_TIME, wire.time_payload(time.time_ns() // 1_000_000)):
                self._counters["time_offers"] += 1

    def _command(self, site: str, cart: str, name: str, payload: bytes) -> bool:
        info = self._client.publish(wire.cmd_topic(site, cart, name), payload, qos=wire.QOS[wire.CMD])
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._counters["cmd_failures"] += 1
            log.warning("ingest: %s command to %s/%s not sent (%s)", name, site, cart, mqtt.error_string(info.rc))
            return False
        return True
