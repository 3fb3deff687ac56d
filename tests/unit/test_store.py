"""The cart ledger on real SQLite files: chain, signatures, sync marks, reopening."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import keys, wire
from edge.errors import DiskFullError, EdgeError, StoreError
from edge.ledger.export import read_ledger
from edge.ledger.store import LEDGER_FILE, Ledger

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
CLOCK = wire.Clock("unsynced", 1)


def test_commits_chain_and_verify(tmp_path: Path) -> None:
    key = keys.load_or_create(tmp_path)
    led = Ledger(tmp_path, "CART-01", key)
    done = [led.commit("handover", {"n": i}, now=NOW, clock=CLOCK) for i in range(3)]
    assert [c.seq for c in done] == [1, 2, 3]
    out = led.unsynced()
    envs = [json.loads(o.payload) for o in out]
    assert envs[0]["prev_hash"] == wire.GENESIS_HASH
    for prev, env in itertools.pairwise(envs):
        assert env["prev_hash"] == prev["hash"]
    for env in envs:
        wire.verify_seal(env, key.public_key())
    led.close()


def test_sync_marks_and_reopen_keep_seq(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    led = Ledger(tmp_path, "CART-01", key)
    ids = [led.commit("handover", {"n": i}, now=NOW, clock=CLOCK).id for i in range(5)]
    assert led.mark_synced(2, [ids[3]], NOW) == 3
    assert [o.seq for o in led.unsynced()] == [3, 5]
    assert [o.seq for o in led.unsynced(after_seq=3)] == [5]
    assert led.backlog()[0] == 2
    led.close()
    led = Ledger(tmp_path, "CART-01", key)
    assert led.commit("handover", {}, now=NOW, clock=CLOCK).seq == 6
    rows = read_ledger(tmp_path)
    assert [(r["seq"], r["synced"]) for r in rows] == [(1, True), (2, True), (3, False), (4, True),
                                                        (5, False), (6, False)]
    led.close()


def test_ledger_refuses_another_carts_file(tmp_path: Path) -> None:
    Ledger(tmp_path, "CART-01", Ed25519PrivateKey.generate()).close()
    with pytest.raises(StoreError, match="belongs to cart CART-01"):
        Ledger(tmp_path, "CART-02", Ed25519PrivateKey.generate())


def test_failed_commit_leaves_nothing_half_written(tmp_path: Path) -> None:
    led = Ledger(tmp_path, "CART-01", Ed25519PrivateKey.generate())
    led.commit("handover", {}, now=NOW, clock=CLOCK)
    with pytest.raises(StoreError):
        led.commit("handover", {"w": 1.5}, now=NOW, clock=CLOCK)  # floats never reach the wire
    assert led.commit("handover", {}, now=NOW, clock=CLOCK).seq == 2
    led.close()
    db = sqlite_utils.Database(tmp_path / LEDGER_FILE)
    assert db.journal_mode == "wal"
    db.close()


@pytest.mark.parametrize(("body", "reason"), [
    ({"bags": [{"weight_kg": 1.25}]}, "/bags/0/weight_kg: floats are not allowed"),
    ({"w": float("nan")}, "/w: floats are not allowed"),
    ({"seen": {"B1", "B2"}}, "not JSON serializable"),
])
def test_a_body_the_wire_refuses_is_a_store_error_and_changes_nothing(
        tmp_path: Path, body: dict[str, object], reason: str) -> None:
    """The bug of issue 10: wire.ContractError escaped commit and the workflow hung in SAVING.
    Every refusal is a StoreError (the agent's CommitFailed) and the ledger is as it was."""
    led = Ledger(tmp_path, "CART-01", Ed25519PrivateKey.generate())
    first = led.commit("handover", {"n": 1}, now=NOW, clock=CLOCK)
    with pytest.raises(StoreError) as info:
        led.commit("handover", body, now=NOW, clock=CLOCK)
    assert not isinstance(info.value, DiskFullError)
    assert info.value.key == "ledger.not_recordable"
    assert reason in str(info.value) and "记录未保存" in str(info.value)
    assert isinstance(info.value.__cause__, (wire.ContractError, TypeError))
    assert (led.head(), led.unsynced_count(), led.backlog()[0]) == (1, 1, 1)
    rows = read_ledger(tmp_path)
    assert [r["seq"] for r in rows] == [1]
    good = led.commit("handover", {"n": 2}, now=NOW, clock=CLOCK)
    assert good.seq == 2
    assert json.loads(led.unsynced()[1].payload)["prev_hash"] == first.hash  # the chain goes on unbroken
    led.close()


def test_a_file_that_is_not_a_ledger_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / LEDGER_FILE).write_bytes(b"this is not an SQLite database, just bytes" * 100)
    with pytest.raises(StoreError, match="cannot open the ledger") as info:
        Ledger(tmp_path, "CART-01", Ed25519PrivateKey.generate())
    assert info.value.key == "ledger.cannot_open" and "无法打开记录库" in str(info.value)


