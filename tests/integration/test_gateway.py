"""GatewayApp against a real mosquitto and a real HTTP SimPlatform, with carts that really sign.

Each test uses its own gateway client id, cart ids and SQLite folder: the session broker is shared.
Waiting is on the app's Condition (``wait_until``) and on queues, never on sleeps.
"""

from __future__ import annotations

import json
import queue
import signal
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from gateway.app import GatewayApp
from gateway.config import ForwardConfig, GatewayConfig, IngestConfig
from sim_devices.platform import SimPlatform
from tests.procs import running
from wastecart.broker import PrivateBroker

SITE = "H001"
WAIT_S = 30.0  # generous upper bound for any one wait; the happy path takes milliseconds


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def handover_body(cart: str, seq: int) -> dict[str, Any]:
    weighing = {"gross_g": 1250 + seq, "tare_g": 50, "net_g": 1200 + seq, "stable": True,
                "protocol": "sim", "raw": "ST,GS,+001.250kg"}
    return {
        "org": SITE, "round_id": wire.uuid7(), "handover_at": now_iso(), "department": "ICU",
        "from_party": {"person_id": "N0001", "auth_method": "card"},
        "to_party": {"person_id": "C0001", "device_id": cart},
        "lines": [{"package_code": f"BAG{seq:05d}", "category": "INFECTIOUS", "waste_code": "841-001-01",
                   "weight_g": 1200 + seq, "weighing": weighing}],
        "totals": [{"category": "INFECTIOUS", "count": 1, "weight_g": 1200 + seq}],
    }


@dataclass
class Cart:
    """A cart that signs records like the real one (wire.unsigned_envelope + wire.seal)."""

    cart: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    prev_hash: str = wire.GENESIS_HASH

    @property
    def public_key(self) -> str:
        return wire.public_key_text(self.key.public_key())

    def record(self, seq: int) -> dict[str, Any]:
        env = wire.seal(wire.unsigned_envelope(
            record_id=wire.uuid7(), cart=self.cart, seq=seq, created_at=now_iso(),
            clock=wire.Clock("ntp", seq * 1000), rtype="handover", body=handover_body(self.cart, seq),
            prev_hash=self.prev_hash), self.key)
        self.prev_hash = env["hash"]
        return env


class Publisher:
    """A test MQTT client: publishes QoS 1 and collects the gateway's acks (and rejects) in queues,
    each opened with the gateway's public key (``wire.open_message``): an unsigned one fails the test."""

    def __init__(self, broker: PrivateBroker, carts: list[str], gateway_key: str) -> None:
        host, port, _ = wire.broker_address(broker.url)
        self.gateway_key = wire.load_public_key(gateway_key)
        self.acks: queue.Queue[tuple[str, int, list[str]]] = queue.Queue()
        self.ack_bodies: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.rejects: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"test-pub-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda client, *_: client.subscribe(
            [(wire.topic(SITE, c, wire.ACK), 1) for c in carts])
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.reconnect_delay_set(1, 2)
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.subscribed.wait(WAIT_S)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        site, cart, _ = wire.parse_topic(msg.topic)
        kind, body = wire.open_message(msg.payload, kinds=[wire.ACK_KIND, wire.REJECT_KIND], site=site, cart=cart,
                                       keys=[self.gateway_key])
        if kind == wire.REJECT_KIND:
            self.rejects.put((cart, body))
            return
        self.ack_bodies.put((cart, body))
        self.acks.put((cart, body["upto_seq"], body["ids"]))

    def publish(self, cart: str, payload: bytes | dict[str, Any], site: str = SITE, qos: int = 1) -> None:
        data = wire.encode(payload) if isinstance(payload, dict) else payload
        info = self.client.publish(wire.topic(site, cart, wire.RECORD), data, qos=qos)
        info.wait_for_publish(WAIT_S)

    def acked(self, cart: str, ids: set[str]) -> int:
        """Wait until every id in ``ids`` was acked for ``cart``; return the last upto_seq seen."""
        missing, upto = set(ids), -1
        while missing:
            got_cart, got_upto, got_ids = self.acks.get(timeout=WAIT_S)
            if got_cart == cart:
                missing -= set(got_ids)
                upto = max(upto, got_upto)
        return upto

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8].upper()}"


