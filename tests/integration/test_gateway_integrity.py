"""Issue 3 on the gateway side, against a real mosquitto and a real HTTP SimPlatform.

Seq gaps -> ``resend`` command, cart birth -> ``time`` command, every alert kind from crafted
payloads published by a second client, platform timeouts -> counted re-deliveries with still one
record per id at the platform, a platform that refuses connections (not a re-delivery), and a
gateway restarted after dying between POST and answer.  Waits are on queues and the app's
Condition, never sleeps.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from gateway.app import GatewayApp
from gateway.config import ForwardConfig, IngestConfig
from gateway.store import Incoming, SqliteStore, read_summary
from sim_devices.platform import SimPlatform
from tests.integration.test_gateway import SITE, WAIT_S, Cart, Publisher, gateway_config, unique
from wastecart.broker import PrivateBroker


class CommandListener:
    """A second client that plays the cart's receiving side: collects ``cmd/#`` messages, each opened
    with the gateway's public key (an unsigned one fails the test)."""

    def __init__(self, broker: PrivateBroker, cart: str, gateway_key: str) -> None:
        host, port, _ = wire.broker_address(broker.url)
        self.cart = cart
        self.key = wire.load_public_key(gateway_key)
        self.commands: queue.Queue[tuple[str, bytes]] = queue.Queue()
        subscribed: queue.Queue[bool] = queue.Queue()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"test-cmd-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *_: c.subscribe(wire.topic(SITE, cart, f"{wire.CMD}/#"), qos=1)
        self.client.on_subscribe = lambda *_: subscribed.put(True)
        self.client.on_message = lambda _c, _u, msg: self.commands.put(
            (msg.topic.rsplit("/", 1)[-1], bytes(msg.payload)))
        self.client.connect(host, port)
        self.client.loop_start()
        assert subscribed.get(timeout=WAIT_S)

    def next(self, name: str) -> dict[str, Any]:
        """The body of the next command called ``name`` (others are skipped), verified."""
        while True:
            got, payload = self.commands.get(timeout=WAIT_S)
            if got == name:
                _, body = wire.open_message(payload, kinds=[wire.CMD_KIND], site=SITE, cart=self.cart, keys=[self.key])
                assert body["name"] == name
                return body

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def platform() -> Iterator[SimPlatform]:
    with SimPlatform(seed=11) as p:
        yield p


class Rig:
    def __init__(self, tmp_path: Path, broker: PrivateBroker, platform: SimPlatform, **overrides: Any) -> None:
        self.cart = Cart(unique("CART"))
        self.platform = platform
        self.data = tmp_path / "gw"
        cfg = gateway_config(tmp_path, broker, platform, cart_keys={self.cart.cart: self.cart.public_key},
                             **overrides)
        self.app = GatewayApp(cfg)
        self.app.start()
        self.cmds = CommandListener(broker, self.cart.cart, self.app.public_key)
        self.pub = Publisher(broker, [self.cart.cart], self.app.public_key)
        assert self.app.wait_until(lambda s: s["subscribed"] == 1, WAIT_S)

    def wait(self, **at_least: int) -> dict[str, int]:
        ok = self.app.wait_until(lambda s: all(s.get(k, 0) >= v for k, v in at_least.items()), WAIT_S)
        stats = self.app.stats()
        assert ok, f"gateway never reached {at_least}: {stats}"
        return stats

    def birth(self, seq_head: int = 0, boot_id: str | None = None, state: str = "online") -> str:
        """Publish the cart's signed status (not retained: the session broker is shared); its boot id."""
        boot_id = boot_id or wire.uuid7()
        body = {"state": state, "boot_id": boot_id, "seq_head": seq_head}
        payload = wire.sign_message(wire.STATUS_KIND, SITE, self.cart.cart, body, self.cart.key)
        self.pub.client.publish(wire.topic(SITE, self.cart.cart, wire.STATUS), payload, qos=1).wait_for_publish(WAIT_S)
        return boot_id

    def close(self) -> None:
        self.pub.close()
        self.cmds.close()
        self.app.stop()


