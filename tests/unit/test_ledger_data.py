"""The ledger bench's generator at a tiny size: its store is one the gateway would have made.

Every stored record passes the ingest's own checks (``check_message``: topic, schema, the cart's
key from the written ``.pub`` file), the chains link seq 1..n per cart, the ledger index equals the
one the store rebuilds from the envelopes itself, and the cache is reused, not regenerated.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from edge import wire
from gateway.ingest.checks import KeyRing, check_message
from gateway.store import SqliteStore, read_summary
from tests.bench import ledger_data

SIZE = ledger_data.Size(records=600, carts=3)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> ledger_data.Generated:
    return ledger_data.dataset(SIZE, tmp_path_factory.mktemp("ledger-cache"), workers=2)


def _index(db: sqlite3.Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    return (db.execute("SELECT * FROM ledger_records ORDER BY id").fetchall(),
            db.execute("SELECT * FROM ledger_bags ORDER BY record_id, package_code").fetchall())


def test_every_record_passes_the_ingest_checks_and_the_chains_link(generated: ledger_data.Generated) -> None:
    keys = KeyRing({}, generated.keys_dir)
    with sqlite3.connect(generated.db_path) as db:
        rows = db.execute("SELECT site, cart, seq, hash, prev_hash, envelope, chain FROM records"
                          " ORDER BY cart, seq").fetchall()
        noted = dict(db.execute("SELECT cart, public_key FROM cart_keys").fetchall())
    db.close()
    assert len(rows) == SIZE.records
    last: dict[str, tuple[int, str]] = {}
    for site, cart, seq, hash_, prev, envelope, chain in rows:
        rec = check_message(wire.topic(site, cart, wire.RECORD), envelope.encode(), keys)
        assert (rec.seq, rec.hash, rec.prev_hash, chain) == (seq, hash_, prev, "verified")
        before_seq, before_hash = last.get(cart, (0, wire.GENESIS_HASH))
        assert (seq, prev) == (before_seq + 1, before_hash), f"{cart} seq {seq}: chain broken"
        last[cart] = (seq, hash_)
    assert sorted(last) == [ledger_data.cart_id(i) for i in range(1, SIZE.carts + 1)]
    assert sum(s for s, _ in last.values()) == SIZE.records
    assert noted == {cart: keys.text(cart) for cart in last}  # the keys ingest would have noted


def test_the_store_opens_as_is_and_its_index_is_the_one_the_gateway_builds(
        generated: ledger_data.Generated, tmp_path: Path) -> None:
    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(generated.db_path) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
        before = _index(dst)
        dst.execute("DELETE FROM ledger_meta")  # the next open rebuilds the index from the envelopes
    src.close()
    dst.close()
    store = SqliteStore(generated.db_path)
    try:
        assert store.reindex() == 0  # version and zone as the gateway writes them: no rebuild at open
    finally:
        store.close()
    rebuilt = SqliteStore(copy)
    rebuilt.close()
    with sqlite3.connect(copy) as db:
        assert _index(db) == before
    db.close()
    types = Counter(r[4] for r in before[0])
    assert types["handover"] > types["storage_in"] > types["transfer"] > 0
    assert types["void"] > 0 and any(b[10] is not None for b in before[1])  # voids took bags out


def test_forward_states_and_carts_are_what_the_gateway_leaves(generated: ledger_data.Generated) -> None:
    summary = read_summary(generated.data)
    carts = summary["carts"]
    assert len(carts) == SIZE.carts
    assert all(c["chain_ok"] == c["stored"] == c["upto_seq"] == c["max_seq"] and not c["chain_broken"]
               for c in carts.values())
    assert summary["counts"]["accepted"] > 0.9 * SIZE.records
    assert generated.meta["first_day"] < generated.meta["last_day"]


def test_a_second_call_uses_the_cache(generated: ledger_data.Generated) -> None:
    again = ledger_data.dataset(SIZE, generated.root.parent)
    assert again.meta["cached"] is True and again.meta["rows"] == generated.meta["rows"]


def test_the_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ledger_data.RECORDS_ENV, "50_000")
    monkeypatch.delenv(ledger_data.CARTS_ENV, raising=False)
    assert ledger_data.size_from_env() == ledger_data.Size(50_000, 50)
    monkeypatch.setenv(ledger_data.CARTS_ENV, "many")
    with pytest.raises(ValueError, match=ledger_data.CARTS_ENV):
        ledger_data.size_from_env()
