"""The cart's own defences (issue 11), on a real broker and real ledger files: nothing that arrives
is believed unless a gateway key signed it for this ledger and this boot.

The test plays both the gateway (a key of its own, given to the cart as ``uplink.gateway_keys``)
and the intruder (no key, or a key of its own).  Each forged or replayed message is followed by a
genuine one as a barrier: the broker delivers one client's messages in order and the cart handles
them in order, so once the genuine one took effect the bad one was handled too (no sleeping).
"""

from __future__ import annotations

import json
import logging
import queue
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.ledger.settings import UplinkSettings
from edge.ledger.store import Ledger
from edge.ledger.uplink import Uplink
from wastecart.broker import PrivateBroker
from wastecart.cli import main

NOW = datetime(2026, 11, 28, tzinfo=UTC)
SITE = "H1"
GATEWAY = Ed25519PrivateKey.generate()
INTRUDER = Ed25519PrivateKey.generate()
WAIT_S = 10.0


class Rig:
    """One cart (a real ledger and uplink) and a broker client that is its gateway and its attacker."""

    def __init__(self, broker: PrivateBroker, data: Path, cart: str, *, records: int = 3, **given: Any) -> None:
        self.cart, self.data, self.broker = cart, data, broker
        self.key = Ed25519PrivateKey.generate()
        self.ledger = Ledger(data, cart, self.key)
        for i in range(records):
            self.commit(i)
        self.offered: queue.Queue[int] = queue.Queue()
        self.settings = UplinkSettings(gateway_keys=(wire.public_key_text(GATEWAY.public_key()),),
                                       resend_after_s=60, **given)
        self.got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        subscribed: queue.Queue[int] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-{cart}-{uuid.uuid4().hex[:6]}")
        self.client.on_message = lambda _c, _u, m: self.got.put(m)
        self.client.on_subscribe = lambda *_: subscribed.put(1)
        host, port, _ = wire.broker_address(broker.url)
        self.client.connect(host, port)
        self.client.subscribe(wire.topic(SITE, cart, "#"), qos=1)
        self.client.loop_start()
        subscribed.get(timeout=WAIT_S)
        self.uplink: Uplink | None = None
        self.counter = 0
        self.devices: dict[str, Any] = {}  # what the app would report of its devices

    def commit(self, n: int) -> None:
        self.ledger.commit("handover", {"n": n}, now=NOW, clock=wire.Clock("unsynced", 0))

    def start(self) -> dict[str, Any]:
        """Start the uplink; returns its birth status (verified with the cart's key)."""
        self.uplink = Uplink(self.ledger, site=SITE, broker=self.broker.url, settings=self.settings,
                             on_time=self.offered.put, status=lambda: dict(self.devices))
        self.uplink.start()
        while True:  # a retained status of an earlier run (another key, maybe) comes first
            payload = self.next("status").payload
            if wire.peek_message(payload)["body"]["boot_id"] != self.uplink.boot_id:
                continue
            _kind, body = wire.open_message(payload, kinds=[wire.STATUS_KIND], site=SITE, cart=self.cart,
                                            keys=[self.key.public_key()])
            assert body["state"] == "online"
            return body

    @property
    def up(self) -> Uplink:
        assert self.uplink is not None
        return self.uplink

    def stop(self) -> None:
        if self.uplink is not None:
            self.uplink.stop()
            self.uplink = None

    def close(self) -> None:
        self.stop()
        # No retained status left on the session's broker: a gateway of a later test would see a
        # cart it has no key for.
        self.send(wire.STATUS, b"")
        self.client.disconnect()
        self.client.loop_stop()
        self.ledger.close()

    # what the cart sends -----------------------------------------------------------------------

    def next(self, leaf: str) -> mqtt.MQTTMessage:
        while True:
            m = self.got.get(timeout=WAIT_S)
            if m.topic.endswith("/" + leaf):
                return m

    def opened(self, leaf: str) -> tuple[str, dict[str, Any]]:
        """The next message on ``leaf``, verified with the cart's public key (it must verify)."""
        kind = {"status": wire.STATUS_KIND, "telemetry": wire.TELEMETRY_KIND, "cmd_result": wire.CMD_RESULT_KIND}
        return wire.open_message(self.next(leaf).payload, kinds=[kind[leaf]], site=SITE, cart=self.cart,
                                 keys=[self.key.public_key()])

    def records(self, n: int) -> list[int]:
        return [json.loads(self.next("record").payload)["seq"] for _ in range(n)]

    # what the gateway (or the intruder) sends ----------------------------------------------------

    def ack(self, upto: int, ids: list[str] | None = None, *, key: Ed25519PrivateKey = GATEWAY,
            ledger: Ledger | None = None) -> bytes:
        upto_hash = (ledger or self.ledger).hash_at(upto)
        assert upto_hash is not None
        return wire.sign_message(wire.ACK_KIND, SITE, self.cart, wire.ack_body(upto, upto_hash, ids or []), key)

    def command(self, name: str, *, boot_id: str | None = None, counter: int | None = None,
                key: Ed25519PrivateKey = GATEWAY, **args: int) -> bytes:
        if counter is None:
            self.counter += 1
            counter = self.counter
        body = wire.command_body(name, boot_id or self.up.boot_id, counter, args)
        return wire.sign_message(wire.CMD_KIND, SITE, self.cart, body, key)

    def send(self, leaf: str, payload: bytes) -> None:
        retain = leaf == wire.STATUS
        self.client.publish(wire.topic(SITE, self.cart, leaf), payload, qos=1, retain=retain).wait_for_publish(WAIT_S)

    def send_ack(self, payload: bytes) -> None:
        self.send(wire.ACK, payload)

    def send_cmd(self, name: str, payload: bytes) -> dict[str, Any]:
        """Send a command; returns the cart's (verified) answer."""
        self.send(f"{wire.CMD}/{name}", payload)
        return self.opened("cmd_result")[1]

    def synced_seqs(self) -> list[int]:
        return [r["seq"] for r in self.listing() if r["synced"]]

    def listing(self) -> list[dict[str, Any]]:
        """``wastecart edge ledger --data DIR --json``, as an operator would run it."""
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["edge", "ledger", "--data", str(self.data), "--json"]) == 0
        return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture
