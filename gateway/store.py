"""The gateway's SQLite store: received records, their forwarding state, and quarantine.

The row is the source of truth (CONVENTIONS 6): ingest acks a cart only after ``store_batch``
committed, and the forwarder forgets nothing until the platform accepted it.  One connection,
guarded by a lock, serves the ingest worker, the forwarder and ``counts()``; WAL with
``synchronous=FULL`` so a committed batch survives a power cut.  Times are unix seconds (REAL).

Schema changes are numbered migrations applied in order on ``PRAGMA user_version``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gateway.errors import GatewayStoreError

# How long a writer waits for another connection's lock before failing (ms); only external
# readers (sqlite3 CLI, a backup) ever hold one.
BUSY_TIMEOUT_MS = 5_000

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the walking skeleton
        """CREATE TABLE records (
            id TEXT PRIMARY KEY,
            site TEXT NOT NULL,
            cart TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            created_at TEXT NOT NULL,
            hash TEXT NOT NULL,
            envelope TEXT NOT NULL,
            received_at REAL NOT NULL,
            forward_state TEXT NOT NULL DEFAULT 'stored'
                CHECK (forward_state IN ('stored', 'accepted', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            accepted_at REAL,
            UNIQUE (cart, seq)
        )""",
        "CREATE INDEX records_due ON records (forward_state, next_attempt_at)",
        """CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            received_at REAL NOT NULL,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            reason TEXT NOT NULL
        )""",
        # upto_seq: largest N such that seqs 1..N of the cart are all in `records`.
        "CREATE TABLE carts (cart TEXT PRIMARY KEY, site TEXT NOT NULL, upto_seq INTEGER NOT NULL)",
        # Event counts that no table holds (duplicates leave no row); kept in the same commit.
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    ),
)


@dataclass(frozen=True)
class Incoming:
    """A received record that passed topic, schema and seal checks; ``envelope`` is its JSON."""

    id: str
    site: str
    cart: str
    seq: int
    type: str
    created_at: str
    hash: str
    envelope: str
    topic: str
    payload: bytes  # as received, kept for quarantine if the store refuses it


@dataclass(frozen=True)
class Rejected:
    """A received payload refused before the store; it goes to quarantine in the same commit."""

    topic: str
    payload: bytes
    reason: str


@dataclass(frozen=True)
class Outcome:
    """What ``store_batch`` did with one message; ``id`` is set for stored and duplicate."""

    status: Literal["stored", "duplicate", "rejected"]
    id: str | None = None
    cart: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Pending:
    """A stored record due for (another) platform attempt."""

    id: str
    site: str
    cart: str
    seq: int
    type: str
    created_at: str
    hash: str
    envelope: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class QuarantineRow:
    received_at: float
    topic: str
    payload: bytes
    reason: str


class GatewayStore:
    """``store_batch`` / ``quarantine`` (ingest), ``due_for_forwarding`` / ``mark_*`` (forwarder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
        except (sqlite3.Error, OSError) as exc:
            raise GatewayStoreError(f"{path}: cannot open the gateway database ({exc})") from exc
        self._migrate()

    # ---------------------------------------------------------------- plumbing

    @contextmanager
    def _tx(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock; sqlite3 errors become GatewayStoreError."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise GatewayStoreError(f"{self.path}: {what} failed ({exc})") from exc

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise GatewayStoreError(f"{self.path}: {what} failed ({exc})") from exc

    def _migrate(self) -> None:
        with self._read("reading the schema version") as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise GatewayStoreError(f"{self.path}: schema version {version} is newer than this gateway "
                                    f"({len(MIGRATIONS)}); refusing to touch it")
        for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            with self._tx(f"migration {number}") as db:
                for sql in statements:
                    db.execute(sql)
                db.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error as exc:
                raise GatewayStoreError(f"{self.path}: close failed ({exc})") from exc

    # ---------------------------------------------------------------- ingest

    def store_batch(self, items: Sequence[Incoming | Rejected], now: float) -> list[Outcome]:
        """Store, de-duplicate or quarantine every item in ONE transaction; one outcome per item."""
        outcomes: list[Outcome] = []
        touched: dict[str, str] = {}
        with self._tx("storing a batch") as db:
            for item in items:
                if isinstance(item, Rejected):
                    self._quarantine(db, now, item.topic, item.payload, item.reason)
                    outcomes.append(Outcome("rejected", reason=item.reason))
                    continue
                outcome = self._insert(db, item, now)
                if outcome.status == "rejected":
                    self._quarantine(db, now, item.topic, item.payload, outcome.reason or "")
                elif outcome.status == "duplicate":
                    self._bump(db, "duplicates")
                else:
                    touched[item.cart] = item.site
                outcomes.append(outcome)
            self._bump(db, "received", len(items))
            for cart, site in touched.items():
                self._advance(db, cart, site)
        return outcomes

    @staticmethod
    def _insert(db: sqlite3.Connection, rec: Incoming, now: float) -> Outcome:
        row = db.execute("SELECT cart, seq, hash FROM records WHERE id = ?", (rec.id,)).fetchone()
        if row is not None:
            if row[2] == rec.hash:
                return Outcome("duplicate", rec.id, rec.cart)
            return Outcome("rejected", cart=rec.cart, reason=(
                f"id {rec.id} already stored with different content (cart {row[0]} seq {row[1]})"))
        row = db.execute("SELECT id, hash FROM records WHERE cart = ? AND seq = ?",
                         (rec.cart, rec.seq)).fetchone()
        if row is not None:
            if row[1] == rec.hash:
                return Outcome("duplicate", row[0], rec.cart)
            return Outcome("rejected", cart=rec.cart, reason=(
                f"seq {rec.seq} of cart {rec.cart} already taken by record {row[0]}"))
        db.execute(
            "INSERT INTO records (id, site, cart, seq, type, created_at, hash, envelope, received_at,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rec.id, rec.site, rec.cart, rec.seq, rec.type, rec.created_at, rec.hash, rec.envelope,
             now, now))
        return Outcome("stored", rec.id, rec.cart)

    @staticmethod
    def _advance(db: sqlite3.Connection, cart: str, site: str) -> None:
        """Move the cart's contiguous high-water mark over every seq that is now present."""
        row = db.execute("SELECT upto_seq FROM carts WHERE cart = ?", (cart,)).fetchone()
        upto = int(row[0]) if row else 0
        while db.execute("SELECT 1 FROM records WHERE cart = ? AND seq = ?", (cart, upto + 1)).fetchone():
            upto += 1
        db.execute("INSERT INTO carts (cart, site, upto_seq) VALUES (?, ?, ?) ON CONFLICT (cart)"
                   " DO UPDATE SET upto_seq = excluded.upto_seq, site = excluded.site", (cart, site, upto))

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str, by: int = 1) -> None:
        db.execute("INSERT INTO counters (name, value) VALUES (?, ?)"
                   " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", (name, by))

    @staticmethod
    def _quarantine(db: sqlite3.Connection, now: float, topic: str, payload: bytes, reason: str) -> None:
        db.execute("INSERT INTO quarantine (received_at, topic, payload, reason) VALUES (?, ?, ?, ?)",
                   (now, topic, payload, reason))

    def quarantine(self, topic: str, payload: bytes, reason: str, now: float) -> None:
        """Keep one refused payload with the reason (counts as received)."""
        with self._tx("quarantining a payload") as db:
            self._quarantine(db, now, topic, payload, reason)
            self._bump(db, "received")

    def upto_seq(self, cart: str) -> int:
        with self._read("reading upto_seq") as db:
            row = db.execute("SELECT upto_seq FROM carts WHERE cart = ?", (cart,)).fetchone()
        return int(row[0]) if row else 0

    def quarantined(self, limit: int = 100) -> list[QuarantineRow]:
        """Newest first."""
        with self._read("reading quarantine") as db:
            rows = db.execute("SELECT received_at, topic, payload, reason FROM quarantine"
                              " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [QuarantineRow(float(r[0]), str(r[1]), bytes(r[2]), str(r[3])) for r in rows]

    # ---------------------------------------------------------------- forwarding

    def due_for_forwarding(self, now: float, limit: int) -> list[Pending]:
        with self._read("reading the outbox") as db:
            rows = db.execute(
                "SELECT id, site, cart, seq, type, created_at, hash, envelope, attempts FROM records"
                " WHERE forward_state = 'stored' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, cart, seq LIMIT ?", (now, limit)).fetchall()
        return [Pending(r[0], r[1], r[2], int(r[3]), r[4], r[5], r[6], json.loads(r[7]), int(r[8]))
                for r in rows]

    def next_attempt_at(self) -> float | None:
        """When the earliest waiting record becomes due (unix s), or None if none waits."""
        with self._read("reading the outbox") as db:
            row = db.execute("SELECT MIN(next_attempt_at) FROM records WHERE forward_state = 'stored'"
                             ).fetchone()
        return None if row[0] is None else float(row[0])

    def mark_accepted(self, record_id: str, now: float) -> None:
        self._update(record_id, "marking accepted",
                     "forward_state = 'accepted', accepted_at = ?, last_error = NULL", (now,))

    def mark_retry(self, record_id: str, error: str, next_attempt_at: float) -> None:
        self._update(record_id, "scheduling a retry",
                     "last_error = ?, next_attempt_at = ?", (error, next_attempt_at))

    def mark_dead(self, record_id: str, reason: str) -> None:
        self._update(record_id, "dead-lettering", "forward_state = 'dead', last_error = ?", (reason,))

    def _update(self, record_id: str, what: str, assignments: str, params: tuple[Any, ...]) -> None:
        """Every forwarding outcome counts one attempt; only a 'stored' record can change state."""
        with self._tx(what) as db:
            cur = db.execute(f"UPDATE records SET {assignments}, attempts = attempts + 1"
                             " WHERE id = ? AND forward_state = 'stored'", (*params, record_id))
            if cur.rowcount != 1:
                raise GatewayStoreError(f"record {record_id}: not waiting for forwarding ({what})")

    def record_state(self, record_id: str) -> dict[str, Any] | None:
        """Forwarding state of one record (for the dashboard and tests)."""
        with self._read("reading a record") as db:
            row = db.execute("SELECT forward_state, attempts, next_attempt_at, last_error, accepted_at"
                             " FROM records WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            return None
        keys = ("forward_state", "attempts", "next_attempt_at", "last_error", "accepted_at")
        return dict(zip(keys, row, strict=True))

    # ---------------------------------------------------------------- stats

    def counts(self) -> dict[str, int]:
        """received, stored, duplicates, quarantined, accepted, pending, dead."""
        with self._read("counting") as db:
            counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
            states = dict(db.execute("SELECT forward_state, COUNT(*) FROM records GROUP BY forward_state"
                                     ).fetchall())
            quarantined = db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]
        return {
            "received": int(counters.get("received", 0)),
            "stored": int(sum(states.values())),
            "duplicates": int(counters.get("duplicates", 0)),
            "quarantined": int(quarantined),
            "accepted": int(states.get("accepted", 0)),
            "pending": int(states.get("stored", 0)),
            "dead": int(states.get("dead", 0)),
        }
