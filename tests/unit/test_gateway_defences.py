"""Issue 11 on the gateway's side, without a broker: identity, bounded quarantine, collapsed alerts,
poison isolation (a batch whose transaction fails is stored message by message), release, status
consistency, the persistent command counter and the benchmark-only switch."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Sequence
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from gateway.app import bench_unsigned
from gateway.config import GatewayConfig, IngestConfig
from gateway.errors import GatewayError, GatewayStoreError
from gateway.identity import key_path, load_or_create, public_text
from gateway.ingest import Ingest, KeyRing, checked
from gateway.release import release
from gateway.store import BatchResult, DeviceUpdate, Incoming, QuarantineLimits, Rejected, SqliteStore
from tests.unit.test_gateway_ingest_worker import chain
from tests.unit.test_wire import KEY

NOW = 1_700_000_000.0
TOPIC = "wc/v1/H1/CART-01/record"
BOOT1, BOOT2 = "0190a7a0-0000-7000-8000-000000000001", "0190a7a0-0000-7000-8000-000000000002"


def test_identity_is_created_0600_reused_and_refused_when_others_may_read_it(tmp_path: Path) -> None:
    key = load_or_create(tmp_path / "gw")
    path = key_path(tmp_path / "gw")
    assert path.stat().st_mode & 0o777 == 0o600
    assert public_text(load_or_create(tmp_path / "gw")) == public_text(key)
    wire.load_public_key(public_text(key))
    os.chmod(path, 0o644)
    with pytest.raises(GatewayError, match="lets others read it"):
        load_or_create(tmp_path / "gw")
    os.chmod(path, 0o600)
    path.write_bytes(b"not a key")
    with pytest.raises(GatewayError, match="not a readable PEM"):
        load_or_create(tmp_path / "gw")


def test_bench_switch_is_refused_outside_a_benchmark() -> None:
    assert bench_unsigned({}) is False
    assert bench_unsigned({"WASTECART_BENCH_UNSIGNED_ACKS": "1", "WASTECART_BENCH": "1"}) is True
    with pytest.raises(GatewayError, match="benchmarks only"):
        bench_unsigned({"WASTECART_BENCH_UNSIGNED_ACKS": "1"})


def test_quarantine_keeps_a_prefix_under_a_byte_budget(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.sqlite", QuarantineLimits(keep_bytes=1_000, budget_bytes=20_000))
    try:
        big = os.urandom(10_000_000)  # a 10 MB payload costs 1 kB
        for _ in range(100):
            store.store_batch([Rejected(TOPIC, big, "too big", "MALFORMED", "H1", "CART-01")], NOW)
        counts = store.counts()
        assert counts["quarantine_bytes"] <= 20_000
        assert counts["quarantine_dropped"] == 100 - counts["quarantined"] > 0
        row = store.quarantined(1)[0]
        assert (len(row.payload), row.size, row.sha256) == (1_000, len(big), hashlib.sha256(big).hexdigest())
        assert row.truncated
        (alert,) = store.alerts()  # one kind, one cart: one row with a count
        assert (alert["kind"], alert["count"]) == ("MALFORMED", 100)
    finally:
        store.close()
    assert (tmp_path / "g.sqlite").stat().st_size < 2_000_000


def test_status_is_believed_only_when_consistent(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.sqlite")
    try:
        store.store_batch([checked(TOPIC, wire.encode(env), KEYS) for env in chain(3)], NOW)
        ahead = DeviceUpdate("H1", "CART-01", "status", {"state": "online", "boot_id": BOOT1, "seq_head": 1000})
        assert store.store_batch([], NOW, devices=[ahead]).devices == ["applied"]
        dev = store.device("CART-01")
        assert dev is not None and (dev["seq_head"], dev["seq_head_claimed"]) == (3, 1000)  # the claim is not truth
        assert store.alerts() == [] and store.counts()["status_ahead"] == 1
        new_boot = DeviceUpdate("H1", "CART-01", "status", {"state": "online", "boot_id": BOOT2, "seq_head": 3})
        store.store_batch([], NOW + 1, devices=[new_boot])
        old_will = DeviceUpdate("H1", "CART-01", "status", {"state": "offline", "boot_id": BOOT1, "seq_head": 3})
        assert store.store_batch([], NOW + 2, devices=[old_will]).devices == ["stale"]  # a replay of boot 1
        dev = store.device("CART-01")
        assert dev is not None and (dev["online"], dev["boot_id"]) == (1, BOOT2)
        own_will = DeviceUpdate("H1", "CART-01", "status", {"state": "offline", "boot_id": BOOT2, "seq_head": 3})
        store.store_batch([], NOW + 3, devices=[own_will])  # the will of the current boot is honoured
        dev = store.device("CART-01")
        assert dev is not None and dev["online"] == 0
    finally:
        store.close()


def test_command_counter_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite"
    store = SqliteStore(path)
    assert store.record_command("H1", "CART-01", "time", {"utc_ms": 1}, NOW) is None  # no verified boot yet
    store.store_batch([], NOW, devices=[
        DeviceUpdate("H1", "CART-01", "status", {"state": "online", "boot_id": BOOT1, "seq_head": 0})])
    first = store.record_command("H1", "CART-01", "time", {"utc_ms": 1}, NOW)
    assert first is not None and (first.boot_id, first.counter) == (BOOT1, 1)
    store.close()
    store = SqliteStore(path)
    try:
        again = store.record_command("H1", "CART-01", "resend", {"from_seq": 2}, NOW)
        assert again is not None and again.counter == 2
    finally:
        store.close()


KEYS = KeyRing({"CART-01": wire.public_key_text(KEY.public_key())}, None)


def test_release_stores_a_record_once_its_cart_is_enrolled(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.sqlite")
    try:
        env = chain(1)[0]
        refused = checked(TOPIC, wire.encode(env), KeyRing({}, None))
        assert isinstance(refused, Rejected) and refused.kind == "UNKNOWN_CART"
        store.store_batch([refused], NOW)
        row = store.quarantined(1)[0]
        assert not release(store, KeyRing({}, None), row.id).ok
        done = release(store, KEYS, row.id, NOW)
        assert done.ok, done.text
        assert store.upto_seq("CART-01") == 1 and store.chain_state(env["id"]) == "verified"
        assert not release(store, KEYS, row.id).ok  # once
        with pytest.raises(GatewayError):
            release(store, KEYS, 999)
    finally:
        store.close()


class PoisonStore(SqliteStore):
    """A store whose transaction fails whenever it holds one given record: a poison message."""

    poison_id = ""

    def store_batch(self, items: Sequence[Incoming | Rejected], now: float,
                    devices: Sequence[DeviceUpdate] = ()) -> BatchResult:
        if any(isinstance(i, Incoming) and i.id == self.poison_id for i in items):
            raise GatewayStoreError("poison")
        return super().store_batch(items, now, devices)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_failing_batch_is_stored_message_by_message(tmp_path: Path) -> None:
    config = GatewayConfig(broker=f"mqtt://127.0.0.1:{_closed_port()}", data=tmp_path, platform="http://127.0.0.1:9",
                           client_id="test-gw-poison", ingest=IngestConfig(batch_max=10, linger_ms=200))
    store = PoisonStore(config.db_path)
    records = chain(5)
    store.poison_id = records[2]["id"]
    ingest = Ingest(config, store, KEYS, on_commit=lambda: None, on_change=lambda: None,
                    key=Ed25519PrivateKey.generate())
    try:
        ingest.start()
        for mid, env in enumerate(records, start=1):
            msg = mqtt.MQTTMessage(mid=mid, topic=TOPIC.encode())
            msg.payload, msg.qos = wire.encode(env), 1
            ingest._on_message(ingest._client, None, msg)
        ingest.stop()
        counts = store.counts()
        assert (counts["stored"], counts["quarantined"]) == (4, 1)  # the others stored (and acked)
        assert store.quarantined(1)[0].reason.startswith("store: poison")
        assert ingest.stats()["poison"] == 1
    finally:
        store.close()