def cart_id() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}"


@pytest.fixture
def rig(broker: PrivateBroker, tmp_path: Path, cart_id: str) -> Iterator[Rig]:
    r = Rig(broker, tmp_path / "cart", cart_id)
    yield r
    r.close()


def test_forged_and_unsigned_acks_mark_nothing_synced(rig: Rig) -> None:
    rig.start()
    assert rig.records(3) == [1, 2, 3]
    rig.send_ack(rig.ack(3, key=INTRUDER))  # signed, by a key the cart does not trust
    rig.send_ack(json.dumps({"upto_seq": 2147483647, "ids": []}).encode())  # the unsigned form of old
    forged = json.loads(rig.ack(3))
    forged["body"]["upto_seq"] = 2  # a genuine ack, altered
    rig.send_ack(wire.canonical(forged))
    rig.send_ack(b"\x00\xff not even json")
    assert rig.up.wait_synced(0.3) is False
    rig.send_ack(rig.ack(1))  # the barrier: a genuine ack
    assert rig.up.wait_synced(WAIT_S, backlog=2)
    assert rig.synced_seqs() == [1]
    assert rig.up.refused_counts() == {"ack": 4, "reject": 0, "cmd": 0}


def test_a_genuine_ack_replayed_for_a_new_ledger_is_refused(broker: PrivateBroker, tmp_path: Path,
                                                           cart_id: str) -> None:
    """The data folder is wiped and the cart starts again under the same id: an ack captured from
    its old ledger matches none of the new records."""
    old = Rig(broker, tmp_path / "old", cart_id)
    old.start()
    old.records(3)
    captured = old.ack(3)
    old.send_ack(captured)
    assert old.up.wait_synced(WAIT_S)
    old.close()
    new = Rig(broker, tmp_path / "new", cart_id)
    try:
        new.start()
        assert new.records(3) == [1, 2, 3]
        new.send_ack(captured)
        new.send_ack(new.ack(1))  # barrier
        assert new.up.wait_synced(WAIT_S, backlog=2)
        assert new.synced_seqs() == [1]
        assert new.up.refused_counts()["ack"] == 1
    finally:
        new.close()