def test_read_ledger_names_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no ledger"):
        read_ledger(tmp_path / "nope")


def test_key_is_created_once_and_private(tmp_path: Path) -> None:
    k1 = keys.load_or_create(tmp_path)
    k2 = keys.load_or_create(tmp_path)
    assert wire.public_key_text(k1.public_key()) == wire.public_key_text(k2.public_key())
    assert (tmp_path / keys.KEY_FILE).stat().st_mode & 0o077 == 0


def test_an_unreadable_key_names_its_file(tmp_path: Path) -> None:
    (tmp_path / keys.KEY_FILE).write_text("not a key")
    with pytest.raises(EdgeError, match="not a readable Ed25519 private key") as info:
        keys.load_or_create(tmp_path)
    assert info.value.key == "key.unreadable" and str(tmp_path / keys.KEY_FILE) in str(info.value)


def test_purge_removes_only_old_synced_records_and_never_reuses_a_seq(tmp_path: Path) -> None:
    led = Ledger(tmp_path, "CART-01", Ed25519PrivateKey.generate())
    for i in range(4):
        led.commit("handover", {"n": i}, now=NOW, clock=CLOCK)
    led.mark_synced(3, [], NOW)  # seq 1-3 synced at NOW, seq 4 not
    assert led.purge_synced(NOW - timedelta(days=1)) == 0  # nothing older than that
    assert led.purge_synced(NOW + timedelta(seconds=1)) == 3
    assert [r["seq"] for r in read_ledger(tmp_path)] == [4]  # unsynced is never purged
    assert led.commit("handover", {}, now=NOW, clock=CLOCK).seq == 5
    assert led.purge_synced(NOW + timedelta(days=365)) == 0
    assert led.unsynced_count() == 2
    led.close()


def test_low_disk_refuses_new_records_with_a_clear_message(tmp_path: Path) -> None:
    led = Ledger(tmp_path, "CART-01", Ed25519PrivateKey.generate())
    led.commit("handover", {}, now=NOW, clock=CLOCK)
    led.min_free_mb = 10**9  # more than any disk has
    with pytest.raises(DiskFullError, match=r"磁盘空间不足.*record NOT saved"):
        led.commit("handover", {}, now=NOW, clock=CLOCK)
    assert led.mark_synced(1, [], NOW) == 1  # acks still recorded: nothing committed is at risk
    led.min_free_mb = 0
    assert led.commit("handover", {}, now=NOW, clock=CLOCK).seq == 2
    led.close()


