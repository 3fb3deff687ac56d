"""The gateway's SQLite store: records, their chain and forwarding state, quarantine, alerts, devices.

The row is the source of truth (CONVENTIONS 6): ingest acks a cart only after ``store_batch``
committed, and the forwarder forgets nothing until the platform accepted it.  One connection,
guarded by a lock, serves the ingest worker, the forwarder and ``counts()``; WAL with
``synchronous=FULL`` so a committed batch survives a power cut.  Times are unix seconds (REAL).
``read_summary`` is the read-only view for operators (``wastecart gateway status``) and tests: it
opens its own ``mode=ro`` connection, so it is safe while a gateway runs.

Chain (per cart; a record's ``chain`` column):
    verified  its prev_hash is the stored hash of the cart's seq-1 (GENESIS_HASH for seq 1), and
              seq-1 is itself verified (or broken: a break is flagged on that one record only)
    pending   seq-1 is not stored (or not verified) yet; settled when it is
    broken    seq-1 landed later and its hash is not this record's prev_hash
The successor is always the one blamed: a record that contradicts a predecessor that is already
stored is not stored at all (quarantine, CHAIN_BREAK); a pending record contradicted by a
predecessor that arrives later stays stored but ``broken`` (CHAIN_BREAK).  A cart never produces
either, so both mean tampering or a replaced ledger: an operator decides.  Only ``verified``
records are forwarded, so a gap also holds back that cart's later records (per-cart order).

Forwarding (a record's ``forward_state``): stored -> forwarding -> accepted | dead, and back to
stored for a retry.  ``forwarding`` is written (durably) before each POST; a record found in it at
start-up, or one whose POST timed out, has an unknown outcome: its next attempt is a counted
re-delivery (``redeliveries`` counter, per-record ``redelivered``).

Schema changes are numbered migrations applied in order on ``PRAGMA user_version``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edge import wire
from gateway.errors import GatewayStoreError

log = logging.getLogger(__name__)

DB_NAME = "gateway.sqlite"
# How long a writer waits for another connection's lock before failing (ms); only external
# readers (sqlite3 CLI, a backup, read_summary) ever hold one.
BUSY_TIMEOUT_MS = 5_000
# Rows listed per table by read_summary (count): enough for an operator's screen and the tests.
SUMMARY_ROWS = 1_000

_KINDS_SQL = ", ".join(f"'{k}'" for k in wire.ALERT_KINDS)

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
    (  # 2: chain state, 'forwarding' + re-deliveries, alerts, devices, gap bookkeeping
        f"""CREATE TABLE records_v2 (
            id TEXT PRIMARY KEY,
            site TEXT NOT NULL,
            cart TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            created_at TEXT NOT NULL,
            hash TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            envelope TEXT NOT NULL,
            received_at REAL NOT NULL,
            chain TEXT NOT NULL CHECK (chain IN ('verified', 'pending', 'broken')),
            forward_state TEXT NOT NULL DEFAULT 'stored'
                CHECK (forward_state IN ('stored', 'forwarding', 'accepted', 'dead')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            sent_at REAL,
            outcome_unknown INTEGER NOT NULL DEFAULT 0,  -- 1: the last attempt may have arrived
            redelivered INTEGER NOT NULL DEFAULT 0,      -- attempts made after an unknown outcome
            last_error TEXT,
            accepted_at REAL,
            UNIQUE (cart, seq),
            CHECK (length(prev_hash) = {len(wire.GENESIS_HASH)})
        )""",
        """INSERT INTO records_v2 (id, site, cart, seq, type, created_at, hash, prev_hash, envelope,
               received_at, chain, forward_state, attempts, next_attempt_at, last_error, accepted_at)
           SELECT id, site, cart, seq, type, created_at, hash, json_extract(envelope, '$.prev_hash'),
               envelope, received_at, 'pending', forward_state, attempts, next_attempt_at, last_error,
               accepted_at FROM records""",
        f"""UPDATE records_v2 SET chain = CASE
               WHEN seq = 1 THEN iif(prev_hash = '{wire.GENESIS_HASH}', 'verified', 'broken')
               WHEN NOT EXISTS (SELECT 1 FROM records_v2 p WHERE p.cart = records_v2.cart
                                AND p.seq = records_v2.seq - 1) THEN 'pending'
               WHEN prev_hash = (SELECT p.hash FROM records_v2 p WHERE p.cart = records_v2.cart
                                 AND p.seq = records_v2.seq - 1) THEN 'verified'
               ELSE 'broken' END""",
        "DROP TABLE records",
        "ALTER TABLE records_v2 RENAME TO records",
        "CREATE INDEX records_due ON records (forward_state, chain, next_attempt_at)",
        "ALTER TABLE quarantine ADD COLUMN kind TEXT",
        "ALTER TABLE quarantine ADD COLUMN cart TEXT",
        "ALTER TABLE quarantine ADD COLUMN subject TEXT",
        # max_seq: highest stored seq; gap_from: first missing seq of the open gap (NULL: none),
        # so a SEQ_GAP alert is raised once per gap, not once per batch.
        "ALTER TABLE carts ADD COLUMN max_seq INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE carts ADD COLUMN gap_from INTEGER",
        "UPDATE carts SET max_seq = (SELECT COALESCE(MAX(seq), 0) FROM records r WHERE r.cart = carts.cart)",
        f"""CREATE TABLE alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            raised_at REAL NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ({_KINDS_SQL})),
            cart TEXT,
            site TEXT,
            subject TEXT NOT NULL,
            detail TEXT NOT NULL,
            acknowledged_at REAL
        )""",
        "CREATE INDEX alerts_open ON alerts (kind, cart, subject) WHERE acknowledged_at IS NULL",
        """CREATE TABLE devices (
            cart TEXT PRIMARY KEY,
            site TEXT NOT NULL,
            online INTEGER,           -- from the retained status: 1 online, 0 offline, NULL unknown
            boot_id TEXT,
            seq_head INTEGER,
            status TEXT,              -- last status payload (JSON)
            status_at REAL,
            telemetry TEXT,           -- last telemetry payload (JSON)
            telemetry_at REAL,
            last_seen REAL NOT NULL
        )""",
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
    prev_hash: str = wire.GENESIS_HASH


@dataclass(frozen=True)
class Rejected:
    """A received payload refused before the store; quarantined with an alert in the same commit."""

    topic: str
    payload: bytes
    reason: str
    kind: str = "MALFORMED"  # one of wire.ALERT_KINDS
    site: str | None = None
    cart: str | None = None
    subject: str | None = None  # record id if known; the topic otherwise


@dataclass(frozen=True)
class DeviceUpdate:
    """A cart's status (retained birth / will) or telemetry, already parsed to a JSON object."""

    site: str
    cart: str
    leaf: Literal["status", "telemetry"]
    data: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What ``store_batch`` did with one message; ``id`` is set for stored and duplicate."""

    status: Literal["stored", "duplicate", "rejected"]
    id: str | None = None
    cart: str | None = None
    reason: str | None = None
    kind: str | None = None  # alert kind of a rejection


@dataclass(frozen=True)
class Alert:
    kind: str
    cart: str | None
    site: str | None
    subject: str
    detail: str


@dataclass(frozen=True)
class Gap:
    """A cart whose highest stored seq is above its contiguous ``upto_seq``."""

    site: str
    cart: str
    upto_seq: int
    max_seq: int

    @property
    def from_seq(self) -> int:
        return self.upto_seq + 1


@dataclass
class BatchResult:
    """One outcome per item, the alerts raised and the gaps open after the commit."""

    outcomes: list[Outcome]
    alerts: list[Alert] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)


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
    kind: str | None = None
    cart: str | None = None
    subject: str | None = None


class GatewayStore:
    """``store_batch`` (ingest), ``due_for_forwarding`` / ``mark_*`` (forwarder), ``counts`` (stats)."""

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

    def store_batch(self, items: Sequence[Incoming | Rejected], now: float,
                    devices: Sequence[DeviceUpdate] = ()) -> BatchResult:
        """Store, de-duplicate or quarantine every item, raise alerts, note device state: ONE commit."""
        result = BatchResult([])
        touched: dict[str, str] = {}
        with self._tx("storing a batch") as db:
            for item in items:
                if isinstance(item, Rejected):
                    self._reject(db, now, item, result)
                    result.outcomes.append(Outcome("rejected", cart=item.cart, reason=item.reason, kind=item.kind))
                    continue
                outcome = self._insert(db, item, now, result)
                if outcome.status == "rejected":
                    self._reject(db, now, Rejected(item.topic, item.payload, outcome.reason or "",
                                                   outcome.kind or "MALFORMED", item.site, item.cart, item.id),
                                 result)
                elif outcome.status == "duplicate":
                    self._bump(db, "duplicates")
                else:
                    touched[item.cart] = item.site
                result.outcomes.append(outcome)
            self._bump(db, "received", len(items))
            for cart, site in touched.items():
                self._seen(db, cart, site, now)
                gap = self._advance(db, cart, site, now, result)
                if gap is not None:
                    result.gaps.append(gap)
            for update in devices:
                self._device(db, update, now)
        return result

    def _insert(self, db: sqlite3.Connection, rec: Incoming, now: float, result: BatchResult) -> Outcome:
        row = db.execute("SELECT cart, seq, hash FROM records WHERE id = ?", (rec.id,)).fetchone()
        if row is not None:
            if row[2] == rec.hash:
                return Outcome("duplicate", rec.id, rec.cart)
            return Outcome("rejected", cart=rec.cart, kind="REPLAYED", reason=(
                f"id {rec.id} already stored with different content (cart {row[0]} seq {row[1]})"))
        row = db.execute("SELECT id, hash FROM records WHERE cart = ? AND seq = ?",
                         (rec.cart, rec.seq)).fetchone()
        if row is not None:
            if row[1] == rec.hash:
                return Outcome("duplicate", row[0], rec.cart)
            return Outcome("rejected", cart=rec.cart, kind="REPLAYED", reason=(
                f"seq {rec.seq} of cart {rec.cart} already taken by record {row[0]}"))
        chain = self._link(db, rec)
        if chain == "broken":
            return Outcome("rejected", cart=rec.cart, kind="CHAIN_BREAK", reason=(
                f"chain: prev_hash of seq {rec.seq} is not the hash of the stored seq {rec.seq - 1}"
                if rec.seq > 1 else "chain: seq 1 does not start from the genesis hash"))
        db.execute(
            "INSERT INTO records (id, site, cart, seq, type, created_at, hash, prev_hash, envelope,"
            " received_at, chain, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rec.id, rec.site, rec.cart, rec.seq, rec.type, rec.created_at, rec.hash, rec.prev_hash,
             rec.envelope, now, chain, now))
        if chain == "verified":
            self._settle_successors(db, rec, now, result)
        return Outcome("stored", rec.id, rec.cart)

    @staticmethod
    def _link(db: sqlite3.Connection, rec: Incoming) -> Literal["verified", "pending", "broken"]:
        """The chain state of ``rec`` against its stored predecessor.  Verified means linked back to
        seq 1: a record linked to a predecessor that is itself still pending waits too.  One linked
        to a *broken* predecessor is verified: the break is flagged on that record alone."""
        if rec.seq == 1:
            return "verified" if rec.prev_hash == wire.GENESIS_HASH else "broken"
        row = db.execute("SELECT hash, chain FROM records WHERE cart = ? AND seq = ?",
                         (rec.cart, rec.seq - 1)).fetchone()
        if row is None:
            return "pending"
        if row[0] != rec.prev_hash:
            return "broken"
        return "pending" if row[1] == "pending" else "verified"

    def _settle_successors(self, db: sqlite3.Connection, rec: Incoming, now: float, result: BatchResult) -> None:
        """Records seq+1, seq+2, … that were pending on ``rec`` (now verified) are settled in turn:
        verified, or broken (alerted) when one's prev_hash is not its predecessor's hash."""
        seq, hash_ = rec.seq, rec.hash
        while True:
            row = db.execute("SELECT id, prev_hash, hash FROM records WHERE cart = ? AND seq = ? AND chain = 'pending'",
                             (rec.cart, seq + 1)).fetchone()
            if row is None:
                return
            ok = row[1] == hash_
            # due from now, like its predecessor: the outbox sends them in seq order (ties break by seq)
            db.execute("UPDATE records SET chain = ?, next_attempt_at = ? WHERE id = ?",
                       ("verified" if ok else "broken", now, row[0]))
            if not ok:
                self._alert(db, now, Alert("CHAIN_BREAK", rec.cart, rec.site, row[0],
                                           f"stored seq {seq + 1} (record {row[0]}) does not chain to seq "
                                           f"{seq} that arrived later; held, not forwarded"), result)
            seq, hash_ = seq + 1, row[2]

    def _advance(self, db: sqlite3.Connection, cart: str, site: str, now: float,
                 result: BatchResult) -> Gap | None:
        """Move the cart's contiguous high-water mark; return the open gap, alerting a new one once."""
        row = db.execute("SELECT upto_seq, gap_from FROM carts WHERE cart = ?", (cart,)).fetchone()
        upto, gap_from = (int(row[0]), row[1]) if row else (0, None)
        while db.execute("SELECT 1 FROM records WHERE cart = ? AND seq = ?", (cart, upto + 1)).fetchone():
            upto += 1
        max_seq = int(db.execute("SELECT MAX(seq) FROM records WHERE cart = ?", (cart,)).fetchone()[0] or 0)
        gap = Gap(site, cart, upto, max_seq) if max_seq > upto else None
        if gap is None:
            gap_from = None
        elif gap_from is None:
            gap_from = gap.from_seq
            self._alert(db, now, Alert("SEQ_GAP", cart, site, f"seq {gap.from_seq}",
                                       f"seqs after {upto} missing (highest stored {max_seq}); resend asked"),
                        result)
        db.execute("INSERT INTO carts (cart, site, upto_seq, max_seq, gap_from) VALUES (?, ?, ?, ?, ?)"
                   " ON CONFLICT (cart) DO UPDATE SET upto_seq = excluded.upto_seq, site = excluded.site,"
                   " max_seq = excluded.max_seq, gap_from = excluded.gap_from", (cart, site, upto, max_seq, gap_from))
        return gap

    @staticmethod
    def _bump(db: sqlite3.Connection, name: str, by: int = 1) -> None:
        db.execute("INSERT INTO counters (name, value) VALUES (?, ?)"
                   " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", (name, by))

    def _reject(self, db: sqlite3.Connection, now: float, item: Rejected, result: BatchResult) -> None:
        """Quarantine the payload and raise its alert in the same transaction."""
        subject = item.subject or item.topic
        db.execute("INSERT INTO quarantine (received_at, topic, payload, reason, kind, cart, subject)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (now, item.topic, item.payload, item.reason, item.kind, item.cart, subject))
        self._alert(db, now, Alert(item.kind, item.cart, item.site, subject, item.reason), result)

    @staticmethod
    def _alert(db: sqlite3.Connection, now: float, alert: Alert, result: BatchResult) -> None:
        """Insert ``alert`` unless the same (kind, cart, subject) is still open (not acknowledged)."""
        if db.execute("SELECT 1 FROM alerts WHERE kind = ? AND cart IS ? AND subject = ? AND acknowledged_at IS NULL",
                      (alert.kind, alert.cart, alert.subject)).fetchone():
            return
        db.execute("INSERT INTO alerts (raised_at, kind, cart, site, subject, detail) VALUES (?, ?, ?, ?, ?, ?)",
                   (now, alert.kind, alert.cart, alert.site, alert.subject, alert.detail))
        result.alerts.append(alert)

    @staticmethod
    def _seen(db: sqlite3.Connection, cart: str, site: str, now: float) -> None:
        db.execute("INSERT INTO devices (cart, site, last_seen) VALUES (?, ?, ?)"
                   " ON CONFLICT (cart) DO UPDATE SET site = excluded.site, last_seen = excluded.last_seen",
                   (cart, site, now))

    def _device(self, db: sqlite3.Connection, update: DeviceUpdate, now: float) -> None:
        self._seen(db, update.cart, update.site, now)
        text = json.dumps(update.data, ensure_ascii=False)
        if update.leaf == "telemetry":
            db.execute("UPDATE devices SET telemetry = ?, telemetry_at = ? WHERE cart = ?", (text, now, update.cart))
            return
        state = update.data.get("state")
        online = 1 if state == "online" else 0 if state == "offline" else None
        boot_id, head = update.data.get("boot_id"), update.data.get("seq_head")
        db.execute("UPDATE devices SET online = ?, boot_id = ?, seq_head = ?, status = ?, status_at = ?"
                   " WHERE cart = ?", (online, boot_id if isinstance(boot_id, str) else None,
                                       head if isinstance(head, int) and not isinstance(head, bool) else None,
                                       text, now, update.cart))

    def quarantine(self, topic: str, payload: bytes, reason: str, now: float, kind: str = "MALFORMED") -> None:
        """Keep one refused payload with the reason and its alert (counts as received)."""
        with self._tx("quarantining a payload") as db:
            self._reject(db, now, Rejected(topic, payload, reason, kind), BatchResult([]))
            self._bump(db, "received")

    def upto_seq(self, cart: str) -> int:
        with self._read("reading upto_seq") as db:
            row = db.execute("SELECT upto_seq FROM carts WHERE cart = ?", (cart,)).fetchone()
        return int(row[0]) if row else 0

    def open_gaps(self) -> list[Gap]:
        """Every cart with a gap still open (for the periodic resend of a quiet cart)."""
        with self._read("reading gaps") as db:
            rows = db.execute("SELECT site, cart, upto_seq, max_seq FROM carts WHERE max_seq > upto_seq").fetchall()
        return [Gap(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]

    def quarantined(self, limit: int = 100) -> list[QuarantineRow]:
        """Newest first."""
        with self._read("reading quarantine") as db:
            rows = db.execute("SELECT received_at, topic, payload, reason, kind, cart, subject FROM quarantine"
                              " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [QuarantineRow(float(r[0]), str(r[1]), bytes(r[2]), str(r[3]), r[4], r[5], r[6]) for r in rows]

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first: {id, raised_at, kind, cart, site, subject, detail, acknowledged_at}."""
        with self._read("reading alerts") as db:
            return _rows(db, "SELECT id, raised_at, kind, cart, site, subject, detail, acknowledged_at"
                             " FROM alerts ORDER BY id DESC LIMIT ?", (limit,))

    def acknowledge_alert(self, alert_id: int, now: float) -> bool:
        """Mark an alert as seen by an operator; a later identical event raises a new one."""
        with self._tx("acknowledging an alert") as db:
            cur = db.execute("UPDATE alerts SET acknowledged_at = ? WHERE id = ? AND acknowledged_at IS NULL",
                             (now, alert_id))
        return cur.rowcount == 1

    def chain_state(self, record_id: str) -> str | None:
        with self._read("reading a record") as db:
            row = db.execute("SELECT chain FROM records WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else str(row[0])

    def device(self, cart: str) -> dict[str, Any] | None:
        """The cart's row in ``devices`` with status / telemetry decoded, or None."""
        with self._read("reading a device") as db:
            rows = _rows(db, "SELECT * FROM devices WHERE cart = ?", (cart,))
        if not rows:
            return None
        row = rows[0]
        for key in ("status", "telemetry"):
            row[key] = None if row[key] is None else json.loads(row[key])
        return row

    # ---------------------------------------------------------------- forwarding

    def recover_forwarding(self, now: float) -> int:
        """At start-up: records left in 'forwarding' (crash between POST and answer) are due again
        with an unknown outcome, so their next attempt counts as a re-delivery.  Returns how many."""
        with self._tx("recovering the outbox") as db:
            cur = db.execute("UPDATE records SET forward_state = 'stored', outcome_unknown = 1,"
                             " next_attempt_at = ?, last_error = 'gateway stopped while forwarding'"
                             " WHERE forward_state = 'forwarding'", (now,))
        return cur.rowcount

    def due_for_forwarding(self, now: float, limit: int) -> list[Pending]:
        """Stored records whose chain is verified and whose next attempt is due, oldest due first."""
        with self._read("reading the outbox") as db:
            rows = db.execute(
                "SELECT id, site, cart, seq, type, created_at, hash, envelope, attempts FROM records"
                " WHERE forward_state = 'stored' AND chain = 'verified' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, cart, seq LIMIT ?", (now, limit)).fetchall()
        return [Pending(r[0], r[1], r[2], int(r[3]), r[4], r[5], r[6], json.loads(r[7]), int(r[8]))
                for r in rows]

    def next_attempt_at(self) -> float | None:
        """When the earliest forwardable record becomes due (unix s), or None if none waits."""
        with self._read("reading the outbox") as db:
            row = db.execute("SELECT MIN(next_attempt_at) FROM records"
                             " WHERE forward_state = 'stored' AND chain = 'verified'").fetchone()
        return None if row[0] is None else float(row[0])

    def mark_forwarding(self, record_id: str, now: float) -> int:
        """Durably note an attempt BEFORE the POST; returns its number.  An attempt after an unknown
        outcome is a re-delivery: counted here, in the same commit."""
        with self._tx("marking forwarding") as db:
            row = db.execute("SELECT outcome_unknown, attempts FROM records WHERE id = ? AND forward_state = 'stored'",
                             (record_id,)).fetchone()
            if row is None:
                raise GatewayStoreError(f"record {record_id}: not waiting for forwarding (marking forwarding)")
            redelivery = int(row[0])
            db.execute("UPDATE records SET forward_state = 'forwarding', sent_at = ?, attempts = attempts + 1,"
                       " redelivered = redelivered + ?, outcome_unknown = 0 WHERE id = ?",
                       (now, redelivery, record_id))
            if redelivery:
                self._bump(db, "redeliveries")
        return int(row[1]) + 1

    def mark_accepted(self, record_id: str, now: float) -> None:
        self._update(record_id, "marking accepted",
                     "forward_state = 'accepted', accepted_at = ?, last_error = NULL", (now,))

    def mark_retry(self, record_id: str, error: str, next_attempt_at: float, *, unknown: bool = False) -> None:
        """Back to 'stored' for a later attempt; ``unknown``: the platform may have it already."""
        self._update(record_id, "scheduling a retry",
                     "forward_state = 'stored', last_error = ?, next_attempt_at = ?, outcome_unknown = ?",
                     (error, next_attempt_at, int(unknown)))

    def mark_dead(self, record_id: str, reason: str) -> None:
        self._update(record_id, "dead-lettering", "forward_state = 'dead', last_error = ?", (reason,))

    def _update(self, record_id: str, what: str, assignments: str, params: tuple[Any, ...]) -> None:
        """Only a record in 'forwarding' (an attempt in progress) has an outcome to record."""
        with self._tx(what) as db:
            cur = db.execute(f"UPDATE records SET {assignments} WHERE id = ? AND forward_state = 'forwarding'",
                             (*params, record_id))
            if cur.rowcount != 1:
                raise GatewayStoreError(f"record {record_id}: no attempt in progress ({what})")

    def record_state(self, record_id: str) -> dict[str, Any] | None:
        """Forwarding state of one record (for the dashboard and tests)."""
        keys = ("forward_state", "attempts", "next_attempt_at", "last_error", "accepted_at", "sent_at",
                "redelivered", "outcome_unknown", "chain")
        with self._read("reading a record") as db:
            row = db.execute(f"SELECT {', '.join(keys)} FROM records WHERE id = ?", (record_id,)).fetchone()
        return None if row is None else dict(zip(keys, row, strict=True))

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        """Dead-lettered records, newest first: {id, cart, seq, attempts, reason}."""
        with self._read("reading dead letters") as db:
            return _rows(db, _DEAD_SQL, (limit,))

    # ---------------------------------------------------------------- stats

    def counts(self) -> dict[str, int]:
        """received, stored, duplicates, quarantined, pending, forwarding, accepted, dead,
        redeliveries, alerts, held (stored but not forwardable: chain pending or broken)."""
        with self._read("counting") as db:
            return _counts(db)


_DEAD_SQL = ("SELECT id, site, cart, seq, type, attempts, last_error AS reason, received_at FROM records"
             " WHERE forward_state = 'dead' ORDER BY received_at DESC LIMIT ?")


def _rows(db: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    cur = db.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _counts(db: sqlite3.Connection) -> dict[str, int]:
    counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
    states = dict(db.execute("SELECT forward_state, COUNT(*) FROM records GROUP BY forward_state").fetchall())
    held = db.execute("SELECT COUNT(*) FROM records WHERE forward_state = 'stored' AND chain != 'verified'"
                      ).fetchone()[0]
    return {
        "received": int(counters.get("received", 0)),
        "stored": int(sum(states.values())),
        "duplicates": int(counters.get("duplicates", 0)),
        "quarantined": int(db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]),
        "pending": int(states.get("stored", 0)),
        "held": int(held),
        "forwarding": int(states.get("forwarding", 0)),
        "accepted": int(states.get("accepted", 0)),
        "dead": int(states.get("dead", 0)),
        "redeliveries": int(counters.get("redeliveries", 0)),
        "alerts": int(db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]),
    }


# -------------------------------------------------------------------- read-only view


def read_summary(data_dir: Path, limit: int = SUMMARY_ROWS) -> dict[str, Any]:
    """What an operator (or a fault test) needs, from ``data_dir/gateway.sqlite`` opened read-only.

    Keys (stable; tests rely on them): ``counts`` {received, stored, duplicates, quarantined,
    pending, held, forwarding, accepted, dead, redeliveries, alerts, alerts_by_kind{KIND: n}};
    ``carts`` {cart: {site, upto_seq, max_seq, stored, chain_ok, chain_pending, chain_broken,
    last_seen, online}}; ``alerts`` [{id, raised_at, kind, cart, site, subject, detail,
    acknowledged_at}] newest first; ``dead`` [{id, site, cart, seq, type, attempts, reason,
    received_at}]; ``quarantine`` [{id, received_at, topic, kind, cart, subject, reason, size}];
    ``redelivered`` {record id: times re-sent after an unknown outcome} (every record of which the
    platform may hold more than one copy is here, with at least that many extra sends).
    ``chain_broken`` counts stored records marked broken plus distinct records quarantined for
    CHAIN_BREAK.  Safe while a gateway runs: its own ``mode=ro`` connection, no migration.
    """
    path = Path(data_dir) / DB_NAME
    if not path.is_file():
        raise GatewayStoreError(f"{path}: no gateway database here")
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version != len(MIGRATIONS):
                raise GatewayStoreError(f"{path}: schema version {version}, this gateway reads "
                                        f"{len(MIGRATIONS)}; start the gateway once to migrate it")
            db.execute("BEGIN")  # one snapshot for every query below
            counts: dict[str, Any] = dict(_counts(db))
            counts["alerts_by_kind"] = dict(db.execute("SELECT kind, COUNT(*) FROM alerts GROUP BY kind").fetchall())
            return {
                "database": str(path),
                "counts": counts,
                "carts": _carts(db),
                "alerts": _rows(db, "SELECT id, raised_at, kind, cart, site, subject, detail, acknowledged_at"
                                    " FROM alerts ORDER BY id DESC LIMIT ?", (limit,)),
                "dead": _rows(db, _DEAD_SQL, (limit,)),
                # Records re-sent after an unknown outcome: the platform may hold them twice.
                "redelivered": dict(db.execute("SELECT id, redelivered FROM records WHERE redelivered > 0")),
                "quarantine": _rows(db, "SELECT id, received_at, topic, kind, cart, subject, reason,"
                                        " length(payload) AS size FROM quarantine ORDER BY id DESC LIMIT ?",
                                    (limit,)),
            }
    except sqlite3.Error as exc:
        raise GatewayStoreError(f"{path}: cannot read the gateway database ({exc})") from exc


def _carts(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    carts: dict[str, dict[str, Any]] = {}
    for cart, site, upto, max_seq in db.execute("SELECT cart, site, upto_seq, max_seq FROM carts"):
        carts[cart] = {"site": site, "upto_seq": upto, "max_seq": max_seq, "stored": 0, "chain_ok": 0,
                       "chain_pending": 0, "chain_broken": 0, "last_seen": None, "online": None}
    blank = {"site": None, "upto_seq": 0, "max_seq": 0, "stored": 0, "chain_ok": 0, "chain_pending": 0,
             "chain_broken": 0, "last_seen": None, "online": None}
    names = {"verified": "chain_ok", "pending": "chain_pending", "broken": "chain_broken"}
    for cart, chain, n in db.execute("SELECT cart, chain, COUNT(*) FROM records GROUP BY cart, chain"):
        entry = carts.setdefault(cart, dict(blank))
        entry["stored"] += n
        entry[names[chain]] += n
    for cart, n in db.execute("SELECT cart, COUNT(DISTINCT subject) FROM quarantine"
                              " WHERE kind = 'CHAIN_BREAK' GROUP BY cart"):
        carts.setdefault(cart, dict(blank))["chain_broken"] += n
    for cart, site, online, last_seen in db.execute("SELECT cart, site, online, last_seen FROM devices"):
        entry = carts.setdefault(cart, {**blank, "site": site})
        entry["online"] = None if online is None else bool(online)
        entry["last_seen"] = last_seen
    return carts