def test_an_ack_beyond_what_the_cart_published_marks_nothing(broker: PrivateBroker, tmp_path: Path,
                                                             cart_id: str) -> None:
    """Seq 4 was never published: an ack of it is refused (a hash that is not the cart's record 4)
    or, with the cart's own hash (only an ack of an earlier run can know it), left for later."""
    rig = Rig(broker, tmp_path, cart_id, records=5, max_unacked=2)  # only 2 go out until acked
    try:
        rig.start()
        assert rig.records(2) == [1, 2]
        wrong = wire.sign_message(wire.ACK_KIND, SITE, cart_id, wire.ack_body(4, "ab" * 32, []), GATEWAY)
        rig.send_ack(wrong)
        rig.send_ack(rig.ack(4))  # the cart's own hash of seq 4: early
        rig.send_ack(rig.ack(1))  # barrier
        assert rig.up.wait_synced(WAIT_S, backlog=4)
        assert rig.synced_seqs() == [1]
        assert (rig.up.refused_counts()["ack"], rig.up.early_acks) == (1, 1)
    finally:
        rig.close()


def test_an_ack_left_queued_across_a_restart_is_not_refused(broker: PrivateBroker, tmp_path: Path,
                                                            cart_id: str) -> None:
    """The gateway's ack reaches the broker while the cart restarts (its session keeps it): the new
    run has not published those records yet; it re-sends them and takes the next ack, and counts
    nothing refused, so an operator is not alarmed by a restart."""
    rig = Rig(broker, tmp_path, cart_id, records=5, max_unacked=2)
    try:
        rig.start()
        assert rig.records(2) == [1, 2]
        rig.stop()
        rig.send_ack(rig.ack(2))  # queued in the cart's persistent session
        rig.start()
        assert rig.records(2) == [1, 2]  # sent again
        rig.send_ack(rig.ack(2))
        assert rig.up.wait_synced(WAIT_S, backlog=3)
        assert rig.synced_seqs() == [1, 2]
        assert rig.up.refused_counts()["ack"] == 0 and rig.up.early_acks in (0, 1)  # 0: it came after the re-send
    finally:
        rig.close()


def test_forged_resends_are_refused_answered_and_the_upload_goes_on(rig: Rig) -> None:
    birth = rig.start()
    assert rig.records(3) == [1, 2, 3]
    unsigned = wire.canonical({"from_seq": 1_000_000_000})  # the attack of issue 11
    answer = rig.send_cmd(wire.CMD_RESEND, unsigned)
    assert (answer["outcome"], answer["name"], answer["counter"]) == ("refused", "resend", 0)
    assert "not a signed message" in answer["reason"]
    answer = rig.send_cmd(wire.CMD_RESEND, rig.command(wire.CMD_RESEND, from_seq=1_000_000_000, key=INTRUDER))
    assert answer["outcome"] == "refused" and answer["boot_id"] == birth["boot_id"]
    assert "signature does not verify" in answer["reason"]
    # even the gateway's own key cannot send the cart past its head
    answer = rig.send_cmd(wire.CMD_RESEND, rig.command(wire.CMD_RESEND, from_seq=1_000_000_000))
    assert answer["outcome"] == "refused" and "beyond the head 3 + 1" in answer["reason"]
    rig.commit(3)
    rig.up.wake()
    assert rig.records(1) == [4]  # the upload goes on
    rig.send_ack(rig.ack(4))
    assert rig.up.wait_synced(WAIT_S)
    assert rig.up.refused_counts()["cmd"] == 3


