"""Chain verification, sequence gaps, alerts and devices in the gateway store (real SQLite files)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge import wire
from gateway.errors import GatewayStoreError
from gateway.store import MIGRATIONS, DeviceUpdate, Rejected, SqliteStore, read_summary
from tests.unit.test_gateway_store import NOW, h, rec


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "gateway.sqlite")
    yield s
    s.close()


def kinds(store: SqliteStore) -> list[str]:
    return [a["kind"] for a in reversed(store.alerts())]


def test_in_order_records_are_verified(store: SqliteStore) -> None:
    store.store_batch([rec(1), rec(2), rec(3)], NOW)
    assert [store.chain_state(f"id-CART-1-{n}") for n in (1, 2, 3)] == ["verified"] * 3
    assert store.due_for_forwarding(NOW, 10)[-1].seq == 3
    assert kinds(store) == []


def test_out_of_order_record_waits_pending_then_is_verified(store: SqliteStore) -> None:
    result = store.store_batch([rec(1), rec(3)], NOW)
    assert store.chain_state("id-CART-1-3") == "pending"
    assert [p.seq for p in store.due_for_forwarding(NOW, 10)] == [1]  # pending is held back
    assert store.counts()["held"] == 1
    assert [(g.cart, g.from_seq, g.max_seq) for g in result.gaps] == [("CART-1", 2, 3)]
    store.store_batch([rec(2)], NOW)
    assert store.chain_state("id-CART-1-3") == "verified"
    assert [p.seq for p in store.due_for_forwarding(NOW, 10)] == [1, 2, 3]
    assert kinds(store) == ["SEQ_GAP"]


def test_a_run_of_pending_records_is_verified_when_the_gap_fills(store: SqliteStore) -> None:
    store.store_batch([rec(1), rec(3), rec(4)], NOW)
    assert [store.chain_state(f"id-CART-1-{n}") for n in (3, 4)] == ["pending", "pending"]  # 4 waits for 3
    assert [p.seq for p in store.due_for_forwarding(NOW, 10)] == [1]
    store.store_batch([rec(2)], NOW + 1)
    assert [store.chain_state(f"id-CART-1-{n}") for n in (1, 2, 3, 4)] == ["verified"] * 4
    assert [p.seq for p in store.due_for_forwarding(NOW + 1, 10)] == [1, 2, 3, 4]


def test_record_contradicting_a_stored_predecessor_is_quarantined(store: SqliteStore) -> None:
    store.store_batch([rec(1)], NOW)
    out = store.store_batch([rec(2, prev=h("something else"))], NOW).outcomes[0]
    assert (out.status, out.kind) == ("rejected", "CHAIN_BREAK")
    assert store.counts()["stored"] == 1
    q = store.quarantined()[0]
    assert (q.kind, q.cart, q.subject) == ("CHAIN_BREAK", "CART-1", "id-CART-1-2")
    assert kinds(store) == ["CHAIN_BREAK"]


def test_first_record_must_start_at_genesis(store: SqliteStore) -> None:
    out = store.store_batch([rec(1, prev=h("x"))], NOW).outcomes[0]
    assert (out.status, out.kind) == ("rejected", "CHAIN_BREAK")
    assert out.reason == "chain: seq 1 does not start from the genesis hash"


def test_pending_record_contradicted_later_is_broken_and_never_forwarded(store: SqliteStore,
                                                                          tmp_path: Path) -> None:
    store.store_batch([rec(1), rec(3, prev=h("not seq 2")), rec(4)], NOW)
    assert store.chain_state("id-CART-1-3") == "pending"
    result = store.store_batch([rec(2)], NOW)
    assert [o.status for o in result.outcomes] == ["stored"]
    assert store.chain_state("id-CART-1-3") == "broken"
    assert store.chain_state("id-CART-1-4") == "verified"  # linked to 3: the break is 3's alone
    assert [(a.kind, a.subject) for a in result.alerts] == [("CHAIN_BREAK", "id-CART-1-3")]
    assert [p.seq for p in store.due_for_forwarding(NOW, 10)] == [1, 2, 4]
    assert store.upto_seq("CART-1") == 4  # stored, so the cart is acked and does not resend it
    cart = read_summary(tmp_path)["carts"]["CART-1"]
    assert (cart["chain_ok"], cart["chain_pending"], cart["chain_broken"]) == (3, 0, 1)


def test_gap_alert_is_raised_once_per_gap(store: SqliteStore) -> None:
    assert store.store_batch([rec(1), rec(2)], NOW).gaps == []
    first = store.store_batch([rec(5)], NOW)
    assert [(g.upto_seq, g.max_seq) for g in first.gaps] == [(2, 5)]
    assert [(a.kind, a.subject) for a in first.alerts] == [("SEQ_GAP", "seq 3")]
    again = store.store_batch([rec(3), rec(6)], NOW)  # partly filled, still open: no new alert
    assert [(g.from_seq, g.max_seq) for g in again.gaps] == [(4, 6)]
    assert again.alerts == []
    assert [g.from_seq for g in store.open_gaps()] == [4]
    closed = store.store_batch([rec(4)], NOW)
    assert closed.gaps == [] and store.open_gaps() == []
    later = store.store_batch([rec(8)], NOW)  # a new gap: counted on the cart's open SEQ_GAP alert
    assert later.alerts == []
    (alert,) = store.alerts()
    assert (alert["kind"], alert["subject"], alert["count"]) == ("SEQ_GAP", "seq 7", 2)


def test_replayed_content_and_plain_duplicates(store: SqliteStore) -> None:
    store.store_batch([rec(1)], NOW)
    dup = store.store_batch([rec(1)], NOW)
    assert dup.outcomes[0].status == "duplicate" and dup.alerts == []  # a re-delivery, not an alert
    replay = store.store_batch([rec(1, rid="another-id")], NOW)  # same seq, other content
    assert (replay.outcomes[0].kind, replay.alerts[0].kind) == ("REPLAYED", "REPLAYED")
    reused = store.store_batch([rec(2, rid="id-CART-1-1", hash_=h("x"))], NOW)  # same id, other content
    assert reused.outcomes[0].kind == "REPLAYED"
    assert kinds(store) == ["REPLAYED"]  # one alert per kind and cart, counted
    assert store.alerts()[0]["count"] == 2


def test_rejected_items_raise_their_kind_in_the_same_commit(store: SqliteStore) -> None:
    items = [Rejected("wc/v1/H1/CART-9/record", b"x", f"reason {k}", k, "H1", "CART-9", f"rid-{k}")
             for k in ("FORGED", "ALTERED", "UNKNOWN_CART", "MALFORMED")]
    result = store.store_batch(items, NOW)
    assert [a.kind for a in result.alerts] == ["FORGED", "ALTERED", "UNKNOWN_CART", "MALFORMED"]
    assert store.counts()["quarantined"] == 4
    store.store_batch(items[:1], NOW + 1)  # the same again: quarantined again, alert still open
    assert (store.counts()["quarantined"], store.counts()["alerts"]) == (5, 4)
    alert_id = store.alerts()[-1]["id"]
    assert store.acknowledge_alert(alert_id, "op", "seen", NOW + 2)
    store.store_batch(items[:1], NOW + 3)  # acknowledged: the next one is a new alert
    assert store.counts()["alerts"] == 5
    row = store.alerts()[0]
    assert {k: row[k] for k in ("kind", "cart", "site", "subject", "detail")} == {
        "kind": "FORGED", "cart": "CART-9", "site": "H1", "subject": "rid-FORGED", "detail": "reason FORGED"}


def test_garbage_without_a_cart_is_alerted_by_topic(store: SqliteStore) -> None:
    result = store.store_batch([Rejected("nonsense/topic", b"\x00", "topic: not ours")], NOW)
    assert [(a.kind, a.cart, a.subject) for a in result.alerts] == [("MALFORMED", None, "nonsense/topic")]


def test_devices_track_status_and_telemetry(store: SqliteStore, tmp_path: Path) -> None:
    store.store_batch([rec(seq) for seq in range(1, 8)], NOW)
    b1 = "0190a7a0-0000-7000-8000-000000000001"
    store.store_batch([], NOW, devices=[
        DeviceUpdate("H1", "CART-1", "status", {"state": "online", "boot_id": b1, "seq_head": 7}),
        DeviceUpdate("H1", "CART-1", "telemetry", {"backlog": 3, "disk_free_mb": 900})])
    dev = store.device("CART-1")
    assert dev is not None
    assert (dev["online"], dev["boot_id"], dev["seq_head"], dev["last_seen"]) == (1, b1, 7, NOW)
    assert dev["telemetry"] == {"backlog": 3, "disk_free_mb": 900}
    will = {"state": "offline", "boot_id": b1, "seq_head": 7}
    store.store_batch([], NOW + 5, devices=[DeviceUpdate("H1", "CART-1", "status", will)])
    dev = store.device("CART-1")
    assert dev is not None and (dev["online"], dev["status"], dev["telemetry_at"]) == (0, will, NOW)
    cart = read_summary(tmp_path)["carts"]["CART-1"]
    assert (cart["online"], cart["last_seen"], cart["stored"]) == (False, NOW + 5, 7)


def test_read_summary_keys_and_read_only(store: SqliteStore, tmp_path: Path) -> None:
    store.store_batch([rec(1), rec(3), Rejected("t", b"x", "bad", "FORGED", "H1", "CART-1", "r")], NOW)
    summary = read_summary(tmp_path)
    assert summary["counts"]["stored"] == 2
    assert summary["counts"]["redeliveries"] == 0
    assert summary["counts"]["alerts_by_kind"] == {"FORGED": 1, "SEQ_GAP": 1}
    assert summary["carts"]["CART-1"]["upto_seq"] == 1
    assert summary["carts"]["CART-1"]["max_seq"] == 3
    assert {(a["kind"], a["cart"], a["subject"]) for a in summary["alerts"]} == {
        ("FORGED", "CART-1", "r"), ("SEQ_GAP", "CART-1", "seq 2")}
    assert summary["quarantine"][0]["kind"] == "FORGED"
    assert summary["dead"] == []
    with pytest.raises(GatewayStoreError, match="no gateway database"):
        read_summary(tmp_path / "nowhere")


def test_migration_from_version_1_keeps_rows_and_derives_chain(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    for sql in MIGRATIONS[0]:
        db.execute(sql)
    db.execute("PRAGMA user_version = 1")
    for seq, prev in ((1, wire.GENESIS_HASH), (2, h("id-1")), (4, h("id-3"))):
        env = f'{{"id": "id-{seq}", "prev_hash": "{prev}"}}'
        db.execute("INSERT INTO records (id, site, cart, seq, type, created_at, hash, envelope, received_at,"
                   " next_attempt_at) VALUES (?, 'H1', 'C', ?, 'handover', 't', ?, ?, 0, 0)",
                   (f"id-{seq}", seq, h(f"id-{seq}"), env))
    db.execute("INSERT INTO carts VALUES ('C', 'H1', 2)")
    db.close()
    store = SqliteStore(path)
    try:
        assert [store.chain_state(f"id-{n}") for n in (1, 2, 4)] == ["verified", "verified", "pending"]
        assert [(g.from_seq, g.max_seq) for g in store.open_gaps()] == [(3, 4)]
    finally:
        store.close()