@pytest.fixture
def rig(tmp_path: Path, broker: PrivateBroker, platform: SimPlatform) -> Iterator[Rig]:
    r = Rig(tmp_path, broker, platform,
            ingest=IngestConfig(batch_max=50, linger_ms=5, resend_interval_s=0.5))
    try:
        yield r
    finally:
        r.close()


def test_a_gap_asks_for_a_resend_and_the_resent_record_fills_it(rig: Rig) -> None:
    boot = rig.birth()  # a command names the cart's boot: no verified status, no command
    assert rig.cmds.next(wire.CMD_TIME)["boot_id"] == boot
    r1, r2, r3 = (rig.cart.record(seq) for seq in (1, 2, 3))
    rig.pub.publish(rig.cart.cart, r1)
    rig.pub.publish(rig.cart.cart, r3)  # seq 2 lost on the way
    first = rig.cmds.next(wire.CMD_RESEND)
    assert (first["args"], first["boot_id"]) == ({"from_seq": 2}, boot)
    assert rig.pub.acked(rig.cart.cart, {r1["id"], r3["id"]}) == 1
    # the cart got nothing new to say: the gateway asks again after resend_interval_s
    again = rig.cmds.next(wire.CMD_RESEND)
    assert again["args"] == {"from_seq": 2} and again["counter"] > first["counter"]  # never a counter twice
    rig.pub.publish(rig.cart.cart, r2)  # what the cart does on resend
    assert rig.pub.acked(rig.cart.cart, {r2["id"]}) == 3
    rig.wait(accepted=3)
    summary = read_summary(rig.data)
    cart = summary["carts"][rig.cart.cart]
    assert (cart["upto_seq"], cart["max_seq"], cart["chain_ok"], cart["chain_broken"]) == (3, 3, 3, 0)
    assert [(a["kind"], a["subject"]) for a in summary["alerts"]] == [("SEQ_GAP", "seq 2")]
    assert [item["record"]["seq"] for item in rig.platform.records()] == [1, 2, 3]  # seq 3 waited for 2


def test_a_cart_birth_is_offered_the_time_and_tracked(rig: Rig) -> None:
    topic = wire.topic(SITE, rig.cart.cart, wire.STATUS)
    boot = wire.uuid7()
    birth = wire.sign_message(wire.STATUS_KIND, SITE, rig.cart.cart,
                              {"state": "online", "boot_id": boot, "seq_head": 0, "scale": "ok"}, rig.cart.key)
    telemetry = {"at": "2026-01-01T00:00:00Z", "backlog": 4, "oldest_unsent_s": None, "disk_free_mb": 512,
                 "boot_id": boot, "seq_head": 0}
    try:
        before = time.time_ns() // 1_000_000
        rig.pub.client.publish(topic, birth, qos=1, retain=True).wait_for_publish(WAIT_S)
        offer = rig.cmds.next(wire.CMD_TIME)
        assert before <= offer["args"]["utc_ms"] <= time.time_ns() // 1_000_000
        assert offer["boot_id"] == boot
        rig.pub.client.publish(wire.topic(SITE, rig.cart.cart, wire.TELEMETRY), b"not json", qos=0)
        rig.pub.client.publish(wire.topic(SITE, rig.cart.cart, wire.TELEMETRY),  # unsigned: believed by nobody
                               json.dumps({"backlog": 99, "disk_free_mb": 1}), qos=0)
        rig.pub.client.publish(wire.topic(SITE, rig.cart.cart, wire.TELEMETRY),
                               wire.sign_message(wire.TELEMETRY_KIND, SITE, rig.cart.cart, telemetry, rig.cart.key),
                               qos=0)
        rig.wait(device_updates=2, device_errors=2)
        device = rig.app.store.device(rig.cart.cart)
        assert device is not None
        assert (device["online"], device["boot_id"], device["telemetry"]) == (1, boot, telemetry)
        assert read_summary(rig.data)["carts"][rig.cart.cart]["online"] is True
    finally:  # do not leave a retained birth on the session broker
        rig.pub.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(WAIT_S)


