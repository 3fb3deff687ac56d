"""The cart's ledger: every record committed to SQLite before anything else happens to it.

A record's seq, prev_hash, hash and signature are computed under the ledger's lock and written
in ONE transaction (``BEGIN IMMEDIATE``, WAL, ``synchronous=FULL``, on the raw sqlite3
connection), so after a power cut either the whole record exists with its place in the chain or
nothing does.  Every failure is a ``StoreError`` (translated once, in ``sqlite_errors``) and leaves
the ledger as it was.  The row is the source of truth for the uplink: a record is
``synced`` only when the gateway acknowledged storing it (never on the broker's PUBACK).
The seq head and chain head live in ``meta`` so purging synced rows never reuses a seq.

A record the gateway *rejected* (a signed reject: quarantined for a reason re-sending cannot fix)
is marked with the reason; it is never synced, never purged and never sent again, and it counts
neither as unsynced nor in the backlog, so it holds nothing else back.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from edge.errors import DiskFullError, StoreError
from edge.messages import Msg

LEDGER_FILE = "ledger.sqlite"

# Numbered migrations; PRAGMA user_version is the number applied.  Append, never edit.
MIGRATIONS = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE records (
        seq INTEGER PRIMARY KEY,        -- per-cart, gap-free, never reused
        id TEXT NOT NULL UNIQUE,        -- UUIDv7
        type TEXT NOT NULL,
        created_at TEXT NOT NULL,
        hash TEXT NOT NULL,
        envelope TEXT NOT NULL,         -- the exact JSON published
        committed_ns INTEGER NOT NULL,  -- wall clock at commit, for delivery latency figures
        synced_at TEXT                  -- set on the gateway's ack
    );
    CREATE INDEX records_unsynced ON records(seq) WHERE synced_at IS NULL;
    """,
    # 2: the gateway's signed rejects; "unsent" is now: not synced and not rejected.
    """
    ALTER TABLE records ADD COLUMN rejected_reason TEXT;  -- wire.REJECT_REASONS; NULL: not rejected
    ALTER TABLE records ADD COLUMN rejected_detail TEXT;
    ALTER TABLE records ADD COLUMN rejected_at TEXT;
    DROP INDEX records_unsynced;
    CREATE INDEX records_unsent ON records(seq) WHERE synced_at IS NULL AND rejected_at IS NULL;
    """,
)
UNSENT = "synced_at IS NULL AND rejected_at IS NULL"  # what the drain still has to deliver


@dataclass(frozen=True)
class Committed:
    seq: int
    id: str
    hash: str


class Outgoing(NamedTuple):
    """A record to publish: read once per record on the drain's hot path (a tuple: cheap to make)."""

    seq: int
    id: str
    payload: bytes


def free_mb(folder: Path) -> int:
    return shutil.disk_usage(folder).free // 2**20