def test_a_replayed_command_and_one_for_an_old_boot_are_refused(rig: Rig) -> None:
    first = rig.start()
    assert rig.records(3) == [1, 2, 3]
    resend = rig.command(wire.CMD_RESEND, from_seq=3)
    assert rig.send_cmd(wire.CMD_RESEND, resend)["outcome"] == "done"
    assert rig.records(1) == [3]
    answer = rig.send_cmd(wire.CMD_RESEND, resend)  # the same genuine command again
    assert (answer["outcome"], answer["counter"]) == ("refused", 1) and "a replay" in answer["reason"]
    time_cmd = rig.command(wire.CMD_TIME, utc_ms=1_800_000_000_000)
    assert rig.send_cmd(wire.CMD_TIME, time_cmd)["outcome"] == "done"
    assert rig.offered.get(timeout=WAIT_S) == 1_800_000_000_000
    rig.stop()  # the cart restarts: a new boot
    second = rig.start()
    assert second["boot_id"] != first["boot_id"]
    answer = rig.send_cmd(wire.CMD_TIME, rig.command(wire.CMD_TIME, boot_id=first["boot_id"],
                                                     utc_ms=1_800_000_000_001))
    assert answer["outcome"] == "refused" and "another boot" in answer["reason"]
    answer = rig.send_cmd(wire.CMD_TIME, time_cmd)  # the old boot's command, replayed after the restart
    assert answer["outcome"] == "refused"
    wrong_topic = rig.command(wire.CMD_TIME, utc_ms=1_800_000_000_002)
    assert "arrived on cmd/resend" in rig.send_cmd(wire.CMD_RESEND, wrong_topic)["reason"]
    assert rig.send_cmd(wire.CMD_TIME, rig.command(wire.CMD_TIME, utc_ms=1_800_000_000_003))["outcome"] == "done"
    assert rig.offered.get(timeout=WAIT_S) == 1_800_000_000_003  # none of the refused ones
    assert rig.offered.empty()
    assert rig.up.refused_counts()["cmd"] == 3


def test_a_rejected_record_is_marked_never_sent_again_and_reported(broker: PrivateBroker, tmp_path: Path,
                                                                   cart_id: str) -> None:
    rig = Rig(broker, tmp_path, cart_id, telemetry_s=0.2)
    try:
        rig.start()
        assert rig.records(3) == [1, 2, 3]
        second = next(r for r in rig.listing() if r["seq"] == 2)
        sha = rig.ledger.payload_sha256(2)
        assert sha is not None
        reject = wire.reject_body(second["id"], 2, "ALTERED", "hash does not match the content", sha)
        copy = wire.reject_body(second["id"], 2, "ALTERED", "someone else's copy", "0" * 64)
        rig.send_ack(wire.sign_message(wire.REJECT_KIND, SITE, cart_id, copy, GATEWAY))  # not our bytes: nothing
        rig.send_ack(wire.sign_message(wire.REJECT_KIND, SITE, cart_id, reject, INTRUDER))  # forged: nothing
        rig.send_ack(wire.sign_message(wire.REJECT_KIND, SITE, cart_id, {**reject, "seq": 3}, GATEWAY))  # not ours
        rig.send_ack(wire.sign_message(wire.REJECT_KIND, SITE, cart_id, reject, GATEWAY))
        rig.send_ack(rig.ack(1))  # barrier
        assert rig.up.wait_synced(WAIT_S, backlog=1)
        assert [(r["seq"], r["synced"], r["rejected"]) for r in rig.listing()] == [
            (1, True, None), (2, False, "ALTERED"), (3, False, None)]
        assert rig.send_cmd(wire.CMD_RESEND, rig.command(wire.CMD_RESEND, from_seq=1))["outcome"] == "done"
        assert rig.records(1) == [3]  # not 2: it is never sent again
        rig.send_ack(rig.ack(1, [second["id"], next(r["id"] for r in rig.listing() if r["seq"] == 3)]))
        assert rig.up.wait_synced(WAIT_S)  # the rejected record holds nothing back
        assert [r["rejected"] for r in rig.listing()] == [None, "ALTERED", None]  # an ack does not sync it
        while True:  # telemetry, signed by the cart, says so (integer seconds)
            _kind, tele = rig.opened("telemetry")
            if tele["backlog"] == 0:
                break
        assert tele["rejected"] == 1 and tele["refused"] == {"ack": 0, "reject": 3, "cmd": 0}  # copy, forged, seq
        assert tele["oldest_unsent_s"] is None and tele["boot_id"] == rig.up.boot_id and tele["seq_head"] == 3
        rig.stop()
        _kind, offline = rig.opened("status")
        assert (offline["state"], offline["rejected"], offline["refused"]["reject"]) == ("offline", 1, 3)
    finally:
        rig.close()