def test_every_tampering_kind_is_quarantined_with_its_alert(rig: Rig) -> None:
    cart = rig.cart.cart
    r1, r2 = rig.cart.record(1), rig.cart.record(2)
    rig.pub.publish(cart, r1)
    rig.pub.publish(cart, r2)
    rig.pub.acked(cart, {r1["id"], r2["id"]})
    forged = Cart(cart, prev_hash=r2["hash"]).record(3)  # right cart, someone else's key
    altered = {**r2, "body": {**r2["body"], "department": "OR"}}  # changed under its hash
    replay = rig.cart.record(2)  # the cart's key, seq 2 again with other content
    rig.cart.prev_hash = "f" * 64
    chain_break = rig.cart.record(3)  # signed, but not chained to seq 2
    stranger = Cart(unique("CART"))
    unknown = stranger.record(1)
    crafted = [(cart, wire.encode(forged)), (cart, wire.encode(altered)), (cart, wire.encode(replay)),
               (cart, wire.encode(chain_break)), (stranger.cart, wire.encode(unknown)), (cart, b"\x00garbage")]
    for topic_cart, payload in crafted:
        rig.pub.publish(topic_cart, payload)
    rig.wait(quarantined=len(crafted))
    rejects: dict[str, dict[str, Any]] = {}
    while len(rejects) < 1:
        _, body = rig.pub.rejects.get(timeout=WAIT_S)
        rejects[body["id"]] = body
    # the forged record is answered (signed, naming the bytes refused); the altered copy of seq 2 is
    # not: its genuine copy is stored here, and a bad copy must not make the cart give it up
    assert rejects[forged["id"]]["reason"] == "FORGED"
    assert rejects[forged["id"]]["payload_sha256"] == hashlib.sha256(wire.encode(forged)).hexdigest()
    assert r2["id"] not in rejects
    summary = read_summary(rig.data)
    got = {(a["kind"], a["cart"]) for a in summary["alerts"]}
    assert got == {("FORGED", cart), ("ALTERED", cart), ("REPLAYED", cart), ("CHAIN_BREAK", cart),
                   ("UNKNOWN_CART", stranger.cart), ("MALFORMED", cart)}
    by_kind = {a["kind"]: a for a in summary["alerts"]}
    assert by_kind["FORGED"]["subject"] == forged["id"]
    assert by_kind["CHAIN_BREAK"]["subject"] == chain_break["id"]
    assert by_kind["MALFORMED"]["subject"] == wire.topic(SITE, cart, wire.RECORD)
    assert summary["carts"][cart]["chain_broken"] == 1
    assert summary["counts"]["stored"] == 2
    rig.wait(accepted=2)
    assert {item["id"] for item in rig.platform.records()} == {r1["id"], r2["id"]}  # nothing forged got out


def test_platform_timeouts_are_counted_redeliveries_and_accepted_once(tmp_path: Path, broker: PrivateBroker,
                                                                       platform: SimPlatform) -> None:
    platform.latency_ms = 600  # the gateway gives up after 200 ms; the platform still takes it
    rig = Rig(tmp_path, broker, platform, forward=ForwardConfig(
        timeout_s=0.2, backoff_base_s=0.05, backoff_max_s=0.2, rate_per_s=1000))
    try:
        records = [rig.cart.record(seq) for seq in (1, 2, 3)]
        for env in records:
            rig.pub.publish(rig.cart.cart, env)
        rig.wait(redeliveries=2)
        platform.latency_ms = 0
        stats = rig.wait(accepted=3)
        assert stats["dead"] == 0
        ids = {env["id"] for env in records}
        items = {item["id"]: item for item in platform.records()}
        assert set(items) == ids  # exactly one record per id, however often it was sent
        summary = read_summary(rig.data)
        assert summary["counts"]["redeliveries"] == stats["redeliveries"] >= 2
        receipts = sum(item["received_count"] for item in items.values())
        assert receipts <= len(ids) + summary["counts"]["redeliveries"]
    finally:
        rig.close()