def gateway_config(tmp_path: Path, broker: PrivateBroker, sim: SimPlatform, **overrides: Any) -> GatewayConfig:
    fields: dict[str, Any] = {
        "broker": broker.url, "client_id": f"test-gw-{uuid.uuid4().hex[:8]}", "data": tmp_path / "gw",
        "platform": sim.url,
        "ingest": IngestConfig(batch_max=50, linger_ms=5),
        # fast retries so the error-rate test finishes in well under a second of waiting
        "forward": ForwardConfig(timeout_s=5, backoff_base_s=0.01, backoff_max_s=0.1, rate_per_s=1000),
    }
    fields.update(overrides)
    return GatewayConfig(**fields)


@pytest.fixture
def platform() -> Iterator[SimPlatform]:
    with SimPlatform(seed=7) as p:
        yield p


@dataclass
class Rig:
    app: GatewayApp
    pub: Publisher
    cart: Cart
    platform: SimPlatform

    def wait(self, **at_least: int) -> dict[str, int]:
        ok = self.app.wait_until(lambda s: all(s.get(k, 0) >= v for k, v in at_least.items()), WAIT_S)
        stats = self.app.stats()
        assert ok, f"gateway never reached {at_least}: {stats}"
        return stats


@pytest.fixture
def rig(tmp_path: Path, broker: PrivateBroker, platform: SimPlatform) -> Iterator[Rig]:
    cart = Cart(unique("CART"))
    app = GatewayApp(gateway_config(tmp_path, broker, platform, cart_keys={cart.cart: cart.public_key}))
    app.start()
    pub = Publisher(broker, [cart.cart], app.public_key)
    try:
        assert app.wait_until(lambda s: s["subscribed"] == 1, WAIT_S)
        yield Rig(app, pub, cart, platform)
    finally:
        pub.close()
        app.stop()


def test_records_are_stored_acked_and_forwarded_once(rig: Rig) -> None:
    records = [rig.cart.record(seq) for seq in range(1, 6)]
    for env in records:
        rig.pub.publish(rig.cart.cart, env)
    ids = {env["id"] for env in records}

    assert rig.pub.acked(rig.cart.cart, ids) == 5
    assert rig.app.store.upto_seq(rig.cart.cart) == 5
    stats = rig.wait(accepted=5)
    assert (stats["received"], stats["stored"], stats["duplicates"], stats["quarantined"]) == (5, 5, 0, 0)

    got = {item["id"]: item for item in rig.platform.records()}
    assert set(got) == ids
    assert all(item["received_count"] == 1 for item in got.values())
    first = got[records[0]["id"]]["record"]
    assert first == {"id": records[0]["id"], "site": SITE, "cart": rig.cart.cart, "seq": 1, "type": "handover",
                     "created_at": records[0]["created_at"], "hash": records[0]["hash"],
                     "body": records[0]["body"]}


def test_duplicates_are_acked_and_not_forwarded_twice(rig: Rig) -> None:
    records = [rig.cart.record(seq) for seq in range(1, 4)]
    for env in records:
        rig.pub.publish(rig.cart.cart, env)
    rig.wait(accepted=3)
    ids = {env["id"] for env in records}
    rig.pub.acked(rig.cart.cart, ids)

    for env in records:  # a cart that never saw the ack re-publishes
        rig.pub.publish(rig.cart.cart, env)
    assert rig.pub.acked(rig.cart.cart, ids) == 3
    stats = rig.wait(duplicates=3)
    assert (stats["received"], stats["stored"], stats["accepted"], stats["pending"]) == (6, 3, 3, 0)
    assert sorted(item["received_count"] for item in rig.platform.records()) == [1, 1, 1]


