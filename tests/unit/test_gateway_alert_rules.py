"""The fleet's condition rules (pure) and the alert lifecycle on the gateway's real SQLite store:
open -> acknowledged (who, when, note) -> resolved, collapsed with a count, domain flags of stored
records, and every change queued for the webhook in the same commit."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge import wire
from gateway.alerts import rules
from gateway.alerts.catalogue import ALL_KINDS, CONDITION_KINDS
from gateway.alerts.record_flags import record_flags
from gateway.alerts.settings import AlertsConfig
from gateway.store import Alert, BatchResult, Condition, DeviceUpdate, FleetRow, Incoming, SqliteStore
from gateway.store.schema import ALERT_KINDS_V5
from tests import v2_bodies as v2

NOW = 1_700_000_000.0
LIMITS = AlertsConfig(offline_min=5, backlog_max=100, oldest_unsent_min=30, clock_offset_s=60, disk_free_mb=500,
                      peripheral_faulty_min=10, silence_min=15)
HEALTHY = {"backlog": 0, "oldest_unsent_s": None, "disk_free_mb": 9000, "clock": "ntp", "clock_offset_ms": 12,
           "scale": "connected", "camera": "ok", "printer": "ok", "actuator": "retracted"}


def row(online: bool | None = True, since: float = NOW - 3600, seen: float = NOW - 10,
        faulty: dict[str, float] | None = None, **telemetry: Any) -> FleetRow:
    """One cart's fleet row: healthy telemetry with ``telemetry`` over it."""
    return FleetRow("CART-01", "H1", online, since, seen, {**HEALTHY, **telemetry}, seen, faulty or {})


def kinds(fleet_row: FleetRow, now: float = NOW) -> set[str]:
    return {c.kind for c in rules.evaluate([fleet_row], LIMITS, now)}


def test_a_healthy_cart_holds_no_condition() -> None:
    assert kinds(row()) == set()


def test_offline_holds_only_after_offline_min_and_silence_counts_as_offline() -> None:
    assert kinds(row(online=False, since=NOW - 4 * 60)) == set()
    assert kinds(row(online=False, since=NOW - 6 * 60)) == {"OFFLINE"}
    assert kinds(row(online=True, seen=NOW - 16 * 60)) == {"OFFLINE"}  # online, but silent for too long
    assert kinds(row(online=None, seen=NOW - 99 * 60)) == set()  # no verified status: nothing to judge


@pytest.mark.parametrize(("telemetry", "kind"), [
    ({"backlog": 101}, "BACKLOG"),
    ({"oldest_unsent_s": 31 * 60}, "OLDEST_UNSENT"),
    ({"disk_free_mb": 499}, "DISK"),
    ({"clock": "unsynced"}, "CLOCK"),
    ({"clock_offset_ms": -61_000}, "CLOCK"),
])
def test_each_threshold_opens_its_kind_and_not_below(telemetry: dict[str, Any], kind: str) -> None:
    assert kinds(FleetRow("CART-01", "H1", True, NOW - 3600, NOW - 10, {**HEALTHY, **telemetry}, NOW - 10)) == {kind}
    just_inside: dict[str, Any] = {"backlog": 100, "oldest_unsent_s": 30 * 60, "disk_free_mb": 500, "clock": "gateway",
                   "clock_offset_ms": -60_000}
    assert kinds(FleetRow("CART-01", "H1", True, NOW - 3600, NOW - 10,
                          {**HEALTHY, **{k: just_inside[k] for k in telemetry}}, NOW - 10)) == set()


def test_a_peripheral_fault_holds_after_peripheral_faulty_min() -> None:
    assert kinds(row(printer="error", faulty={"printer": NOW - 9 * 60})) == set()
    (cond,) = rules.evaluate([row(printer="error", faulty={"printer": NOW - 11 * 60})], LIMITS, NOW)
    assert (cond.kind, cond.subject) == ("PERIPHERAL", "printer") and "printer error" in cond.detail


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "gateway.sqlite")
    s.enable_webhook(queue_max=50)
    yield s
    s.close()


def queued(store: SqliteStore) -> list[tuple[str, dict[str, Any]]]:
    db = sqlite3.connect(store.path)
    try:
        rows = db.execute("SELECT event, payload FROM webhook_outbox ORDER BY id").fetchall()
        return [(e, json.loads(p)["alert"]) for e, p in rows]
    finally:
        db.close()


