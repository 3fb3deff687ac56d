"""Ingest: records and device status from the broker -> checks -> one SQLite commit per batch -> acks.

paho's network thread only hands ``(connection, mid, topic, payload)`` to a queue (manual acks, so
the broker keeps a message until we PUBACK it).  One worker thread takes batches, checks each
message (topic, schema, cart, seal), stores the batch in one transaction (chain checks, quarantine
and alerts included: ``GatewayStore.store_batch``), and only then sends the PUBACKs, one
application ack per cart ``{upto_seq, ids}`` on ``…/ack`` (DESIGN §3), a ``resend`` for a cart
whose seqs have a gap (paced per cart: ``ResendPacer``) and a ``time`` offer to a cart whose
birth (``…/status`` online) arrived.  Telemetry and status go to the ``devices`` table; a
malformed one is logged and dropped (it is not evidence: nothing is signed).

Alert kinds of rejected records (``wire.ALERT_KINDS``): bad signature FORGED, hash mismatch
ALTERED, no key UNKNOWN_CART, anything else unreadable MALFORMED; REPLAYED and CHAIN_BREAK are
decided by the store against what it holds.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge import wire
from gateway.config import GatewayConfig
from gateway.errors import GatewayStoreError, IngestError
from gateway.store import BatchResult, DeviceUpdate, Gap, GatewayStore, Incoming, Rejected

log = logging.getLogger(__name__)

# MQTT keep-alive (s): how soon a dead TCP connection is noticed on a quiet link.
KEEPALIVE_S = 30
# Reconnect back-off bounds (s) for paho's own reconnect loop.
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
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
# Largest status / telemetry payload looked at (bytes): they are a few hundred bytes.
DEVICE_PAYLOAD_MAX = 64_000


@dataclass(frozen=True)
class _Message:
    generation: int  # which connection delivered it: a mid is only valid on that connection
    mid: int
    qos: int  # a QoS 0 message (a misbehaving publisher) has no PUBACK to send
    topic: str
    payload: bytes


_STOP = object()  # queue sentinel: the worker finishes what is ahead of it, then exits


class KeyRing:
    """Cart public keys: from the config, else ``<cart_keys_dir>/<CART>.pub`` read on first use."""

    def __init__(self, keys: dict[str, str], keys_dir: Path | None) -> None:
        self._keys = {cart: wire.load_public_key(text) for cart, text in keys.items()}
        self._dir = keys_dir

    def get(self, cart: str) -> Ed25519PublicKey:
        """The cart's key; IngestError if none is configured (cart ids are checked before)."""
        key = self._keys.get(cart)
        if key is not None:
            return key
        path = self._dir / f"{cart}.pub" if self._dir else None
        if path is None or not path.is_file():
            raise IngestError("unknown cart, no public key configured", kind="UNKNOWN_CART")
        try:
            key = wire.load_public_key(path.read_text("ascii").strip())
        except (OSError, UnicodeDecodeError, wire.ContractError) as exc:
            raise IngestError(f"public key file {path}: unusable ({exc})", kind="UNKNOWN_CART") from exc
        self._keys[cart] = key
        return key


def check_message(topic: str, payload: bytes, keys: KeyRing) -> Incoming:
    """Pure checks of one received message; IngestError's text is the quarantine reason, its
    ``kind`` the alert."""
    site, cart, leaf = _topic_ids(topic)
    if leaf != wire.RECORD:
        raise IngestError(f"topic: {topic!r} is not a record topic")
    try:
        env = wire.decode_record(payload)
    except (wire.ContractError, RecursionError) as exc:
        raise IngestError(f"schema: {exc}") from exc
    if env["cart"] != cart:
        raise IngestError(f"cart: envelope says {env['cart']!r} but the topic says {cart!r}", subject=env["id"])
    try:
        key = keys.get(cart)
    except IngestError as exc:
        exc.subject = env["id"]
        raise
    try:
        wire.verify_seal(env, key)
    except wire.ContractError as exc:
        # Only on failure: was the content changed under its hash, or is the signature not the cart's?
        kind = "ALTERED" if env["hash"] != wire.record_hash(env) else "FORGED"
        raise IngestError(f"seal: {exc}", kind=kind, subject=env["id"]) from exc
    return Incoming(id=env["id"], site=site, cart=cart, seq=env["seq"], type=env["type"],
                    created_at=env["created_at"], hash=env["hash"],
                    # as received (valid UTF-8 JSON by now): re-encoding it cost ~50 us a record
                    envelope=payload.decode("utf-8"), topic=topic, payload=payload,
                    prev_hash=env["prev_hash"])


def checked(topic: str, payload: bytes, keys: KeyRing) -> Incoming | Rejected:
    """``check_message`` with a refusal turned into the quarantine item it becomes."""
    try:
        return check_message(topic, payload, keys)
    except IngestError as exc:
        site: str | None
        cart: str | None
        try:
            site, cart, _ = _topic_ids(topic)
        except IngestError:
            site = cart = None
        return Rejected(topic, payload, str(exc), exc.kind, site, cart, exc.subject)


def check_all(pairs: list[tuple[str, bytes]], keys: KeyRing) -> list[Incoming | Rejected]:
    return [checked(topic, payload, keys) for topic, payload in pairs]


# Verification workers.  Ed25519 and the schema are CPU-bound and ``cryptography`` holds the GIL,
# so more cores need processes.  Each worker builds its own KeyRing from the config.
_worker_keys: KeyRing | None = None


