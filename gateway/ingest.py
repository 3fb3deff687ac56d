"""Ingest: records from the broker -> checks -> one SQLite commit per batch -> acks.

paho's network thread only hands ``(connection, mid, topic, payload)`` to a queue (manual acks, so
the broker keeps a message until we PUBACK it).  One worker thread takes batches, checks each
message (topic, schema, cart, seal), stores the batch in one transaction, and only then sends the
PUBACKs and one application ack per cart ``{upto_seq, ids}`` on ``…/ack`` (DESIGN §3).

Seam for later issues: ``Ingest._after_commit`` is where seq-gap detection (``resend``), chain
continuity and alerts hook in; they need only the outcomes and ``store.upto_seq``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
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
from gateway.store import GatewayStore, Incoming, Outcome, Rejected

log = logging.getLogger(__name__)

# MQTT keep-alive (s): how soon a dead TCP connection is noticed on a quiet link.
KEEPALIVE_S = 30
# Reconnect back-off bounds (s) for paho's own reconnect loop.
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
# Wait before retrying a batch whose commit failed (s): long enough not to spin on a full disk.
STORE_RETRY_S = 1.0
# How long stop() waits for the worker to drain what it already took (s).
STOP_TIMEOUT_S = 10.0


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
            raise IngestError("unknown cart, no public key configured")
        try:
            key = wire.load_public_key(path.read_text("ascii").strip())
        except (OSError, UnicodeDecodeError, wire.ContractError) as exc:
            raise IngestError(f"public key file {path}: unusable ({exc})") from exc
        self._keys[cart] = key
        return key


def check_message(topic: str, payload: bytes, keys: KeyRing) -> Incoming:
    """Pure checks of one received message; IngestError's text is the quarantine reason."""
    try:
        site, cart, leaf = wire.parse_topic(topic)
        wire.check_id(site, "site")
        wire.check_id(cart, "cart")
    except wire.ContractError as exc:
        raise IngestError(f"topic: {exc}") from exc
    if leaf != wire.RECORD:
        raise IngestError(f"topic: {topic!r} is not a record topic")
    try:
        env = wire.decode_record(payload)
    except (wire.ContractError, RecursionError) as exc:
        raise IngestError(f"schema: {exc}") from exc
    if env["cart"] != cart:
        raise IngestError(f"cart: envelope says {env['cart']!r} but the topic says {cart!r}")
    key = keys.get(cart)
    try:
        wire.verify_seal(env, key)
    except wire.ContractError as exc:
        raise IngestError(f"seal: {exc}") from exc
    return Incoming(id=env["id"], site=site, cart=cart, seq=env["seq"], type=env["type"],
                    created_at=env["created_at"], hash=env["hash"],
                    envelope=wire.encode(env).decode("utf-8"), topic=topic, payload=payload)


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
        self._counters = {"ingest_batches": 0, "ingest_errors": 0, "acks_published": 0, "ack_failures": 0}
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
                 self._config.client_id, wire.RECORD_SUBSCRIPTION)
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
        client.subscribe(wire.RECORD_SUBSCRIPTION, qos=wire.QOS[wire.RECORD])
        self._on_change()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reason_codes: list[ReasonCode], properties: Any) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("ingest: subscription to %s refused: %s", wire.RECORD_SUBSCRIPTION, reason_codes)
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
            if batch:
                try:
                    self._handle(batch)
                except Exception:  # the one guard of this loop: log, count, carry on
                    self._counters["ingest_errors"] += 1
                    log.exception("ingest: batch of %d failed; the broker redelivers it after a reconnect",
                                  len(batch))
            if stop:
                return

    def _take_batch(self) -> tuple[list[_Message], bool]:
        """Block for one message, then take more until batch_max or linger_ms passed."""
        first = self._queue.get()
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
        items: list[Incoming | Rejected] = []
        for m in batch:
            try:
                items.append(check_message(m.topic, m.payload, self._keys))
            except IngestError as exc:
                items.append(Rejected(m.topic, m.payload, str(exc)))
        outcomes = self._commit(items)
        if outcomes is None:
            return  # stopping before the commit succeeded: nothing acked, the broker keeps them
        self._counters["ingest_batches"] += 1
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome.status == "rejected":
                log.warning("ingest: quarantined a payload on %s: %s", item.topic, outcome.reason)
        for m in batch:  # PUBACK only now that the batch is committed
            if m.qos > 0 and m.generation == self._generation:
                self._client.ack(m.mid, m.qos)
        self._after_commit(items, outcomes)
        self._on_commit()

    def _commit(self, items: list[Incoming | Rejected]) -> list[Outcome] | None:
        """Retry a failed commit until it works or we stop (nothing is acked before it works)."""
        while True:
            try:
                return self._store.store_batch(items, now=time.time())
            except GatewayStoreError as exc:
                self._counters["ingest_errors"] += 1
                log.error("ingest: cannot commit a batch of %d (retrying in %s s): %s",
                          len(items), STORE_RETRY_S, exc)
            if self._closing.wait(STORE_RETRY_S):
                return None

    def _after_commit(self, items: list[Incoming | Rejected], outcomes: list[Outcome]) -> None:
        """Application acks per cart; later: seq-gap resend, chain checks, alerts."""
        acked: dict[tuple[str, str], list[str]] = {}
        for item, outcome in zip(items, outcomes, strict=True):
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
