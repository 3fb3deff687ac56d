"""The one SQLite connection that every room of ``SqliteStore`` works through.

One connection, guarded by a lock, serves the ingest worker, the forwarder and ``counts()``; WAL
with ``synchronous=FULL`` so that a committed batch survives a power cut.  Every write is one
``BEGIN IMMEDIATE`` transaction (``_tx``); sqlite3 errors become ``GatewayStoreError`` here and
nowhere else.  Opening migrates the file to the latest schema.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.errors import GatewayStoreError
from gateway.ledger.zone import DEFAULT_ZONE, zone
from gateway.store.model import QuarantineLimits
from gateway.store.schema import MIGRATIONS

# How long a writer waits for another connection's lock before failing (ms); only external
# readers (sqlite3 CLI, a backup, read_summary) ever hold one.
BUSY_TIMEOUT_MS = 5_000


class SqliteConnection:
    """Opens, migrates and closes the file; ``_tx`` and ``_read`` for the rooms built on it."""

    def __init__(self, path: Path, limits: QuarantineLimits | None = None, ledger_zone: str | None = None) -> None:
        """``ledger_zone``: the zone of the ledger's days (ValueError if unknown); None keeps the zone the
        index was built in, so a command-line tool opening the file never rebuilds the gateway's index."""
        self.path = path
        self.limits = limits or QuarantineLimits()
        self.zone = zone(ledger_zone or DEFAULT_ZONE)
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
        if ledger_zone is None:
            with self._read("reading the ledger's zone") as db:
                row = db.execute("SELECT value FROM ledger_meta WHERE key = 'zone'").fetchone()
            self.zone = zone(str(row[0])) if row else self.zone

    @contextmanager
    def _tx(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock; sqlite3 errors become GatewayStoreError, and so does
        an integer SQLite cannot hold (OverflowError: the wire's bounds should have stopped it)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except (sqlite3.Error, OverflowError) as exc:
                raise GatewayStoreError(f"{self.path}: {what} failed ({exc})") from exc

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except (sqlite3.Error, OverflowError) as exc:
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


def bump(db: sqlite3.Connection, name: str, by: int = 1) -> None:
    """Add to an event counter that no table holds (duplicates leave no row), in the caller's commit."""
    db.execute("INSERT INTO counters (name, value) VALUES (?, ?)"
               " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value", (name, by))