def test_a_condition_opens_stays_one_row_and_resolves_when_it_clears(store: SqliteStore) -> None:
    offline = Condition("OFFLINE", "CART-01", "H1", "status offline", "offline since 6 min ago")
    assert store.apply_conditions({offline}, NOW) == [("opened", 1)]
    assert store.apply_conditions({offline}, NOW + 2) == []  # still holds: no change, no new row
    assert store.acknowledge_alert(1, "alice", "calling the ward", NOW + 3)
    alert = store.alert(1)
    assert alert is not None
    assert (alert["acknowledged_by"], alert["ack_note"], alert["resolved_at"]) == ("alice", "calling the ward", None)
    assert [a["id"] for a in store.alerts(state="acknowledged")] == [1]
    assert store.apply_conditions(set(), NOW + 4) == [("resolved", 1)]
    assert store.alerts(state="active") == [] and store.alerts(state="resolved")[0]["resolved_at"] == NOW + 4
    assert store.apply_conditions({offline}, NOW + 5) == [("opened", 2)]  # again: a new alert
    assert [e for e, _ in queued(store)] == ["opened", "acknowledged", "resolved", "opened"]
    assert store.counts()["alerts_active"] == 1


def test_an_event_alert_collapses_with_a_count_and_acknowledging_resolves_it(store: SqliteStore) -> None:
    for i in range(3):
        with store._tx("test") as db:
            store._alert(db, NOW + i, Alert("FORGED", "CART-01", "H1", f"r{i}", "bad signature"), BatchResult([]))
    (alert,) = store.alerts()
    assert (alert["count"], alert["subject"], alert["resolved_at"]) == (3, "r2", None)
    assert store.acknowledge_alert(alert["id"], "bob", "", NOW + 9)
    assert not store.acknowledge_alert(alert["id"], "bob", "", NOW + 10)  # once
    assert store.alert(alert["id"])["resolved_at"] == NOW + 9  # type: ignore[index]
    assert [e for e, _ in queued(store)] == ["opened", "acknowledged", "resolved"]
    assert queued(store)[0][1]["count"] == 1 and queued(store)[-1][1]["count"] == 3  # each a snapshot


def test_a_storage_check_in_with_flags_raises_the_domain_alerts(store: SqliteStore) -> None:
    body = {"facility": "ROOM-1", "summary": {"missing_count": 1, "deviation_count": 2, "overdue_count": 0}}
    envelope = json.dumps({"body": body})
    rec = Incoming("r-1", "H1", "CART-01", 1, "storage_in", "2026-01-01T00:00:00Z", "h" * 64, envelope, "t", b"",
                   wire.GENESIS_HASH)
    result = store.store_batch([rec], NOW)
    assert sorted(a.kind for a in result.alerts) == ["BAG_MISSING", "WEIGHT_DEVIATION"]
    assert "2 bag(s) re-weighed outside" in next(a for a in store.alerts() if a["kind"] == "WEIGHT_DEVIATION")["detail"]


def test_record_flags_of_a_check_in_keep_their_words_and_a_rejected_one_says_nothing_was_stored() -> None:
    v1 = {"facility": "ROOM-1", "summary": {"missing_count": 1, "deviation_count": 2, "overdue_count": 0}}
    assert record_flags("storage_in", 7, v1) == [
        ("WEIGHT_DEVIATION", "storage check-in at ROOM-1 (seq 7): 2 bag(s) re-weighed outside the tolerance"),
        ("BAG_MISSING", "storage check-in at ROOM-1 (seq 7): 1 bag(s) missing")]
    rejected = v2.storage_in((*v2.HANDED[:1], v2.Handed("V2BAG02", "SHARPS", 500, None, handed_over_at=v2.DAY_BEFORE)))
    flags = dict(record_flags("storage_in", 3, rejected))
    assert rejected["result"] == "REJECTED" and set(flags) == {"STORAGE_OVERDUE", "BAG_MISSING"}
    assert "check-in REJECTED: nothing was stored" in flags["BAG_MISSING"]
    assert record_flags("storage_in", 3, v2.storage_in()) == []