def test_ack_carries_the_contiguous_high_water_mark(rig: Rig) -> None:
    r1, r2, r3 = (rig.cart.record(seq) for seq in (1, 2, 3))
    rig.pub.publish(rig.cart.cart, r1)
    assert rig.pub.acked(rig.cart.cart, {r1["id"]}) == 1
    rig.pub.publish(rig.cart.cart, r3)  # seq 2 still missing: stored, but upto_seq stays 1
    assert rig.pub.acked(rig.cart.cart, {r3["id"]}) == 1
    rig.pub.publish(rig.cart.cart, r2)
    assert rig.pub.acked(rig.cart.cart, {r2["id"]}) == 3


def test_qos0_records_are_stored_too(rig: Rig) -> None:
    """QoS 0 breaks the contract, but the record is genuine: store it; there is no PUBACK to send."""
    env = rig.cart.record(1)
    rig.pub.publish(rig.cart.cart, env, qos=0)
    assert rig.pub.acked(rig.cart.cart, {env["id"]}) == 1
    later = rig.cart.record(2)
    rig.pub.publish(rig.cart.cart, later)  # the connection survived
    assert rig.pub.acked(rig.cart.cart, {later["id"]}) == 2


def test_gateway_resubscribes_after_a_broker_restart(rig: Rig, broker: PrivateBroker) -> None:
    first = rig.cart.record(1)
    rig.pub.publish(rig.cart.cart, first)
    assert rig.pub.acked(rig.cart.cart, {first["id"]}) == 1
    rig.pub.subscribed.clear()
    broker.stop()  # SIGTERM: mosquitto keeps the sessions
    assert rig.app.wait_until(lambda s: s["mqtt_connected"] == 0, WAIT_S)
    broker.start()
    assert rig.app.wait_until(lambda s: s["subscribed"] == 1, WAIT_S)
    assert rig.pub.subscribed.wait(WAIT_S)
    second = rig.cart.record(2)
    rig.pub.publish(rig.cart.cart, second)
    assert rig.pub.acked(rig.cart.cart, {second["id"]}) == 2
    rig.wait(accepted=2)


def test_bad_payloads_end_in_quarantine_and_the_gateway_carries_on(rig: Rig) -> None:
    cart = rig.cart.cart
    good = rig.cart.record(1)
    schema_bad = {**rig.cart.record(2)}
    del schema_bad["clock"]
    forged = Cart(cart).record(3)  # right cart id, someone else's key
    altered = rig.cart.record(4)
    altered["body"] = {**altered["body"], "department": "OR"}  # changed after sealing
    stranger = Cart(unique("CART")).record(1)  # nobody configured this cart's key
    bad = [
        (cart, b'{"id": "not-closed'),
        (cart, b"\xff\xfe\x00garbage"),
        (cart, wire.encode(schema_bad)),
        (cart, wire.encode(forged)),
        (cart, wire.encode(altered)),
        (stranger["cart"], wire.encode(stranger)),
        (cart, wire.encode({**good, "cart": unique("CART")})),  # topic and envelope disagree
    ]
    for topic_cart, payload in bad:
        rig.pub.publish(topic_cart, payload)
    stats = rig.wait(quarantined=len(bad))
    assert (stats["stored"], stats["received"]) == (0, len(bad))

    reasons = [row.reason for row in reversed(rig.app.store.quarantined())]
    assert len(set(reasons)) == len(bad), reasons
    assert reasons[0].startswith("schema: payload is not JSON")
    assert reasons[1].startswith("schema: payload is not JSON")
    assert reasons[2] == "schema: /clock: required"
    assert reasons[3] == "seal: sig: not a valid Ed25519 signature by this cart's key"
    assert reasons[4].startswith("seal: hash: does not match")
    assert reasons[5] == "unknown cart, no public key configured"
    assert reasons[6].startswith("cart: envelope says")

    rig.pub.publish(cart, good)  # still working
    assert rig.pub.acked(cart, {good["id"]}) == 1
    rig.wait(accepted=1)


