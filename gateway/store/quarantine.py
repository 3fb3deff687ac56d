"""Quarantine and alerts, bounded: what a flood of bad payloads can cost the gateway is fixed.

A refused payload is kept as a prefix (``QuarantineLimits.keep_bytes``) with the SHA-256 and size
of the whole, a reason of at most ``REASON_MAX`` characters and a topic of at most ``TOPIC_MAX``.
The bytes the quarantine holds are counted (``counters.quarantine_bytes``, in the same commit as
each insert); beyond ``budget_bytes`` the oldest rows are dropped and counted
(``quarantine_dropped``).  Alerts of one kind and cart collapse into one open row with a ``count``
and ``last_seen`` while active (not resolved): 6,000 malformed payloads are one alert that says 6,000,
not 6,000 rows.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import replace

from gateway.store.alerting import CONDITIONS_SQL, SqliteAlerting
from gateway.store.connection import bump
from gateway.store.model import Alert, BatchResult, QuarantineRow, Rejected

REASON_MAX = 500  # characters of a quarantine reason or alert detail (an error may quote a payload)
TOPIC_MAX = 256  # characters of a topic kept (MQTT allows 65,535 bytes)
TRIM_ROWS = 256  # rows looked at per step when the budget is exceeded


def _row_bytes(payload: bytes, topic: str, reason: str) -> int:
    return len(payload) + len(topic.encode("utf-8", "replace")) + len(reason.encode("utf-8", "replace"))


# Active alert rows kept apart per (kind, cart); beyond this, new carts' alerts are counted on one row
# per kind.  Far above a real fleet's open alerts (an operator acknowledges them), far below a flood.
# (Condition alerts are not counted: there is at most one per kind per verified cart.)
OPEN_ALERT_ROWS_MAX = 200


class SqliteQuarantine(SqliteAlerting):
    """Quarantine rows, their budget, collapsed alerts; ``quarantine`` / ``quarantine_row``."""

    def _reject(self, db: sqlite3.Connection, now: float, item: Rejected, result: BatchResult) -> str | None:
        """Quarantine the payload (a prefix) and raise its alert in the same transaction.  Returns the
        reason of the signed reject the cart should get, or None: none asked for, or the record id is
        already stored (its genuine copy is here: a bad copy must not make the cart give it up)."""
        subject = (item.subject or item.topic)[:TOPIC_MAX]
        topic, reason = item.topic[:TOPIC_MAX], item.reason[:REASON_MAX]
        kept = item.payload[:self.limits.keep_bytes]
        db.execute("INSERT INTO quarantine (received_at, topic, payload, reason, kind, cart, subject, size, sha256,"
                   " site, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (now, topic, kept, reason, item.kind, item.cart, subject, len(item.payload),
                    hashlib.sha256(item.payload).hexdigest(), item.site, item.seq))
        bump(db, "quarantine_bytes", _row_bytes(kept, topic, reason))
        self._trim(db)
        self._alert(db, now, Alert(item.kind, item.cart, item.site, subject, reason), result)
        if item.reject is None or item.subject is None:
            return None
        if db.execute("SELECT 1 FROM records WHERE id = ?", (item.subject,)).fetchone():
            return None
        return item.reject

    def _trim(self, db: sqlite3.Connection) -> None:
        """Drop the oldest rows while the quarantine holds more than its budget (counted)."""
        held = int(db.execute("SELECT value FROM counters WHERE name = 'quarantine_bytes'").fetchone()[0])
        while held > self.limits.budget_bytes:
            rows = db.execute("SELECT id, length(payload) + length(CAST(topic AS BLOB)) + length(CAST(reason AS BLOB))"
                              " FROM quarantine ORDER BY id LIMIT ?", (TRIM_ROWS,)).fetchall()
            if not rows:
                break
            dropped = 0
            for row_id, size in rows:
                if held <= self.limits.budget_bytes:
                    break
                db.execute("DELETE FROM quarantine WHERE id = ?", (row_id,))
                held -= int(size)
                dropped += 1
            db.execute("UPDATE counters SET value = ? WHERE name = 'quarantine_bytes'", (held,))
            bump(db, "quarantine_dropped", dropped)

    def _alert(self, db: sqlite3.Connection, now: float, alert: Alert, result: BatchResult) -> None:
        """Raise ``alert``, or count it on the active alert of the same kind and cart (the subject and
        detail then say what the latest occurrence was).  Beyond ``OPEN_ALERT_ROWS_MAX`` active rows, new
        carts' alerts share one row per kind: a flood of made-up cart ids must not grow the table.
        A new row is an "opened" change for the webhook (``SqliteAlerting``)."""
        detail = alert.detail[:REASON_MAX]
        if alert.cart is not None and db.execute(
                "SELECT 1 FROM alerts WHERE kind = ? AND cart = ? AND resolved_at IS NULL",
                (alert.kind, alert.cart)).fetchone() is None and db.execute(
                f"SELECT COUNT(*) FROM alerts WHERE resolved_at IS NULL AND kind NOT IN ({CONDITIONS_SQL})"
                ).fetchone()[0] >= OPEN_ALERT_ROWS_MAX:
            alert = replace(alert, cart=None, subject=f"{alert.cart}: {alert.subject}"[:REASON_MAX])
        cur = db.execute("UPDATE alerts SET count = count + 1, last_seen = ?, subject = ?, detail = ?"
                         " WHERE kind = ? AND cart IS ? AND resolved_at IS NULL",
                         (now, alert.subject, detail, alert.kind, alert.cart))
        if cur.rowcount:
            return
        cur = db.execute("INSERT INTO alerts (raised_at, kind, cart, site, subject, detail, last_seen)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (now, alert.kind, alert.cart, alert.site, alert.subject, detail, now))
        self._event(db, "opened", int(cur.lastrowid or 0), now)
        result.alerts.append(alert)

    def quarantine(self, topic: str, payload: bytes, reason: str, now: float, kind: str = "MALFORMED") -> None:
        """Keep one refused payload with the reason and its alert (counts as received)."""
        with self._tx("quarantining a payload") as db:
            self._reject(db, now, Rejected(topic, payload, reason, kind), BatchResult([]))
            bump(db, "received")

    def quarantine_row(self, quarantine_id: int) -> QuarantineRow | None:
        with self._read("reading a quarantined payload") as db:
            row = db.execute(f"SELECT {_ROW_SQL} FROM quarantine WHERE id = ?", (quarantine_id,)).fetchone()
        return None if row is None else quarantine_row(row)

    def quarantined(self, limit: int = 100) -> list[QuarantineRow]:
        """Newest first."""
        with self._read("reading quarantine") as db:
            rows = db.execute(f"SELECT {_ROW_SQL} FROM quarantine ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [quarantine_row(r) for r in rows]

    @staticmethod
    def _mark_released(db: sqlite3.Connection, quarantine_id: int, note: str, now: float) -> None:
        db.execute("UPDATE quarantine SET released_at = ?, release_note = ? WHERE id = ?",
                   (now, note[:REASON_MAX], quarantine_id))


_ROW_SQL = "received_at, topic, payload, reason, kind, cart, subject, id, size, sha256, seq, released_at"


def quarantine_row(r: tuple[object, ...]) -> QuarantineRow:
    payload = bytes(r[2]) if isinstance(r[2], bytes | bytearray | memoryview) else str(r[2]).encode()
    size = int(r[8]) if isinstance(r[8], int) else len(payload)
    return QuarantineRow(float(str(r[0])), str(r[1]), payload, str(r[3]), _opt(r[4]), _opt(r[5]), _opt(r[6]),
                         id=int(str(r[7])), size=size, sha256=_opt(r[9]),
                         seq=r[10] if isinstance(r[10], int) else None,
                         released_at=float(r[11]) if isinstance(r[11], float | int) else None)


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