def test_record_flags_of_a_loss_and_of_a_transfer_with_overdue_bags() -> None:
    ((kind, detail),) = record_flags("incident", 4, v2.incident())
    assert kind == "BAG_MISSING"
    assert detail == ("incident LOST at ROOM1 (seq 4): 1 bag(s) (0.500 kg) declared lost, confirmed by SUP-01: "
                      "V2BAG02")
    assert record_flags("transfer", 5, v2.transfer()) == []  # one bag warned about, none overdue
    late = v2.transfer((v2.Moved("V2BAG01", "INFECTIOUS", 1240, v2.LONG_STORED),))
    assert record_flags("transfer", 5, late) == [
        ("STORAGE_OVERDUE", "transfer on 浙A·D1234 (seq 5): 1 bag(s) left storage after the in-storage limit "
                            "(limit 48 h)")]
    assert record_flags("handover", 1, v2.handover()) == [] and record_flags("incident", 1, "odd") == []


def test_the_webhook_queue_is_bounded_and_counts_what_it_dropped(store: SqliteStore) -> None:
    store.apply_conditions({Condition("BACKLOG", f"CART-{i:02d}", "H1", "backlog", "x") for i in range(60)}, NOW)
    assert store.counts()["webhook_queued"] == 50 and store.counts()["webhook_dropped"] == 10


def test_the_stores_kinds_are_the_catalogues_and_each_fits_the_table(store: SqliteStore) -> None:
    assert set(ALERT_KINDS_V5) == set(ALL_KINDS) and set(CONDITION_KINDS) <= set(ALL_KINDS)
    db = sqlite3.connect(store.path)
    try:
        for kind in ALL_KINDS:
            db.execute("INSERT INTO alerts (raised_at, kind, subject, detail, last_seen) VALUES (?, ?, '', '', ?)",
                       (NOW, kind, NOW))
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO alerts (raised_at, kind, subject, detail, last_seen) VALUES (?, 'NOPE', '', '', ?)",
                       (NOW, NOW))
        db.rollback()
    finally:
        db.close()


def test_online_since_and_faulty_since_follow_the_carts_messages(store: SqliteStore) -> None:
    boot = "0190a7a0-0000-7000-8000-000000000001"

    def status(state: str) -> DeviceUpdate:
        return DeviceUpdate("H1", "CART-01", "status", {"state": state, "boot_id": boot, "seq_head": 0})

    def telemetry(printer: str) -> DeviceUpdate:
        return DeviceUpdate("H1", "CART-01", "telemetry", {**HEALTHY, "boot_id": boot, "printer": printer})

    store.store_batch([], NOW, devices=[status("online"), telemetry("error")])
    store.store_batch([], NOW + 10, devices=[status("online"), telemetry("error")])
    (fleet,) = store.fleet_state()
    assert (fleet.online, fleet.online_since, fleet.faulty_since) == (True, NOW, {"printer": NOW})
    store.store_batch([], NOW + 20, devices=[status("offline"), telemetry("ok")])
    (fleet,) = store.fleet_state()
    assert (fleet.online, fleet.online_since, fleet.faulty_since) == (False, NOW + 20, {})


def test_migration_5_keeps_old_alerts_an_acknowledged_one_resolved(tmp_path: Path) -> None:
    from gateway.store.schema import MIGRATIONS

    path = tmp_path / "gateway.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    for number, statements in enumerate(MIGRATIONS[:4], start=1):
        for sql in statements:
            db.execute(sql)
        db.execute(f"PRAGMA user_version = {number}")
    db.execute("INSERT INTO alerts (raised_at, kind, cart, subject, detail, acknowledged_at, count, last_seen)"
               " VALUES (?, 'FORGED', 'CART-01', 's', 'd', ?, 4, ?), (?, 'SEQ_GAP', 'CART-01', 's', 'd', NULL, 1, ?)",
               (NOW, NOW + 1, NOW, NOW, NOW))
    db.close()
    s = SqliteStore(path)
    try:
        old, new = sorted(s.alerts(), key=lambda a: a["id"])
        assert (old["count"], old["resolved_at"], new["resolved_at"]) == (4, NOW + 1, None)
        assert [a["kind"] for a in s.alerts(state="active")] == ["SEQ_GAP"]
    finally:
        s.close()