def _init_worker(keys: dict[str, str], keys_dir: Path | None) -> None:
    global _worker_keys
    _worker_keys = KeyRing(keys, keys_dir)


def _check_in_worker(pairs: list[tuple[str, bytes]]) -> list[Incoming | Rejected]:
    assert _worker_keys is not None, "worker not initialised"
    return check_all(pairs, _worker_keys)


def check_in_pool(pool: ProcessPoolExecutor, n: int, pairs: list[tuple[str, bytes]]) -> list[Incoming | Rejected]:
    """``check_all`` spread over ``n`` worker processes; results in the order of ``pairs``."""
    chunks = [pairs[i::n] for i in range(n)]  # interleaved: equal sizes
    results = list(pool.map(_check_in_worker, chunks))
    return [results[i % n][i // n] for i in range(len(pairs))]


def _topic_ids(topic: str) -> tuple[str, str, str]:
    """(site, cart, leaf) of a topic under wc/v1 with valid ids; IngestError (MALFORMED) otherwise."""
    try:
        site, cart, leaf = wire.parse_topic(topic)
        wire.check_id(site, "site")
        wire.check_id(cart, "cart")
    except wire.ContractError as exc:
        raise IngestError(f"topic: {exc}") from exc
    return site, cart, leaf


def check_device(topic: str, payload: bytes) -> DeviceUpdate:
    """A status or telemetry message as a DeviceUpdate; IngestError if it is not one (ignored)."""
    site, cart, leaf = _topic_ids(topic)
    if leaf not in (wire.STATUS, wire.TELEMETRY):
        raise IngestError(f"topic: {topic!r} is not a status or telemetry topic")
    if len(payload) > DEVICE_PAYLOAD_MAX:
        raise IngestError(f"{leaf}: {len(payload)} bytes, more than {DEVICE_PAYLOAD_MAX}")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IngestError(f"{leaf}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise IngestError(f"{leaf}: not a JSON object")
    if leaf == wire.STATUS and data.get("state") not in ("online", "offline"):
        raise IngestError(f"status: state {data.get('state')!r} is not 'online' or 'offline'")
    return DeviceUpdate(site, cart, "status" if leaf == wire.STATUS else "telemetry", data)


def is_record_topic(topic: str) -> bool:
    return topic.rsplit("/", 1)[-1] == wire.RECORD


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
    """Owns the MQTT client and the ingest worker thread."""

    def __init__(self, config: GatewayConfig, store: GatewayStore, keys: KeyRing,
                 on_commit: Callable[[], None], on_change: Callable[[], None]) -> None:
        self._config = config
        self._store = store
        self._keys = keys
        self._on_commit = on_commit  # wakes the forwarder and waiters
        self._on_change = on_change  # connection state changed: wakes waiters
        self._queue: queue.Queue[_Message | object] = queue.Queue()  # bounded by the broker's in-flight window
        self._closing = threading.Event()
        self._generation = 0
        self._connected = False
        self._subscribed = False
        self._counters = {"ingest_batches": 0, "ingest_errors": 0, "acks_published": 0, "ack_failures": 0,
                          "resends_sent": 0, "time_offers": 0, "device_updates": 0, "device_errors": 0,
                          "cmd_failures": 0}
        self._pacer = ResendPacer(config.ingest.resend_interval_s)
        self._pool: ProcessPoolExecutor | None = None
        self._worker = threading.Thread(target=self._run, name="gw-ingest", daemon=True)
        self._client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                   client_id=config.client_id, clean_session=False, manual_ack=True)
        self._client.on_socket_open = wire.tcp_nodelay
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)

    # ---------------------------------------------------------------- life cycle

    def start(self) -> None:
        host, port, tls = wire.broker_address(self._config.broker)
        if tls:
            self._client.tls_set()
        log.info("ingest: connecting to %s as %r, subscribing %s", self._config.broker,
                 self._config.client_id, ", ".join(t for t, _ in SUBSCRIPTIONS))
        if self._config.ingest.workers:
            # spawn, not fork: this process already runs threads (paho's, the forwarder's)
            self._pool = ProcessPoolExecutor(
                self._config.ingest.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(dict(self._config.cart_keys), self._config.cart_keys_dir))
        self._worker.start()
        # connect_async + loop_start: paho keeps retrying, so a gateway may start before its broker.
        self._client.connect_async(host, port, keepalive=KEEPALIVE_S)
        self._client.loop_start()

    def stop(self) -> None:
        """Stop taking messages, commit and ack what was taken, then disconnect."""
        self._closing.set()
        self._queue.put(_STOP)
        if self._worker.is_alive():
            self._worker.join(STOP_TIMEOUT_S)
            if self._worker.is_alive():
                log.error("ingest: worker did not finish within %s s", STOP_TIMEOUT_S)
        self._client.disconnect()
        self._client.loop_stop()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def stats(self) -> dict[str, int]:
        return {**self._counters, "mqtt_connected": int(self._connected), "subscribed": int(self._subscribed)}

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

    def _run(self) -> None:
        while True:
            batch, stop = self._take_batch()
            try:
                if batch:
                    self._handle(batch)
                elif not stop:
                    self._ask_open_gaps()  # quiet for resend_interval_s: re-ask gaps a quiet cart left
            except Exception:  # the one guard of this loop: log, count, carry on
                self._counters["ingest_errors"] += 1
                log.exception("ingest: batch of %d failed; the broker redelivers it after a reconnect",
                              len(batch))
            if stop:
                return

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
            if self._closing.wait(STORE_RETRY_S):
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
