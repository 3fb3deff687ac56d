"""The gateway's SQLite store on real files: batches, de-duplication, high-water mark, outbox states."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge import wire
from gateway.errors import GatewayStoreError
from gateway.store import MIGRATIONS, Incoming, Rejected, SqliteStore

NOW = 1_700_000_000.0


def h(text: str) -> str:
    """A 64-hex stand-in hash for a record id (the store checks chains, not seals)."""
    return hashlib.sha256(text.encode()).hexdigest()


def rec(seq: int, cart: str = "CART-1", *, rid: str | None = None, hash_: str | None = None,
        prev: str | None = None) -> Incoming:
    """Record ``seq`` of ``cart``, chained to ``id-{cart}-{seq-1}`` unless ``prev`` says otherwise."""
    rid = rid or f"id-{cart}-{seq}"
    prev_hash = prev or (wire.GENESIS_HASH if seq == 1 else h(f"id-{cart}-{seq - 1}"))
    return Incoming(id=rid, site="H1", cart=cart, seq=seq, type="handover",
                    created_at="2024-01-01T00:00:00+08:00", hash=hash_ or h(rid),
                    envelope=f'{{"id": "{rid}", "body": {{"n": {seq}}}}}',
                    topic=f"wc/v1/H1/{cart}/record", payload=b"{}", prev_hash=prev_hash)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "gw" / "gateway.sqlite")
    yield s
    s.close()


def test_schema_is_migrated_with_wal(store: SqliteStore) -> None:
    db = sqlite3.connect(store.path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()


def test_reopen_keeps_rows_and_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    s = SqliteStore(path)
    s.store_batch([rec(1)], NOW)
    s.close()
    s = SqliteStore(path)
    assert s.counts()["stored"] == 1
    s.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(GatewayStoreError, match="newer"):
        SqliteStore(path)


def test_batch_stores_every_record_in_one_go(store: SqliteStore) -> None:
    outcomes = store.store_batch([rec(1), rec(2), rec(3)], NOW).outcomes
    assert [o.status for o in outcomes] == ["stored"] * 3
    assert [o.id for o in outcomes] == ["id-CART-1-1", "id-CART-1-2", "id-CART-1-3"]
    assert store.upto_seq("CART-1") == 3
    c = store.counts()
    assert (c["received"], c["stored"], c["pending"], c["duplicates"]) == (3, 3, 3, 0)


def test_duplicate_by_id_and_by_cart_seq(store: SqliteStore) -> None:
    store.store_batch([rec(1)], NOW)
    # same record again (same id, same hash), and twice within one batch
    outcomes = store.store_batch([rec(1), rec(2), rec(2)], NOW).outcomes
    assert [o.status for o in outcomes] == ["duplicate", "stored", "duplicate"]
    assert outcomes[0].id == "id-CART-1-1"
    # same (cart, seq) and hash under another id: a duplicate, acked with the stored id
    out = store.store_batch([rec(2, rid="other-id", hash_=h("id-CART-1-2"))], NOW).outcomes[0]
    assert (out.status, out.id) == ("duplicate", "id-CART-1-2")
    c = store.counts()
    assert (c["received"], c["stored"], c["duplicates"], c["quarantined"]) == (5, 2, 3, 0)


def test_conflicts_are_rejected_and_quarantined(store: SqliteStore) -> None:
    store.store_batch([rec(1)], NOW)
    taken = store.store_batch([rec(1, rid="forged-id")], NOW).outcomes[0]
    assert taken.status == "rejected"
    assert taken.reason == "seq 1 of cart CART-1 already taken by record id-CART-1-1"
    reused = store.store_batch([rec(2, rid="id-CART-1-1", hash_=h("other"))], NOW).outcomes[0]
    assert reused.status == "rejected"
    assert reused.reason is not None and "already stored with different content" in reused.reason
    assert [q.reason for q in store.quarantined()] == [reused.reason, taken.reason]
    assert store.counts()["quarantined"] == 2
    assert store.counts()["stored"] == 1


def test_rejected_items_share_the_batch_commit(store: SqliteStore) -> None:
    outcomes = store.store_batch([Rejected("wc/v1/H1/C/record", b"\xff", "payload is not JSON"), rec(1)], NOW).outcomes
    assert [o.status for o in outcomes] == ["rejected", "stored"]
    store.quarantine("bad/topic", b"x", "topic: not ours", NOW + 1)
    rows = store.quarantined()
    assert [(r.topic, r.payload, r.reason) for r in rows] == [
        ("bad/topic", b"x", "topic: not ours"), ("wc/v1/H1/C/record", b"\xff", "payload is not JSON")]
    c = store.counts()
    assert (c["received"], c["stored"], c["quarantined"]) == (3, 1, 2)


def test_upto_seq_stops_at_gaps_and_moves_when_filled(store: SqliteStore) -> None:
    assert store.upto_seq("CART-1") == 0
    store.store_batch([rec(2), rec(3)], NOW)
    assert store.upto_seq("CART-1") == 0
    store.store_batch([rec(1), rec(5), rec(1, cart="CART-2")], NOW)
    assert store.upto_seq("CART-1") == 3
    assert store.upto_seq("CART-2") == 1
    store.store_batch([rec(4)], NOW)
    assert store.upto_seq("CART-1") == 5


def test_forward_state_transitions(store: SqliteStore) -> None:
    store.store_batch([rec(1), rec(2), rec(3)], NOW)
    due = store.due_for_forwarding(NOW, limit=10)
    assert [p.seq for p in due] == [1, 2, 3]
    assert due[0].envelope == {"id": "id-CART-1-1", "body": {"n": 1}}
    assert store.due_for_forwarding(NOW, limit=2)[-1].seq == 2

    for p in due:
        store.mark_forwarding(p.id, NOW)
    assert store.due_for_forwarding(NOW, limit=10) == []  # in flight: not due twice
    store.mark_accepted("id-CART-1-1", NOW + 1)
    store.mark_retry("id-CART-1-2", "HTTP 503: busy", NOW + 60)
    store.mark_dead("id-CART-1-3", "HTTP 422: bad field")
    assert store.due_for_forwarding(NOW + 1, limit=10) == []
    assert store.next_attempt_at() == NOW + 60
    later = store.due_for_forwarding(NOW + 60, limit=10)
    assert [(p.seq, p.attempts) for p in later] == [(2, 1)]
    assert store.record_state("id-CART-1-2") == {
        "forward_state": "stored", "attempts": 1, "next_attempt_at": NOW + 60,
        "last_error": "HTTP 503: busy", "accepted_at": None, "sent_at": NOW, "redelivered": 0,
        "outcome_unknown": 0, "chain": "verified"}
    assert store.record_state("id-CART-1-1") == {
        "forward_state": "accepted", "attempts": 1, "next_attempt_at": NOW,
        "last_error": None, "accepted_at": NOW + 1, "sent_at": NOW, "redelivered": 0,
        "outcome_unknown": 0, "chain": "verified"}
    state = store.record_state("id-CART-1-3")
    assert state is not None and (state["forward_state"], state["last_error"]) == ("dead", "HTTP 422: bad field")
    c = store.counts()
    assert (c["accepted"], c["pending"], c["dead"], c["stored"]) == (1, 1, 1, 3)

    with pytest.raises(GatewayStoreError, match="not waiting"):
        store.mark_forwarding("id-CART-1-1", NOW + 2)  # accepted is final
    with pytest.raises(GatewayStoreError, match="no attempt in progress"):
        store.mark_accepted("id-CART-1-2", NOW + 2)  # an outcome needs an attempt
    assert store.mark_forwarding("id-CART-1-2", NOW + 60) == 2
    store.mark_accepted("id-CART-1-2", NOW + 61)
    assert store.next_attempt_at() is None
    assert store.dead_letters() == [{"id": "id-CART-1-3", "site": "H1", "cart": "CART-1", "seq": 3,
                                     "type": "handover", "attempts": 1, "reason": "HTTP 422: bad field",
                                     "received_at": NOW}]


def test_sqlite_errors_are_translated(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(GatewayStoreError, match="cannot open"):
        SqliteStore(tmp_path / "dir.sqlite")
