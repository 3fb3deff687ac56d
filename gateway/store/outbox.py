"""The outbox: each stored record's way to the platform, one durable step at a time.

A record's ``forward_state``: stored -> forwarding -> accepted | dead, and back to stored for a
retry.  ``forwarding`` is written (durably) before each POST; a record found in it at start-up,
or one whose POST timed out, has an unknown outcome: its next attempt is a counted re-delivery
(``redeliveries`` counter, per-record ``redelivered``).  Only ``verified`` records are due, so a
chain gap holds back the cart's later records (per-cart order).
"""

from __future__ import annotations

import json
import time
from typing import Any

from gateway.errors import GatewayStoreError
from gateway.store.connection import bump
from gateway.store.model import Alert, BatchResult, Pending
from gateway.store.quarantine import SqliteQuarantine


class SqliteOutbox(SqliteQuarantine):
    """``Outbox`` on SQLite: what the forwarder reads and marks."""

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
                bump(db, "redeliveries")
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
        """The platform refused the record for good: dead-lettered, and a RECORD_REJECTED alert
        raised (or counted on the cart's active one) in the same commit."""
        with self._tx("dead-lettering") as db:
            row = db.execute("UPDATE records SET forward_state = 'dead', last_error = ?"
                             " WHERE id = ? AND forward_state = 'forwarding' RETURNING cart, site",
                             (reason, record_id)).fetchone()
            if row is None:
                raise GatewayStoreError(f"record {record_id}: no attempt in progress (dead-lettering)")
            self._alert(db, time.time(), Alert("RECORD_REJECTED", row[0], row[1], f"record {record_id}",
                                               f"the platform refused it for good: {reason}"), BatchResult([]))

    def _update(self, record_id: str, what: str, assignments: str, params: tuple[Any, ...]) -> None:
        """Only a record in 'forwarding' (an attempt in progress) has an outcome to record."""
        with self._tx(what) as db:
            cur = db.execute(f"UPDATE records SET {assignments} WHERE id = ? AND forward_state = 'forwarding'",
                             (*params, record_id))
            if cur.rowcount != 1:
                raise GatewayStoreError(f"record {record_id}: no attempt in progress ({what})")