def test_a_rejected_record_is_never_synced_purged_or_sent_and_holds_nothing_back(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    led = Ledger(tmp_path, "CART-01", key)
    done = [led.commit("handover", {"n": i}, now=NOW, clock=CLOCK) for i in range(4)]
    sha = led.payload_sha256(2)
    assert sha is not None
    assert led.mark_rejected(done[1].id, 2, "0" * 64, "FORGED", "a copy", NOW) == "other_bytes"  # not our bytes
    assert led.mark_rejected(done[1].id, 2, sha, "FORGED", "signature", NOW) == "marked"
    assert led.mark_rejected(done[1].id, 2, sha, "FORGED", "signature", NOW) == "already"  # a replay
    assert led.mark_rejected(done[1].id, 3, sha, "FORGED", "", NOW) == "unknown"  # id and seq must both match
    assert led.mark_rejected("01890000-0000-7000-8000-000000000009", 2, sha, "FORGED", "", NOW) == "unknown"
    assert [o.seq for o in led.unsynced()] == [1, 3, 4]  # the drain skips it
    assert (led.unsynced_count(), led.rejected_count(), led.backlog()[0]) == (3, 1, 3)
    assert led.mark_synced(4, [done[1].id], NOW) == 3  # upto goes past it; it stays rejected
    assert led.synced_high() == 4 and led.unsynced_count() == 0
    assert led.purge_synced(NOW + timedelta(days=365)) == 3
    led.close()
    led = Ledger(tmp_path, "CART-01", key)  # the counts come back from the file
    assert (led.unsynced_count(), led.rejected_count(), led.synced_high()) == (0, 1, 0)
    rows = read_ledger(tmp_path)
    assert [(r["seq"], r["synced"], r["rejected"]) for r in rows] == [(2, False, "FORGED")]
    led.close()


def test_a_synced_record_is_never_rejected(tmp_path: Path) -> None:
    """The gateway stored it: a reject naming it can only be of someone else's copy."""
    led = Ledger(tmp_path, "CART-01", Ed25519PrivateKey.generate())
    c = led.commit("handover", {}, now=NOW, clock=CLOCK)
    led.mark_synced(1, [], NOW)
    sha = led.payload_sha256(1)
    assert sha is not None and led.mark_rejected(c.id, 1, sha, "SCHEMA", "", NOW) == "synced"
    assert (led.unsynced_count(), led.rejected_count()) == (0, 0)
    assert read_ledger(tmp_path)[0]["synced"] is True
    led.close()


def test_hashes_ids_and_the_synced_high_water_for_acks(tmp_path: Path) -> None:
    led = Ledger(tmp_path, "CART-01", Ed25519PrivateKey.generate())
    done = [led.commit("handover", {"n": i}, now=NOW, clock=CLOCK) for i in range(3)]
    assert led.hash_at(0) == wire.GENESIS_HASH and led.hash_at(2) == done[1].hash and led.hash_at(9) is None
    assert led.seqs_of([done[2].id, "01890000-0000-7000-8000-000000000009"]) == {done[2].id: 3}
    assert led.seqs_of([]) == {}
    assert led.synced_high() == 0
    led.mark_synced(0, [done[2].id], NOW)
    assert led.synced_high() == 3
    led.close()


def test_a_ledger_of_the_first_version_is_migrated(tmp_path: Path) -> None:
    """Migration 2 (rejects) on a file made before it: the records and their sync marks stay."""
    key = Ed25519PrivateKey.generate()
    led = Ledger(tmp_path, "CART-01", key)
    for i in range(2):
        led.commit("handover", {"n": i}, now=NOW, clock=CLOCK)
    led.mark_synced(1, [], NOW)
    led.close()
    with sqlite_utils.Database(tmp_path / LEDGER_FILE) as db:  # back to how version 1 left it
        db.execute("DROP INDEX records_unsent")
        for column in ("rejected_reason", "rejected_detail", "rejected_at"):
            db.execute(f"ALTER TABLE records DROP COLUMN {column}")
        db.execute("CREATE INDEX records_unsynced ON records(seq) WHERE synced_at IS NULL")
        db.execute("PRAGMA user_version=1")
    led = Ledger(tmp_path, "CART-01", key)
    assert (led.head(), led.unsynced_count(), led.rejected_count(), led.synced_high()) == (2, 1, 0, 1)
    with sqlite_utils.Database(tmp_path / LEDGER_FILE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert {"rejected_reason", "rejected_detail", "rejected_at"} <= set(db["records"].columns_dict)
    led.close()


def test_the_ledger_signs_the_carts_messages_with_its_key(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    led = Ledger(tmp_path, "CART-01", key)
    body = {"state": "online", "boot_id": "01890000-0000-7000-8000-000000000001", "seq_head": 0}
    payload = led.sign(wire.STATUS_KIND, "H1", body)
    assert wire.open_message(payload, kinds=[wire.STATUS_KIND], site="H1", cart="CART-01",
                             keys=[key.public_key()]) == (wire.STATUS_KIND, body)
    with pytest.raises(wire.ContractError):
        led.sign(wire.STATUS_KIND, "H1", {**body, "seq_head": 2**70})
    led.close()
