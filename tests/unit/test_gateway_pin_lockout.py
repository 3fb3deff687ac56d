"""PIN_LOCKOUT on the gateway's real SQLite store: raised when a cart's telemetry says its kiosk locked
PIN entry since the previous telemetry of the same boot, collapsed on repeats, never for a replay."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from gateway.ingest import KeyRing, check_device
from gateway.store import DeviceUpdate, SqliteStore

NOW = 1_700_000_000.0
BOOT1 = "0190a7a0-0000-7000-8000-000000000001"
BOOT2 = "0190a7a0-0000-7000-8000-000000000002"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "gateway.sqlite")
    yield s
    s.close()


def telemetry(boot: str, lockouts: int, failures: int) -> DeviceUpdate:
    return DeviceUpdate("H1", "CART-01", "telemetry", {
        "at": "2026-01-01T00:00:00Z", "backlog": 0, "oldest_unsent_s": None, "disk_free_mb": 100,
        "boot_id": boot, "seq_head": 0, "pin_failures": failures, "pin_lockouts": lockouts})


def status(boot: str) -> DeviceUpdate:
    return DeviceUpdate("H1", "CART-01", "status", {"state": "online", "boot_id": boot, "seq_head": 0})


def pin_alerts(store: SqliteStore) -> list[dict[str, Any]]:
    return [a for a in store.alerts() if a["kind"] == "PIN_LOCKOUT"]


def test_a_rising_lockout_count_raises_one_alert_and_repeats_collapse(store: SqliteStore) -> None:
    store.store_batch([], NOW, devices=[status(BOOT1), telemetry(BOOT1, 0, 2)])
    assert pin_alerts(store) == []
    result = store.store_batch([], NOW + 10, devices=[telemetry(BOOT1, 1, 6)])
    assert [a.kind for a in result.alerts] == ["PIN_LOCKOUT"]
    store.store_batch([], NOW + 20, devices=[telemetry(BOOT1, 1, 6)])  # the same count again: nothing new
    (alert,) = pin_alerts(store)
    assert (alert["cart"], alert["count"]) == ("CART-01", 1)
    assert "1 lockout(s) and 6 wrong PIN(s)" in alert["detail"]
    store.store_batch([], NOW + 30, devices=[telemetry(BOOT1, 2, 12)])  # another lockout: the same row, counted
    (alert,) = pin_alerts(store)
    assert alert["count"] == 2 and "2 lockout(s) and 12 wrong PIN(s)" in alert["detail"]


def test_a_new_boots_first_telemetry_with_a_lockout_raises_it(store: SqliteStore) -> None:
    store.store_batch([], NOW, devices=[status(BOOT1), telemetry(BOOT1, 3, 20)])
    assert pin_alerts(store)[0]["count"] == 1
    store.store_batch([], NOW + 1, devices=[status(BOOT2), telemetry(BOOT2, 1, 6)])  # counts restart at boot
    assert pin_alerts(store)[0]["count"] == 2
    store.store_batch([], NOW + 2, devices=[telemetry(BOOT2, 0, 0)])  # (lower: never an alert)
    result = store.store_batch([], NOW + 3, devices=[telemetry(BOOT1, 9, 99)])  # a replay of boot 1
    assert [a.kind for a in result.alerts] == ["REPLAYED"] and pin_alerts(store)[0]["count"] == 2


def test_a_telemetry_without_pin_counts_raises_nothing(store: SqliteStore) -> None:
    plain = DeviceUpdate("H1", "CART-01", "telemetry", {"backlog": 3, "disk_free_mb": 900})
    assert store.store_batch([], NOW, devices=[plain]).alerts == []


def test_the_pin_counts_are_bounded_on_the_wire() -> None:
    key = Ed25519PrivateKey.generate()
    body = telemetry(BOOT1, 1, 6).data
    payload = wire.sign_message(wire.TELEMETRY_KIND, "H1", "CART-01", body, key)
    assert check_device("wc/v1/H1/CART-01/telemetry", payload,
                        KeyRing({"CART-01": wire.public_key_text(key.public_key())}, None)).data == body
    for bad in (-1, 2**53, True):
        with pytest.raises(wire.ContractError):
            wire.sign_message(wire.TELEMETRY_KIND, "H1", "CART-01", {**body, "pin_lockouts": bad}, key)


def test_every_wire_alert_kind_fits_the_stores_table(store: SqliteStore) -> None:
    """A kind added to ``wire.ALERT_KINDS`` needs a migration that lets the alerts table hold it."""
    db = sqlite3.connect(store.path)
    try:
        for kind in wire.ALERT_KINDS:
            db.execute("INSERT INTO alerts (raised_at, kind, subject, detail, last_seen) VALUES (?, ?, '', '', ?)",
                       (NOW, kind, NOW))
        db.rollback()
    finally:
        db.close()