def test_platform_errors_are_retried_until_each_record_is_accepted_once(rig: Rig) -> None:
    rig.platform.error_rate = 0.5
    records = [rig.cart.record(seq) for seq in range(1, 21)]
    for env in records:
        rig.pub.publish(rig.cart.cart, env)
    stats = rig.wait(accepted=20)
    assert stats["forward_retries"] > 0
    assert stats["dead"] == 0
    items = rig.platform.records()
    assert {item["id"] for item in items} == {env["id"] for env in records}
    assert all(item["received_count"] == 1 for item in items)
    assert rig.platform.counts()["injected_errors"] == stats["forward_retries"]


def test_platform_4xx_is_dead_lettered_with_the_reason(tmp_path: Path, broker: PrivateBroker,
                                                       platform: SimPlatform) -> None:
    """A platform that refuses the record (4xx) will refuse it again: no retry, dead letter."""
    cart = Cart(unique("CART"))
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / f"{cart.cart}.pub").write_text(cart.public_key + "\n")
    # A wrong base path makes every POST hit 404: permanent.
    cfg = gateway_config(tmp_path, broker, platform, cart_keys_dir=keys_dir, platform=f"{platform.url}/v9")
    app = GatewayApp(cfg)
    app.start()
    pub = Publisher(broker, [cart.cart], app.public_key)
    try:
        assert app.wait_until(lambda s: s["subscribed"] == 1, WAIT_S)
        env = cart.record(1)
        pub.publish(cart.cart, env)
        assert pub.acked(cart.cart, {env["id"]}) == 1  # key found in cart_keys_dir
        assert app.wait_until(lambda s: s["dead"] == 1, WAIT_S)
        state = app.store.record_state(env["id"])
        assert state is not None and state["forward_state"] == "dead"
        assert state["last_error"].startswith("HTTP 404:")
        assert platform.records() == []
    finally:
        pub.close()
        app.stop()


def test_records_sent_while_the_gateway_is_down_arrive_after_restart(tmp_path: Path, broker: PrivateBroker,
                                                                     platform: SimPlatform) -> None:
    """The persistent session (clean_session=False) keeps QoS 1 records for a stopped gateway."""
    cart = Cart(unique("CART"))
    cfg = gateway_config(tmp_path, broker, platform, cart_keys={cart.cart: cart.public_key})
    app = GatewayApp(cfg)
    app.start()
    assert app.wait_until(lambda s: s["subscribed"] == 1, WAIT_S)
    app.stop()
    pub = Publisher(broker, [cart.cart], app.public_key)
    try:
        records = [cart.record(seq) for seq in (1, 2)]
        for env in records:
            pub.publish(cart.cart, env)
        app = GatewayApp(cfg)
        app.start()
        try:
            assert pub.acked(cart.cart, {env["id"] for env in records}) == 2
            assert app.wait_until(lambda s: s["accepted"] == 2, WAIT_S)
        finally:
            app.stop()
    finally:
        pub.close()
    assert app.stats()["accepted"] == 2  # the last figures survive stop()
    assert json.loads(json.dumps(platform.records()))[0]["record"]["seq"] == 1


def test_cli_gateway_run_prints_where_it_connects_and_stops_on_sigterm(
        tmp_path: Path, broker: PrivateBroker, platform: SimPlatform) -> None:
    args = ["gateway", "run", "--broker", broker.url, "--data", str(tmp_path / "gw"), "--platform", platform.url,
            "--client-id", f"test-gw-{uuid.uuid4().hex[:8]}"]
    with running(*args, stderr=None) as proc:  # its log lands in the captured output of a failure
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"gateway connecting to {broker.url} as test-gw-"), line
        assert f"forwarding to {platform.url}/records" in line
        key = line.rsplit("public key ", 1)[1].strip()
        assert wire.load_public_key(key)  # the key it signs with, created in --data on first start
        assert (tmp_path / "gw" / "gateway.key").stat().st_mode & 0o777 == 0o600
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=20)[0]
        assert proc.returncode == 0
        assert "gateway stopped:" in rest
        assert (tmp_path / "gw" / "gateway.sqlite").is_file()