class Ledger:
    """One cart's ledger file.  Thread-safe: one connection behind a lock (commits are short).

    ``min_free_mb``: below this much free space on the ledger's filesystem new records are
    refused (the collector is told why) while acks and reads keep working, so nothing already
    committed is put at risk by a disk that fills up.
    """

    def __init__(self, data_dir: Path, cart: str, key: Ed25519PrivateKey, *, min_free_mb: int = 0) -> None:
        self.cart = wire.check_id(cart, "cart id")
        self._key = key
        self.min_free_mb = min_free_mb
        self._lock = threading.Lock()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / LEDGER_FILE
        with sqlite_errors("ledger.cannot_open", path=self.path):
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._migrate()
                owner = self._meta("cart")
                if owner is None:
                    self._set_meta_now("cart", self.cart)
                elif owner != self.cart:
                    raise StoreError("ledger.other_cart", path=self.path, owner=owner, cart=self.cart)
                # Kept in step by commit, mark_synced and mark_rejected, so backlog() is O(1): it is
                # asked on every ack.
                self._unsynced = self._count(UNSENT)
                self._rejected = self._count("rejected_at IS NOT NULL")
                self._head = int(self._meta("seq_head") or 0)
                row = self._db.execute("SELECT max(seq) FROM records WHERE synced_at IS NOT NULL").fetchone()
                self._synced_high = int(row[0] or 0)
            except BaseException:
                self._db.close()
                raise

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            self._db.executescript(f"BEGIN IMMEDIATE; {script}; PRAGMA user_version={number}; COMMIT;")

    def _count(self, where: str) -> int:
        return int(self._db.execute(f"SELECT count(*) FROM records WHERE {where}").fetchone()[0])

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta_now(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---------------------------------------------------------------------------------------

    def commit(self, rtype: str, body: Mapping[str, Any], *, now: datetime, clock: wire.Clock) -> Committed:
        """Seal and commit one record; returns only after the transaction is durable.

        Every failure is a ``StoreError`` (``DiskFullError`` for space) and leaves the ledger as it
        was: the record is sealed before the transaction opens, so a body that cannot be recorded
        (a float, a value JSON cannot carry) is refused without writing anything."""
        try:
            left = free_mb(self.path.parent)
        except OSError as exc:
            raise StoreError("ledger.not_saved", path=self.path, reason=exc.strerror or str(exc)) from exc
        if left < self.min_free_mb:
            raise DiskFullError("ledger.low_disk", folder=self.path.parent, left=left, need=self.min_free_mb)
        with self._lock, sqlite_errors("ledger.not_saved", path=self.path):
            seq = self._head + 1
            env, text = self._seal(seq, rtype, body, now, clock, self._meta("head_hash") or wire.GENESIS_HASH)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO records(seq, id, type, created_at, hash, envelope, committed_ns)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (seq, env["id"], rtype, env["created_at"], env["hash"], text, time.time_ns()))
                self._set_meta_now("seq_head", str(seq))
                self._set_meta_now("head_hash", env["hash"])
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite already rolled back on SQLITE_FULL / IOERR
                    self._db.execute("ROLLBACK")
                raise
            self._unsynced += 1
            self._head = seq
        return Committed(seq, env["id"], env["hash"])

    def _seal(self, seq: int, rtype: str, body: Mapping[str, Any], now: datetime, clock: wire.Clock,
              prev: str) -> tuple[dict[str, Any], str]:
        """The signed envelope and its exact JSON; StoreError if the body cannot go on the wire."""
        try:
            env = wire.seal(wire.unsigned_envelope(
                record_id=wire.uuid7(int(now.timestamp() * 1000)), cart=self.cart, seq=seq,
                created_at=now.isoformat(timespec="milliseconds"), clock=clock, rtype=rtype,
                body=body, prev_hash=prev), self._key)
            return env, wire.encode(env).decode("utf-8")
        except (wire.ContractError, TypeError, ValueError) as exc:  # a float, NaN, a set, a cycle …
            raise StoreError("ledger.not_recordable", reason=str(exc)) from exc

    def sign(self, kind: str, site: str, body: Mapping[str, Any]) -> bytes:
        """A signed message of this cart's (status, telemetry, cmd_result), with the key that signs
        its records (``wire.sign_message``; ContractError for a body outside the contract)."""
        return wire.sign_message(kind, site, self.cart, body, self._key)

    def bodies(self, types: Iterable[str]) -> list[tuple[str, str, int, dict[str, Any]]]:
        """``(id, type, seq, body)`` of the records of these types, in seq order: what the workflow
        replays at start-up to know which bags are on the cart and in storage."""
        types = list(types)
        with self._lock, sqlite_errors("ledger.unreadable", path=self.path):
            rows = self._db.execute(
                f"SELECT id, type, seq, envelope FROM records WHERE type IN ({','.join('?' * len(types))})"
                " ORDER BY seq", types).fetchall()
        return [(rid, rtype, seq, json.loads(env)["body"]) for rid, rtype, seq, env in rows]

    def unsynced(self, after_seq: int = 0, limit: int = 100) -> list[Outgoing]:
        with self._lock, sqlite_errors("ledger.unreadable", path=self.path):
            rows = self._db.execute(
                f"SELECT seq, id, envelope FROM records WHERE {UNSENT} AND seq > ?"
                " ORDER BY seq LIMIT ?", (after_seq, limit)).fetchall()
        return [Outgoing(seq, rid, env.encode()) for seq, rid, env in rows]

    def hash_at(self, seq: int) -> str | None:
        """The hash of this ledger's record ``seq`` (``GENESIS_HASH`` for 0); None if there is none."""
        if seq == 0:
            return wire.GENESIS_HASH
        with self._lock, sqlite_errors("ledger.unreadable", path=self.path):
            row = self._db.execute("SELECT hash FROM records WHERE seq=?", (seq,)).fetchone()
        return None if row is None else str(row[0])

    def seqs_of(self, ids: Iterable[str]) -> dict[str, int]:
        """id -> seq of those of ``ids`` that are records of this ledger."""
        ids = list(ids)
        found: dict[str, int] = {}
        with self._lock, sqlite_errors("ledger.unreadable", path=self.path):
            for chunk in range(0, len(ids), 500):
                part = ids[chunk:chunk + 500]
                found.update(self._db.execute(
                    f"SELECT id, seq FROM records WHERE id IN ({','.join('?' * len(part))})", part).fetchall())
        return found

    def synced_high(self) -> int:
        """The highest seq the gateway has acknowledged (0: none yet)."""
        return self._synced_high

    def mark_synced(self, upto_seq: int, ids: Iterable[str], at: datetime) -> int:
        """Apply a gateway ack (checked by ``edge.ledger.trust.decide_ack``): every seq ≤ upto_seq,
        and the listed ids; rejected records stay rejected.  Returns rows changed."""
        ids = list(ids)
        stamp = at.astimezone(UTC).isoformat(timespec="milliseconds")  # UTC: purge compares strings
        with self._lock, sqlite_errors("ledger.ack_failed", path=self.path):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seqs = [s for (s,) in self._db.execute(
                    f"UPDATE records SET synced_at=? WHERE {UNSENT} AND seq <= ? RETURNING seq",
                    (stamp, upto_seq)).fetchall()]
                for chunk in range(0, len(ids), 500):
                    part = ids[chunk:chunk + 500]
                    seqs += [s for (s,) in self._db.execute(
                        f"UPDATE records SET synced_at=? WHERE {UNSENT} AND id IN "
                        f"({','.join('?' * len(part))}) RETURNING seq", (stamp, *part)).fetchall()]
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            changed = len(seqs)
            self._unsynced -= changed
            self._synced_high = max(self._synced_high, *seqs, 0)
        return changed

    def payload_sha256(self, seq: int) -> str | None:
        """SHA-256 of record ``seq`` as this cart publishes it (what a gateway's reject must name)."""
        with self._lock, sqlite_errors("ledger.unreadable", path=self.path):
            row = self._db.execute("SELECT envelope FROM records WHERE seq=?", (seq,)).fetchone()
        return hashlib.sha256(row[0].encode("utf-8")).hexdigest() if row else None

    def mark_rejected(self, record_id: str, seq: int, payload_sha256: str, reason: str, detail: str,
                      at: datetime) -> str:
        """Apply a gateway reject: record ``record_id`` at ``seq`` is never sent again — only if the bytes
        the gateway refused (``payload_sha256``) are this record's own and it is not synced.  Returns
        "marked", "already", or why nothing changed: "unknown", "synced", "other_bytes"."""
        stamp = at.astimezone(UTC).isoformat(timespec="milliseconds")
        with self._lock, sqlite_errors("ledger.ack_failed", path=self.path):
            row = self._db.execute("SELECT synced_at, rejected_at, envelope FROM records WHERE id=? AND seq=?",
                                   (record_id, seq)).fetchone()
            if row is None:
                return "unknown"
            if row[1] is not None:
                return "already"
            if row[0] is not None:
                return "synced"  # the gateway stored it: a reject of it can only be of someone else's copy
            if hashlib.sha256(row[2].encode("utf-8")).hexdigest() != payload_sha256:
                return "other_bytes"
            self._db.execute("UPDATE records SET rejected_reason=?, rejected_detail=?, rejected_at=?"
                             " WHERE id=? AND seq=?", (reason, detail, stamp, record_id, seq))
            self._unsynced -= 1
            self._rejected += 1
        return "marked"

    def purge_synced(self, older_than: datetime) -> int:
        """Delete synced records acknowledged before ``older_than``; unsynced ones never.

        The seq and chain heads live in ``meta``, so a purge never lets a seq be reused."""
        with self._lock, sqlite_errors("ledger.purge_failed", path=self.path):
            cur = self._db.execute("DELETE FROM records WHERE synced_at IS NOT NULL AND synced_at < ?",
                                   (older_than.astimezone(UTC).isoformat(timespec="milliseconds"),))
        return cur.rowcount

    def backlog(self) -> tuple[int, int | None]:
        """(unsynced count, commit time in ns of the oldest unsynced record or None)."""
        with self._lock, sqlite_errors("ledger.unreadable", path=self.path):
            row = self._db.execute(f"SELECT committed_ns FROM records WHERE {UNSENT}"
                                   " ORDER BY seq LIMIT 1").fetchone()  # seq order is commit order
            return self._unsynced, None if row is None else int(row[0])

    def unsynced_count(self) -> int:
        """Records still to deliver (rejected ones are not: they will never be sent again)."""
        return self._unsynced

    def rejected_count(self) -> int:
        return self._rejected

    def head(self) -> int:
        return self._head


@contextmanager
def sqlite_errors(key: str, **params: Any) -> Iterator[None]:
    """Translate ``sqlite3.Error`` at the ledger's boundary: ``DiskFullError`` when SQLite found no
    space (SQLITE_FULL), else ``StoreError``; both carry ``key`` with SQLite's reason."""
    try:
        yield
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
            raise DiskFullError("ledger.disk_full", what=Msg(key, {**params, "reason": str(exc)})) from exc
        raise StoreError(key, **params, reason=str(exc)) from exc
