"""The cart's uplink against a real broker: status, publishing, and synced only on the app ack.

The "gateway" here is the test: it signs acks and commands with a key of its own, which the cart
is given as its gateway key (``uplink.gateway_keys``)."""

from __future__ import annotations

import json
import queue
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.ledger.settings import UplinkSettings
from edge.ledger.store import Ledger
from edge.ledger.uplink import Uplink
from wastecart.broker import PrivateBroker

NOW = datetime(2026, 11, 28, tzinfo=UTC)
GATEWAY = Ed25519PrivateKey.generate()
GATEWAY_KEYS = (wire.public_key_text(GATEWAY.public_key()),)


def settings(**given: float) -> UplinkSettings:
    return UplinkSettings(gateway_keys=GATEWAY_KEYS, **given)


def ack(ledger: Ledger, upto: int, ids: list[str]) -> bytes:
    """A gateway ack, signed, bound to ``ledger`` by the hash of its record ``upto``."""
    upto_hash = ledger.hash_at(upto)
    assert upto_hash is not None
    return wire.sign_message(wire.ACK_KIND, "H1", ledger.cart, wire.ack_body(upto, upto_hash, ids), GATEWAY)


def command(cart: str, name: str, boot_id: str, counter: int, **args: int) -> bytes:
    return wire.sign_message(wire.CMD_KIND, "H1", cart, wire.command_body(name, boot_id, counter, args), GATEWAY)


@pytest.fixture
def cart_id() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}"


@pytest.fixture
def observer(broker: PrivateBroker, cart_id: str) -> Iterator[tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]]:
    """A plain client that sees everything the cart sends (records, status) and can send acks."""
    got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = queue.Queue[int]()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"obs-{cart_id}")
    c.on_message = lambda _c, _u, m: got.put(m)
    c.on_subscribe = lambda *_: subscribed.put(1)
    host, port, _ = wire.broker_address(broker.url)
    c.connect(host, port)
    c.subscribe(f"wc/v1/H1/{cart_id}/#", qos=1)
    c.loop_start()
    subscribed.get(timeout=10)
    yield c, got
    # No retained status left on the session's broker: a gateway of a later test would see a cart
    # it has no key for.
    c.publish(wire.topic("H1", cart_id, wire.STATUS), b"", qos=1, retain=True).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def next_on(got: queue.Queue[mqtt.MQTTMessage], leaf: str) -> mqtt.MQTTMessage:
    while True:
        m = got.get(timeout=10)
        if m.topic.endswith("/" + leaf):
            return m


def test_synced_only_on_the_gateways_ack(
        tmp_path: Path, broker: PrivateBroker, cart_id: str,
        observer: tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]) -> None:
    client, got = observer
    ledger = Ledger(tmp_path, cart_id, Ed25519PrivateKey.generate())
    uplink = Uplink(ledger, site="H1", broker=broker.url, settings=settings(resend_after_s=60))
    uplink.start()
    try:
        birth = json.loads(next_on(got, "status").payload)["body"]
        assert birth["state"] == "online"
        assert birth["seq_head"] == 0
        ids = [ledger.commit("handover", {"n": i}, now=NOW, clock=wire.Clock("unsynced", 0)).id for i in range(3)]
        uplink.wake()
        seen = [json.loads(next_on(got, "record").payload) for _ in range(3)]
        assert [e["seq"] for e in seen] == [1, 2, 3]
        # Every record was PUBACKed by the broker by now; without the gateway's ack none is synced.
        assert not uplink.wait_synced(0.5)
        assert ledger.backlog()[0] == 3
        client.publish(wire.topic("H1", cart_id, wire.ACK), ack(ledger, 1, [ids[2]]), qos=1)
        assert uplink.wait_synced(10, backlog=1)
        assert [o.seq for o in ledger.unsynced()] == [2]
        client.publish(wire.topic("H1", cart_id, wire.ACK), b"not an ack", qos=1)  # ignored, logged
        client.publish(wire.topic("H1", cart_id, wire.ACK), ack(ledger, 2, []), qos=1)
        assert uplink.wait_synced(10)
    finally:
        uplink.stop()
        ledger.close()
    assert json.loads(next_on(got, "status").payload)["body"]["state"] == "offline"


def test_unacked_records_are_sent_again_after_a_reconnect(
        tmp_path: Path, broker: PrivateBroker, cart_id: str,
        observer: tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]) -> None:
    _client, got = observer
    ledger = Ledger(tmp_path, cart_id, Ed25519PrivateKey.generate())
    ledger.commit("handover", {}, now=NOW, clock=wire.Clock("unsynced", 0))
    for _attempt in range(2):  # a cart agent restart: same ledger, new uplink
        uplink = Uplink(ledger, site="H1", broker=broker.url, settings=settings())
        uplink.start()
        try:
            assert json.loads(next_on(got, "record").payload)["seq"] == 1
        finally:
            uplink.stop()
    ledger.close()


def test_resend_command_and_time_offer(
        tmp_path: Path, broker: PrivateBroker, cart_id: str,
        observer: tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]) -> None:
    client, got = observer
    ledger = Ledger(tmp_path, cart_id, Ed25519PrivateKey.generate())
    for i in range(3):
        ledger.commit("handover", {"n": i}, now=NOW, clock=wire.Clock("unsynced", 0))
    offered: queue.Queue[int] = queue.Queue()
    uplink = Uplink(ledger, site="H1", broker=broker.url, settings=settings(resend_after_s=60),
                    on_time=offered.put)
    uplink.start()
    try:
        boot_id = json.loads(next_on(got, "status").payload)["body"]["boot_id"]
        assert [json.loads(next_on(got, "record").payload)["seq"] for _ in range(3)] == [1, 2, 3]
        client.publish(wire.cmd_topic("H1", cart_id, wire.CMD_RESEND),
                       command(cart_id, wire.CMD_RESEND, boot_id, 1, from_seq=2), qos=1)
        assert [json.loads(next_on(got, "record").payload)["seq"] for _ in range(2)] == [2, 3]
        client.publish(wire.cmd_topic("H1", cart_id, wire.CMD_TIME),
                       command(cart_id, wire.CMD_TIME, boot_id, 2, utc_ms=1_800_000_000_000), qos=1)
        assert offered.get(timeout=10) == 1_800_000_000_000
        client.publish(wire.cmd_topic("H1", cart_id, "reboot"), b"{}", qos=1)  # unknown: refused, logged
        client.publish(wire.cmd_topic("H1", cart_id, wire.CMD_RESEND), b"junk", qos=1)
        client.publish(wire.topic("H1", cart_id, wire.ACK), ack(ledger, 3, []), qos=1)
        assert uplink.wait_synced(10)  # still draining normally after the bad commands
    finally:
        uplink.stop()
        ledger.close()


def test_paced_drain_spreads_a_backlog(
        tmp_path: Path, broker: PrivateBroker, cart_id: str,
        observer: tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]) -> None:
    _client, got = observer
    ledger = Ledger(tmp_path, cart_id, Ed25519PrivateKey.generate())
    for i in range(60):
        ledger.commit("handover", {"n": i}, now=NOW, clock=wire.Clock("unsynced", 0))
    uplink = Uplink(ledger, site="H1", broker=broker.url, settings=settings(drain_rate=100.0))
    uplink.start()
    try:
        arrivals: list[float] = []
        while len(arrivals) < 60:
            next_on(got, "record")
            arrivals.append(time.monotonic())
        # 60 records at 100/s take about 0.6 s; unpaced they arrive within a few ms
        assert arrivals[-1] - arrivals[0] >= 0.35
    finally:
        uplink.stop()
        ledger.close()