def test_status_and_telemetry_are_signed_by_the_cart(broker: PrivateBroker, tmp_path: Path,
                                                     cart_id: str) -> None:
    rig = Rig(broker, tmp_path, cart_id, telemetry_s=0.2)
    try:
        birth = rig.start()
        assert (birth["seq_head"], birth["rejected"], birth["refused"]) == (3, 0, {"ack": 0, "reject": 0, "cmd": 0})
        _kind, tele = rig.opened("telemetry")
        assert isinstance(tele["oldest_unsent_s"], int) and tele["backlog"] == 3
        other = Ed25519PrivateKey.generate().public_key()
        with pytest.raises(wire.ContractError, match="signature"):
            wire.open_message(rig.next("telemetry").payload, kinds=[wire.TELEMETRY_KIND], site=SITE,
                              cart=rig.cart, keys=[other])
    finally:
        rig.close()


def test_a_device_state_outside_the_contract_does_not_stop_the_birth(rig: Rig) -> None:
    rig.devices = {"scale": "connected", "camera": "x" * 40}  # a bug: longer than any state word
    birth = rig.start()
    assert "camera" not in birth and "scale" not in birth and birth["seq_head"] == 3
    assert rig.records(3) == [1, 2, 3]  # and the drain goes on


def test_a_flood_of_junk_is_counted_and_logged_once(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.start()
    rig.records(3)
    with caplog.at_level(logging.WARNING, logger="edge.ledger.uplink"):
        for n in range(200):
            rig.client.publish(wire.topic(SITE, rig.cart, wire.ACK), json.dumps({"upto_seq": n}).encode(), qos=1)
        rig.send_ack(rig.ack(3))  # barrier
        assert rig.up.wait_synced(WAIT_S)
    assert rig.up.refused_counts()["ack"] == 200
    lines = [r for r in caplog.records if "refused a gateway ack" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]


def test_a_cart_without_a_gateway_key_refuses_to_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`edge run` names the setting (exit 2, nothing opened); `sim fleet` needs --gateway-key."""
    config = tmp_path / "edge.toml"  # everything but the gateway's key (a cart also needs its roster)
    config.write_text('org = "H1"\ncart = "CART-01"\nroster = { version = "t1", org_name = "测试医院" }\n')
    base = ["edge", "run", "--config", str(config), "--data", str(tmp_path / "cart"), "--port", "0"]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "uplink.gateway_keys" in err and "no gateway key" in err
    assert not (tmp_path / "cart").exists()  # refused before the ledger or the key were made
    assert main([*base, "--gateway-key", "bm90IGEga2V5"]) == 2
    assert "uplink.gateway_keys: Value error, [0]: public key 'bm90IGEga2V5'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["sim", "fleet", "--broker", "mqtt://127.0.0.1:1", "--data", str(tmp_path / "fleet")])
    assert info.value.code == 2 and "--gateway-key" in capsys.readouterr().err
    assert main(["sim", "fleet", "--broker", "mqtt://127.0.0.1:1", "--data", str(tmp_path / "fleet"),
                 "--gateway-key", "bm90IGEga2V5"]) == 2
    assert "--gateway-key: Value error, [0]: public key" in capsys.readouterr().err
