"""The cart's uplink against a real broker: status, publishing, and synced only on the app ack."""

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
    uplink = Uplink(ledger, site="H1", broker=broker.url, settings=UplinkSettings(resend_after_s=60))
    uplink.start()
    try:
        birth = json.loads(next_on(got, "status").payload)
        assert birth["state"] == "online"
        assert birth["seq_head"] == 0
        ids = [ledger.commit("handover", {"n": i}, now=NOW, clock=wire.Clock("unsynced", 0)).id for i in range(3)]
        uplink.wake()
        seen = [json.loads(next_on(got, "record").payload) for _ in range(3)]
        assert [e["seq"] for e in seen] == [1, 2, 3]
        # Every record was PUBACKed by the broker by now; without the gateway's ack none is synced.
        assert not uplink.wait_synced(0.5)
        assert ledger.backlog()[0] == 3
        client.publish(wire.topic("H1", cart_id, wire.ACK), wire.ack_payload(1, [ids[2]]), qos=1)
        assert uplink.wait_synced(10, backlog=1)
        assert [o.seq for o in ledger.unsynced()] == [2]
        client.publish(wire.topic("H1", cart_id, wire.ACK), b"not an ack", qos=1)  # ignored, logged
        client.publish(wire.topic("H1", cart_id, wire.ACK), wire.ack_payload(2, []), qos=1)
        assert uplink.wait_synced(10)
    finally:
        uplink.stop()
        ledger.close()
    assert json.loads(next_on(got, "status").payload)["state"] == "offline"


def test_unacked_records_are_sent_again_after_a_reconnect(
        tmp_path: Path, broker: PrivateBroker, cart_id: str,
        observer: tuple[mqtt.Client, queue.Queue[mqtt.MQTTMessage]]) -> None:
    _client, got = observer
    ledger = Ledger(tmp_path, cart_id, Ed25519PrivateKey.generate())
    ledger.commit("handover", {}, now=NOW, clock=wire.Clock("unsynced", 0))
    for _attempt in range(2):  # a cart agent restart: same ledger, new uplink
        uplink = Uplink(ledger, site="H1", broker=broker.url)
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
    uplink = Uplink(ledger, site="H1", broker=broker.url, settings=UplinkSettings(resend_after_s=60),
                    on_time=offered.put)
    uplink.start()
    try:
        assert [json.loads(next_on(got, "record").payload)["seq"] for _ in range(3)] == [1, 2, 3]
        client.publish(wire.cmd_topic("H1", cart_id, wire.CMD_RESEND), wire.resend_payload(2), qos=1)
        assert [json.loads(next_on(got, "record").payload)["seq"] for _ in range(2)] == [2, 3]
        client.publish(wire.cmd_topic("H1", cart_id, wire.CMD_TIME), wire.time_payload(1_800_000_000_000), qos=1)
        assert offered.get(timeout=10) == 1_800_000_000_000
        client.publish(wire.cmd_topic("H1", cart_id, "reboot"), b"{}", qos=1)  # unknown: ignored, logged
        client.publish(wire.cmd_topic("H1", cart_id, wire.CMD_RESEND), b"junk", qos=1)
        client.publish(wire.topic("H1", cart_id, wire.ACK), wire.ack_payload(3, []), qos=1)
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
    uplink = Uplink(ledger, site="H1", broker=broker.url, settings=UplinkSettings(drain_rate=100.0))
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
