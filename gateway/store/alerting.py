"""The alert lifecycle: open -> acknowledged (who, when, note) -> resolved, and the webhook's queue.

An alert is *active* while ``resolved_at`` is NULL; a repeat of the same kind for the same cart
collapses onto the active row (``count``, ``last_seen``).  How an alert ends depends on its kind
(``gateway.alerts.catalogue``): a condition (OFFLINE, BACKLOG, …) is resolved by
``apply_conditions`` when the rules no longer return it — acknowledging only records who is on it;
an event (FORGED, STORAGE_OVERDUE, …) cannot clear by itself, so acknowledging resolves it.

Each change (opened, acknowledged, resolved) is queued for the webhook in the same transaction as
the change (``webhook_outbox``), once ``enable_webhook`` was called: the row is the source of truth,
and a gateway that stops before the POST sends it after the restart.  The queue is bounded: beyond
``queue_max`` rows the oldest are dropped and counted (``webhook_dropped``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from gateway.alerts.catalogue import CONDITION_KINDS
from gateway.store.connection import SqliteConnection, bump
from gateway.store.model import Condition, FleetRow

DETAIL_MAX = 500  # characters of an alert's detail or an operator's note (a detail may quote a payload)
WHO_MAX = 64  # characters of the acknowledging operator's name
CONDITIONS_SQL = ", ".join(f"'{k}'" for k in CONDITION_KINDS)
ALERT_COLUMNS = ("id", "raised_at", "kind", "cart", "site", "subject", "detail", "acknowledged_at", "count",
                 "last_seen", "acknowledged_by", "ack_note", "resolved_at")
ALERT_SQL = ", ".join(ALERT_COLUMNS)


class SqliteAlerting(SqliteConnection):
    """``Alerting`` on SQLite: conditions applied per pass, acknowledgements, the webhook's queue."""

    _webhook_max: int | None = None  # rows the webhook queue may hold; None: no webhook, nothing queued

    def enable_webhook(self, queue_max: int) -> None:
        """Queue every alert change from now on (at most ``queue_max`` rows, oldest dropped beyond)."""
        self._webhook_max = queue_max

    def _event(self, db: sqlite3.Connection, event: str, alert_id: int, now: float) -> None:
        """Queue a webhook notification of the alert as it is now, in the caller's transaction."""
        if self._webhook_max is None:
            return
        row = db.execute(f"SELECT {ALERT_SQL} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        body = {"event": event, "at": now, "alert": dict(zip(ALERT_COLUMNS, row, strict=True))}
        db.execute("INSERT INTO webhook_outbox (created_at, event, payload, next_attempt_at) VALUES (?, ?, ?, ?)",
                   (now, event, json.dumps(body, ensure_ascii=False, sort_keys=True), now))
        held = int(db.execute("SELECT COUNT(*) FROM webhook_outbox").fetchone()[0])
        if held > self._webhook_max:
            over = held - self._webhook_max
            db.execute("DELETE FROM webhook_outbox WHERE id IN (SELECT id FROM webhook_outbox ORDER BY id LIMIT ?)",
                       (over,))
            bump(db, "webhook_dropped", over)

    def fleet_state(self) -> list[FleetRow]:
        """Every known cart as the rules read it."""
        with self._read("reading the fleet") as db:
            rows = db.execute("SELECT cart, site, online, online_since, last_seen, telemetry, telemetry_at,"
                              " faulty_since FROM devices ORDER BY cart").fetchall()
        return [FleetRow(str(r[0]), str(r[1]), None if r[2] is None else bool(r[2]), r[3], float(r[4]),
                         json.loads(r[5]) if r[5] else None, r[6], json.loads(r[7]) if r[7] else {})
                for r in rows]

    def apply_conditions(self, holding: Iterable[Condition], now: float) -> list[tuple[str, int]]:
        """One rules pass in ONE transaction: open what holds and is not active, refresh what stays
        (detail, last_seen), resolve the active conditions that no longer hold.  Returns the changes
        as (event, alert id)."""
        want = {(c.kind, c.cart): c for c in holding}
        changes: list[tuple[str, int]] = []
        with self._tx("applying alert conditions") as db:
            active = {(str(r[1]), str(r[2])): int(r[0]) for r in db.execute(
                f"SELECT id, kind, cart FROM alerts WHERE resolved_at IS NULL AND kind IN ({CONDITIONS_SQL})")}
            for key, alert_id in active.items():
                cond = want.get(key)
                if cond is None:
                    db.execute("UPDATE alerts SET resolved_at = ? WHERE id = ?", (now, alert_id))
                    changes.append(("resolved", alert_id))
                else:
                    db.execute("UPDATE alerts SET subject = ?, detail = ?, last_seen = ? WHERE id = ?",
                               (cond.subject, cond.detail[:DETAIL_MAX], now, alert_id))
            for key, cond in want.items():
                if key in active:
                    continue
                cur = db.execute("INSERT INTO alerts (raised_at, kind, cart, site, subject, detail, last_seen)"
                                 " VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 (now, cond.kind, cond.cart, cond.site, cond.subject, cond.detail[:DETAIL_MAX], now))
                changes.append(("opened", int(cur.lastrowid or 0)))
            for event, alert_id in changes:
                self._event(db, event, alert_id, now)
        return changes

    def acknowledge_alert(self, alert_id: int, who: str, note: str, now: float) -> bool:
        """An operator saw the alert: who, when, a note.  An event alert is resolved by it; a
        condition stays active until it clears.  False if there is no such unacknowledged alert."""
        with self._tx("acknowledging an alert") as db:
            row = db.execute("SELECT kind, resolved_at FROM alerts WHERE id = ? AND acknowledged_at IS NULL",
                             (alert_id,)).fetchone()
            if row is None:
                return False
            resolves = row[0] not in CONDITION_KINDS and row[1] is None
            db.execute("UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ?, ack_note = ?,"
                       " resolved_at = COALESCE(resolved_at, ?) WHERE id = ?",
                       (now, who[:WHO_MAX], note[:DETAIL_MAX], now if resolves else None, alert_id))
            self._event(db, "acknowledged", alert_id, now)
            if resolves:
                self._event(db, "resolved", alert_id, now)
        return True

    def alert(self, alert_id: int) -> dict[str, Any] | None:
        """One alert: {id, raised_at, kind, cart, site, subject, detail, acknowledged_at, count, last_seen,
        acknowledged_by, ack_note, resolved_at}, or None."""
        with self._read("reading an alert") as db:
            row = db.execute(f"SELECT {ALERT_SQL} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return None if row is None else dict(zip(ALERT_COLUMNS, row, strict=True))

    # The webhook's queue, strictly oldest first (a receiver sees an alert's changes in order).

    def webhook_head(self) -> tuple[int, str, int, float] | None:
        """The oldest queued notification: (id, JSON body, attempts so far, next attempt at), or None."""
        with self._read("reading the webhook queue") as db:
            row = db.execute("SELECT id, payload, attempts, next_attempt_at FROM webhook_outbox"
                             " ORDER BY id LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]), int(row[2]), float(row[3]))

    def webhook_sent(self, item_id: int) -> None:
        """The receiver took it (2xx): forget it, count it."""
        with self._tx("marking a webhook notification sent") as db:
            if db.execute("DELETE FROM webhook_outbox WHERE id = ?", (item_id,)).rowcount:
                bump(db, "webhook_sent")

    def webhook_retry(self, item_id: int, error: str, next_attempt_at: float) -> None:
        """An attempt failed: counted, tried again at ``next_attempt_at``."""
        with self._tx("marking a webhook attempt failed") as db:
            db.execute("UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
                       " WHERE id = ?", (next_attempt_at, error[:DETAIL_MAX], item_id))
            bump(db, "webhook_failures")
