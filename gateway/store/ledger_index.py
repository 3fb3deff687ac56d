"""The ledger's index rows (``gateway.ledger.index``), written in the transaction that stores a record.

``_index`` is called for every record stored (ingest, an operator's release); a void also marks the
bags it takes out (``ledger_bags.voided_by``), and a record stored after a void that points at it
gets its bags marked then.  ``reindex`` rebuilds every row when the index was built by another
``INDEX_VERSION`` or in another zone (at the store's start; a million records take well under a
minute, in batches so that ingest is not held for long).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from gateway.ledger.index import INDEX_VERSION, BagRow, RecordRow, index_record, index_rows
from gateway.ledger.zone import day_of
from gateway.store.connection import SqliteConnection
from gateway.store.model import Incoming

log = logging.getLogger(__name__)

REINDEX_BATCH = 5_000  # records per transaction while rebuilding

_RECORD_SQL = ("INSERT OR REPLACE INTO ledger_records (id, cart, site, seq, type, at, day, department, collector,"
               " confirmer, bags, weight_g, refers_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_BAG_SQL = ("INSERT OR REPLACE INTO ledger_bags (package_code, record_id, type, cart, at, day, category, department,"
            " weight_g, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def write_index(db: sqlite3.Connection, envelope: Mapping[str, Any], site: str, tz: ZoneInfo) -> None:
    """Insert one stored record's ledger rows and apply voids (in the caller's transaction).  Also
    used by the benchmark's generator, so that its store is indexed exactly as ingest indexes."""
    write_rows(db, *index_record(envelope, site), tz)


def write_rows(db: sqlite3.Connection, row: RecordRow, bags: list[BagRow], tz: ZoneInfo) -> None:
    """Insert a record's ledger rows, its day in ``tz``; a void marks the bags it takes out, and a record
    that a void stored earlier points at gets its bags marked now."""
    day = day_of(row.at, tz)
    db.execute(_RECORD_SQL, (row.id, row.cart, row.site, row.seq, row.type, row.at, day, row.department,
                             row.collector, row.confirmer, row.bags, row.weight_g, row.refers_to))
    if bags:
        db.executemany(_BAG_SQL, [(b.package_code, b.record_id, b.type, b.cart, b.at, day, b.category,
                                   b.department, b.weight_g, b.status) for b in bags])
    if row.type == "void" and row.refers_to:
        codes = [b.package_code for b in bags]
        if codes:
            db.executemany("UPDATE ledger_bags SET voided_by = ? WHERE record_id = ? AND package_code = ?",
                           [(row.id, row.refers_to, code) for code in codes])
        else:  # the whole record voided
            db.execute("UPDATE ledger_bags SET voided_by = ? WHERE record_id = ?", (row.id, row.refers_to))
    for void_id, code in db.execute(
            "SELECT v.id, b.package_code FROM ledger_records v LEFT JOIN ledger_bags b ON b.record_id = v.id"
            " WHERE v.refers_to = ? AND v.type = 'void'", (row.id,)).fetchall():
        if code is None:
            db.execute("UPDATE ledger_bags SET voided_by = ? WHERE record_id = ?", (void_id, row.id))
        else:
            db.execute("UPDATE ledger_bags SET voided_by = ? WHERE record_id = ? AND package_code = ?",
                       (void_id, row.id, code))


class SqliteLedgerIndex(SqliteConnection):
    """``_index`` (in a storing transaction) and ``reindex`` (at start)."""

    zone: ZoneInfo

    def _index(self, db: sqlite3.Connection, rec: Incoming) -> None:
        """``rec.ledger``: the rows the checks made; made here from the envelope when absent."""
        rows = rec.ledger
        if rows is None:
            body = json.loads(rec.envelope).get("body")
            rows = index_rows(rec.id, rec.cart, rec.site, rec.seq, rec.type, rec.created_at,
                              body if isinstance(body, dict) else {})
        write_rows(db, *rows, self.zone)

    def reindex(self) -> int:
        """Rebuild the index if it was built by another version or zone; returns records indexed."""
        with self._read("reading the ledger index's version") as db:
            meta = dict(db.execute("SELECT key, value FROM ledger_meta").fetchall())
        want = {"version": str(INDEX_VERSION), "zone": self.zone.key}
        if meta == want:
            return 0
        with self._tx("clearing the ledger index") as db:
            db.execute("DELETE FROM ledger_records")
            db.execute("DELETE FROM ledger_bags")
        done, after = 0, 0
        while True:
            with self._tx("rebuilding the ledger index") as db:
                rows = db.execute("SELECT rowid, id, cart, site, seq, type, created_at, envelope FROM records"
                                  " WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, REINDEX_BATCH)).fetchall()
                for rowid, rid, cart, site, seq, rtype, created_at, envelope in rows:
                    body = json.loads(envelope).get("body")
                    write_rows(db, *index_rows(rid, cart, site, seq, rtype, created_at,
                                               body if isinstance(body, dict) else {}), self.zone)
                    after = rowid
                if not rows:
                    db.execute("DELETE FROM ledger_meta")
                    db.executemany("INSERT INTO ledger_meta (key, value) VALUES (?, ?)", list(want.items()))
                    break
            done += len(rows)
        if done:
            log.info("store: ledger index rebuilt (%d records, version %d, zone %s)", done, INDEX_VERSION,
                     self.zone.key)
        return done
