"""Issue 11 on the gateway's side, against a real mosquitto: everything the gateway sends is signed,
and nothing unsigned, forged, made-up or out of bounds changes what it believes or stops it.

Acks and rejects are opened with the gateway's public key by the test's Publisher, commands by the
CommandListener (``wire.open_message``): an unsigned one fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from gateway.config import IngestConfig
from gateway.ingest import KeyRing, checked
from gateway.store import SqliteStore, read_summary
from sim_devices.platform import SimPlatform
from tests.integration.test_gateway import SITE, WAIT_S, Cart, unique
from tests.integration.test_gateway_integrity import Rig
from wastecart.broker import PrivateBroker


@pytest.fixture
def platform() -> Iterator[SimPlatform]:
    with SimPlatform(seed=13) as p:
        yield p


@pytest.fixture
def rig(tmp_path: Path, broker: PrivateBroker, platform: SimPlatform) -> Iterator[Rig]:
    r = Rig(tmp_path, broker, platform, ingest=IngestConfig(batch_max=50, linger_ms=20, resend_interval_s=5))
    try:
        yield r
    finally:
        r.close()


def publish(rig: Rig, cart: str, leaf: str, payload: bytes) -> None:
    rig.pub.client.publish(wire.topic(SITE, cart, leaf), payload, qos=1).wait_for_publish(WAIT_S)


def test_acks_are_signed_and_name_the_hash_of_the_carts_record(rig: Rig) -> None:
    records = [rig.cart.record(seq) for seq in (1, 2, 3)]
    for env in records:
        rig.pub.publish(rig.cart.cart, env)
    assert rig.pub.acked(rig.cart.cart, {env["id"] for env in records}) == 3
    bodies = []
    while not rig.pub.ack_bodies.empty():
        bodies.append(rig.pub.ack_bodies.get_nowait()[1])
    by_upto = {env["seq"]: env["hash"] for env in records}
    assert bodies and all(b["upto_hash"] == by_upto[b["upto_seq"]] for b in bodies)


def test_forged_unsigned_and_made_up_status_change_nothing(rig: Rig) -> None:
    boot = rig.birth()
    rig.wait(device_updates=1)
    offline = {"state": "offline", "boot_id": boot, "seq_head": 0}
    stranger = Cart(unique("CART"))
    publish(rig, rig.cart.cart, wire.STATUS,
            wire.sign_message(wire.STATUS_KIND, SITE, rig.cart.cart, offline, Ed25519PrivateKey.generate()))
    publish(rig, rig.cart.cart, wire.STATUS, wire.canonical(offline))  # not even signed
    publish(rig, stranger.cart, wire.STATUS, wire.sign_message(  # a made-up cart, signed by its own key
        wire.STATUS_KIND, SITE, stranger.cart, {"state": "online", "boot_id": wire.uuid7(), "seq_head": 0},
        stranger.key))
    rig.wait(device_errors=3, quarantined=3)
    device = rig.app.store.device(rig.cart.cart)
    assert device is not None and (device["online"], device["boot_id"]) == (1, boot)
    summary = read_summary(rig.data)
    assert stranger.cart not in summary["carts"]  # shows nowhere, online or not
    assert summary["carts"][rig.cart.cart]["online"] is True
    assert {q["kind"] for q in summary["quarantine"]} == {"FORGED", "MALFORMED", "UNKNOWN_CART"}
    rig.birth(boot_id=boot, state="offline")  # the cart's own will is honoured
    assert rig.app.wait_until(lambda s: s["device_updates"] >= 2, WAIT_S)
    device = rig.app.store.device(rig.cart.cart)
    assert device is not None and device["online"] == 0


def test_poison_numbers_are_quarantined_alone_and_do_not_survive_a_restart(rig: Rig, tmp_path: Path,
                                                                          broker: PrivateBroker) -> None:
    r1 = rig.cart.record(1)
    huge = wire.seal({**{k: v for k, v in rig.cart.record(2).items() if k not in ("hash", "sig")}, "seq": 2**63},
                     rig.cart.key)  # signed by the cart's own key, but beyond every bound
    rig.cart.prev_hash = r1["hash"]
    r2 = rig.cart.record(2)
    poison_status = (b'{"body":{"boot_id":"' + wire.uuid7().encode() + b'","seq_head":1180591620717411303424,'
                     b'"state":"online"},"cart":"' + rig.cart.cart.encode() + b'","kind":"status","sig":"",'
                     b'"site":"' + SITE.encode() + b'","v":1}')  # seq_head 2**70
    rig.pub.publish(rig.cart.cart, r1)
    rig.pub.publish(rig.cart.cart, wire.encode(huge))
    publish(rig, rig.cart.cart, wire.STATUS, poison_status)
    rig.pub.publish(rig.cart.cart, b'{"seq": ' + b"9" * 5000 + b"}")  # an integer Python will not even parse
    rig.pub.publish(rig.cart.cart, r2)
    assert rig.pub.acked(rig.cart.cart, {r1["id"], r2["id"]}) == 2  # the good ones beside them are acked
    stats = rig.wait(quarantined=3, stored=2)
    assert stats["ingest_errors"] == 0
    rig.app.stop()  # a restart meets none of it again: every message was PUBACKed after its commit
    rig.app.start()
    assert rig.app.wait_until(lambda s: s["subscribed"] == 1, WAIT_S)
    r3 = rig.cart.record(3)
    rig.pub.publish(rig.cart.cart, r3)
    assert rig.pub.acked(rig.cart.cart, {r3["id"]}) == 3
    stats = rig.app.stats()
    assert (stats["ingest_errors"], stats["quarantined"]) == (0, 3)


def test_command_results_are_verified_and_kept(rig: Rig) -> None:
    boot = rig.birth()
    offer = rig.cmds.next(wire.CMD_TIME)
    result = wire.cmd_result_body("time", boot, offer["counter"], "done")
    publish(rig, rig.cart.cart, wire.CMD_RESULT,
            wire.sign_message(wire.CMD_RESULT_KIND, SITE, rig.cart.cart, result, rig.cart.key))
    publish(rig, rig.cart.cart, wire.CMD_RESULT,  # forged: not kept
            wire.sign_message(wire.CMD_RESULT_KIND, SITE, rig.cart.cart, {**result, "outcome": "refused"},
                              Ed25519PrivateKey.generate()))
    rig.wait(device_updates=2, device_errors=1)
    kept = read_summary(rig.data)["cmd_results"]
    assert [(r["name"], r["counter"], r["outcome"]) for r in kept] == [("time", offer["counter"], "done")]


def test_a_status_claiming_unverified_seqs_is_flagged_not_believed(rig: Rig) -> None:
    rig.birth(seq_head=50)
    rig.wait(device_updates=1)
    device = rig.app.store.device(rig.cart.cart)
    assert device is not None and (device["seq_head"], device["seq_head_claimed"]) == (0, 50)
    assert read_summary(rig.data)["alerts"] == []  # a backlog's normal claim: flagged, no alarm
    assert rig.app.store.counts()["status_ahead"] == 1


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-m", "wastecart.cli", *args], capture_output=True, text=True,
                          cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, timeout=60, check=False)


def test_cli_keygen_and_release(tmp_path: Path) -> None:
    first = _cli("gateway", "keygen", "--data", str(tmp_path / "gw"))
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip().splitlines()[-1]
    wire.load_public_key(key)
    again = _cli("gateway", "keygen", "--data", str(tmp_path / "gw"))
    assert again.stdout.strip().splitlines()[-1] == key  # created once, then reused
    cart = Cart("CART-LATE")
    store = SqliteStore(tmp_path / "gw" / "gateway.sqlite")
    try:  # a record that arrived before its cart's key was enrolled
        store.store_batch([checked(wire.topic(SITE, cart.cart, wire.RECORD), wire.encode(cart.record(1)),
                                   KeyRing({}, None))], time.time())
        row = store.quarantined(1)[0]
    finally:
        store.close()
    listed = _cli("gateway", "status", "--data", str(tmp_path / "gw"), "--quarantine").stdout
    command = f"wastecart gateway release --data {tmp_path / 'gw'} --id {row.id}"
    assert command in listed
    refused = _cli(*command.split()[1:])
    assert refused.returncode == 1 and "UNKNOWN_CART" in refused.stdout
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / f"{cart.cart}.pub").write_text(cart.public_key)
    released = _cli(*command.split()[1:], "--cart-keys-dir", str(keys))
    assert released.returncode == 0 and "released" in released.stdout, released.stdout + released.stderr
    assert read_summary(tmp_path / "gw")["carts"][cart.cart]["upto_seq"] == 1