def test_a_refused_connection_is_not_a_redelivery(tmp_path: Path, broker: PrivateBroker,
                                                  platform: SimPlatform) -> None:
    platform.down = True
    rig = Rig(tmp_path, broker, platform, forward=ForwardConfig(
        timeout_s=2, backoff_base_s=0.05, backoff_max_s=0.2, rate_per_s=1000, breaker_failures=3))
    try:
        records = [rig.cart.record(seq) for seq in range(1, 11)]
        for env in records:
            rig.pub.publish(rig.cart.cart, env)
        rig.wait(stored=10, breaker_opened=3)
        attempts_while_down = rig.app.stats()["forward_attempts"]
        platform.down = False
        stats = rig.wait(accepted=10)
        assert stats["redeliveries"] == 0
        assert all(item["received_count"] == 1 for item in platform.records())
        # the breaker paced the outage: far fewer attempts than (records x openings)
        assert attempts_while_down <= stats["breaker_opened"] + 1
    finally:
        rig.close()


def test_a_gateway_killed_between_post_and_answer_resends_and_counts(tmp_path: Path, broker: PrivateBroker,
                                                                     platform: SimPlatform) -> None:
    cart = Cart(unique("CART"))
    env = cart.record(1)
    data = tmp_path / "gw"
    store = SqliteStore(data / "gateway.sqlite")
    store.store_batch([Incoming(env["id"], SITE, cart.cart, 1, "handover", env["created_at"], env["hash"],
                                wire.encode(env).decode(), wire.topic(SITE, cart.cart, wire.RECORD), b"",
                                env["prev_hash"])], time.time())
    store.mark_forwarding(env["id"], time.time())
    store.close()  # the process died here: POST sent (or not), answer never recorded
    platform._receive(json.dumps({"id": env["id"]}).encode(), env["id"])  # it did arrive
    app = GatewayApp(gateway_config(tmp_path, broker, platform, cart_keys={cart.cart: cart.public_key}))
    app.start()
    try:
        assert app.wait_until(lambda s: s["accepted"] == 1, WAIT_S)
        stats = app.stats()
        assert (stats["recovered"], stats["redeliveries"]) == (1, 1)
    finally:
        app.stop()
    assert [item["received_count"] for item in platform.records()] == [2]
    assert read_summary(data)["counts"]["redeliveries"] == 1


def test_cli_gateway_status_reads_a_running_gateway(rig: Rig) -> None:
    r1, _lost, r3 = (rig.cart.record(seq) for seq in (1, 2, 3))
    rig.pub.publish(rig.cart.cart, r1)
    rig.pub.publish(rig.cart.cart, r3)
    rig.pub.publish(rig.cart.cart, b"junk")
    rig.wait(stored=2, quarantined=1, accepted=1)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", "wastecart.cli", "gateway", "status", "--data", str(rig.data)]
    out = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, cwd=root, timeout=60, check=True)
    summary = json.loads(out.stdout)
    assert summary["carts"][rig.cart.cart]["upto_seq"] == 1
    assert summary["counts"]["alerts_by_kind"] == {"MALFORMED": 1, "SEQ_GAP": 1}
    text = subprocess.run([*cmd, "--alerts", "--quarantine", "--dead"], capture_output=True, text=True, env=env,
                          cwd=root, timeout=60, check=True).stdout
    assert "records: received 3, stored 2" in text
    assert "SEQ_GAP" in text and "MALFORMED" in text and "dead letters" in text
    assert f"wastecart gateway release --data {rig.data} --id " in text
    missing = subprocess.run([*cmd[:-1], str(rig.data / "nope")], capture_output=True, text=True, env=env,
                             cwd=root, timeout=60)
    assert missing.returncode == 2 and "no gateway database" in missing.stderr
