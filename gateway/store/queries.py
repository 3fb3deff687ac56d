"""Operator queries: counts, quarantine, alerts, dead letters, devices, one record's state, and
``read_summary``, the read-only snapshot behind ``wastecart gateway status``.

``read_summary`` opens its own ``mode=ro`` connection (no migration, no write), so it is safe
while a gateway runs.  Times are unix seconds (REAL).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from gateway.errors import GatewayStoreError
from gateway.store.alerting import ALERT_SQL
from gateway.store.connection import BUSY_TIMEOUT_MS, SqliteConnection
from gateway.store.schema import DB_NAME, MIGRATIONS

# Rows listed per table by read_summary (count): enough for an operator's screen and the tests.
SUMMARY_ROWS = 1_000


class SqliteQueries(SqliteConnection):
    """``Queries`` on SQLite."""

    def alerts(self, limit: int = 100, cart: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        """Newest first: {id, raised_at, kind, cart, site, subject, detail, acknowledged_at, count, last_seen,
        acknowledged_by, ack_note, resolved_at}; only ``cart``'s if given; ``state``: "active" (not
        resolved), "open" (neither acknowledged nor resolved), "acknowledged" (and not resolved), "resolved"."""
        if state is not None and state not in _ALERT_STATES:
            raise ValueError(f"alert state {state!r}: expected one of {', '.join(_ALERT_STATES)}")
        where = [_ALERT_STATES[state]] if state is not None else []
        params: list[Any] = []
        if cart is not None:
            where.append("cart = ?")
            params.append(cart)
        clause = " WHERE " + " AND ".join(where) if where else ""
        sql = f"SELECT {ALERT_SQL} FROM alerts{clause} ORDER BY id DESC LIMIT ?"
        with self._read("reading alerts") as db:
            return _rows(db, sql, (*params, limit))

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

    def counts(self) -> dict[str, int]:
        """received, stored, duplicates, quarantined, pending, forwarding, accepted, dead,
        redeliveries, alerts (rows), alert_events (their counts summed), held (stored but not
        forwardable: chain pending or broken), quarantine_bytes (held), quarantine_dropped (rows dropped
        beyond the budget), status_stale (status of an earlier boot ignored), status_ahead (status
        claiming unverified seqs), alerts_active (not resolved), webhook_queued / webhook_sent /
        webhook_failures (attempts) / webhook_dropped (beyond the queue's cap)."""
        with self._read("counting") as db:
            return _counts(db)


_ALERTS_SQL = f"SELECT {ALERT_SQL} FROM alerts ORDER BY id DESC LIMIT ?"
_ALERT_STATES = {"active": "resolved_at IS NULL", "open": "resolved_at IS NULL AND acknowledged_at IS NULL",
                 "acknowledged": "resolved_at IS NULL AND acknowledged_at IS NOT NULL",
                 "resolved": "resolved_at IS NOT NULL"}
_QUARANTINE_SQL = ("SELECT id, received_at, topic, kind, cart, subject, seq, reason, size, length(payload) AS kept,"
                   " sha256, released_at, release_note FROM quarantine ORDER BY id DESC LIMIT ?")
_CMD_RESULTS_SQL = ("SELECT cart, site, name, boot_id, counter, outcome, reason, received_at FROM cmd_results"
                    " ORDER BY id DESC LIMIT ?")
# Event counters besides the tables' own counts (see counts()).
_EVENTS = ("redeliveries", "quarantine_bytes", "quarantine_dropped", "status_stale", "status_ahead", "webhook_sent",
           "webhook_failures", "webhook_dropped")

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
        **{name: int(counters.get(name, 0)) for name in _EVENTS},
        "alerts": int(db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0]),
        "alert_events": int(db.execute("SELECT COALESCE(SUM(count), 0) FROM alerts").fetchone()[0]),
        "alerts_active": int(db.execute("SELECT COUNT(*) FROM alerts WHERE resolved_at IS NULL").fetchone()[0]),
        "webhook_queued": int(db.execute("SELECT COUNT(*) FROM webhook_outbox").fetchone()[0]),
    }


def read_summary(data_dir: Path, limit: int = SUMMARY_ROWS) -> dict[str, Any]:
    """What an operator (or a fault test) needs, from ``data_dir/gateway.sqlite`` opened read-only.

    Keys (stable; tests rely on them): ``counts`` {received, stored, duplicates, quarantined,
    pending, held, forwarding, accepted, dead, redeliveries, alerts, alert_events, quarantine_bytes,
    quarantine_dropped, status_stale, status_ahead, alerts_active, webhook_queued, webhook_sent,
    webhook_failures, webhook_dropped, alerts_by_kind{KIND: n rows},
    alert_events_by_kind{KIND: n events}}; ``carts`` {cart: {site, upto_seq, max_seq, stored,
    chain_ok, chain_pending, chain_broken, last_seen, online}}; ``alerts`` [{id, raised_at, kind,
    cart, site, subject, detail, acknowledged_at, count, last_seen, acknowledged_by, ack_note,
    resolved_at}] newest first; ``dead`` [{id,
    site, cart, seq, type, attempts, reason, received_at}]; ``quarantine`` [{id, received_at, topic,
    kind, cart, subject, seq, reason, size, kept, sha256, released_at, release_note}] (``kept``: bytes
    of the payload kept, a prefix when below ``size``); ``cmd_results`` [{cart, site, name, boot_id,
    counter, outcome, reason, received_at}] newest first;
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
            counts["alert_events_by_kind"] = dict(db.execute("SELECT kind, SUM(count) FROM alerts GROUP BY kind"))
            return {
                "database": str(path),
                "counts": counts,
                "carts": _carts(db),
                "alerts": _rows(db, _ALERTS_SQL, (limit,)),
                "dead": _rows(db, _DEAD_SQL, (limit,)),
                # Records re-sent after an unknown outcome: the platform may hold them twice.
                "redelivered": dict(db.execute("SELECT id, redelivered FROM records WHERE redelivered > 0")),
                "quarantine": _rows(db, _QUARANTINE_SQL, (limit,)),
                "cmd_results": _rows(db, _CMD_RESULTS_SQL, (limit,)),
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
