"""The console's reads of the ``records`` table: a cart's chain status, its latest records, and
today's handovers and kilograms per cart for the fleet page.

Read-only, on the console's own connection (``ConsoleDb``).  The weight of a handover is the sum of
its body's ``lines[].weight_g`` (``edge.workflow.records.handover_body``), summed by SQLite's JSON
functions in the query, so no envelope is decoded in Python.

Today's tally (``HandoversToday``) is incremental: records are never deleted and their rowid grows
with every insert, so each refresh reads only the rows stored since the last one (``rowid > N``, a
range of the table's b-tree), not the day again; at the gateway's local midnight it starts over
from the first row received shortly before it (a binary search on rowid, a few point lookups).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime
from typing import Any

RECENT = 20  # records listed on a cart's page, newest first
# s: a record created after midnight (cart clock) may have been received a little before it (gateway
# clock): rows received this long before midnight are looked at too, then filtered on created_at.
CLOCK_SLACK_S = 3600.0

# grams of a handover's bags; NULL for other types (a non-integer weight counts as nothing)
GRAMS_SQL = ("CASE WHEN type = 'handover' THEN (SELECT SUM(CASE WHEN json_type(l.value, '$.weight_g') = 'integer'"
             " THEN json_extract(l.value, '$.weight_g') ELSE 0 END) FROM json_each(envelope, '$.body.lines') AS l)"
             " END")
BAGS_SQL = "CASE WHEN type = 'handover' THEN json_array_length(envelope, '$.body.lines') END"
# the gateway's local day of a record's created_at (an ISO time with its offset): SQLite's 'localtime'
# is the gateway process's time zone, as time.localtime in Python
_LOCAL_DAY = "date(created_at, 'localtime')"

_RECENT_SQL = (f"SELECT id, seq, type, created_at, forward_state, chain, {BAGS_SQL}, {GRAMS_SQL} FROM records"
               " WHERE cart = ? ORDER BY seq DESC LIMIT ?")
_TODAY_SQL = (f"SELECT cart, COUNT(*), SUM({GRAMS_SQL}) FROM records WHERE rowid > ? AND rowid <= ?"
              f" AND type = 'handover' AND {_LOCAL_DAY} = ? GROUP BY cart")


def chain_status(db: sqlite3.Connection, cart: str) -> dict[str, Any]:
    """{upto_seq (every seq 1..N stored and verified up to here), max_seq, stored, verified, pending,
    broken (stored records marked broken + records quarantined as CHAIN_BREAK), missing (seqs below
    max_seq not stored), first_gap (the first missing seq, or None)}."""
    row = db.execute("SELECT upto_seq, max_seq FROM carts WHERE cart = ?", (cart,)).fetchone()
    upto, max_seq = (int(row[0]), int(row[1])) if row else (0, 0)
    by_chain = dict(db.execute("SELECT chain, COUNT(*) FROM records WHERE cart = ? GROUP BY chain", (cart,)))
    quarantined = db.execute("SELECT COUNT(DISTINCT subject) FROM quarantine WHERE kind = 'CHAIN_BREAK' AND cart = ?",
                             (cart,)).fetchone()[0]
    stored = sum(by_chain.values())
    missing = max(0, max_seq - stored)
    return {"upto_seq": upto, "max_seq": max_seq, "stored": stored, "verified": by_chain.get("verified", 0),
            "pending": by_chain.get("pending", 0), "broken": by_chain.get("broken", 0) + int(quarantined or 0),
            "missing": missing, "first_gap": upto + 1 if missing else None}


def recent_records(db: sqlite3.Connection, cart: str, limit: int = RECENT) -> list[dict[str, Any]]:
    """The cart's last ``limit`` records, newest first: {id, seq, type, created_at, forward_state, chain,
    bags, kg} (bags and kg of a handover; None otherwise)."""
    return [{"id": rid, "seq": seq, "type": rtype, "created_at": created, "forward_state": state, "chain": chain,
             "bags": bags, "kg": None if grams is None else round(grams / 1000, 3)}
            for rid, seq, rtype, created, state, chain, bags, grams in db.execute(_RECENT_SQL, (cart, limit))]


class HandoversToday:
    """Handovers and kilograms per cart created on the gateway's local day, kept up to date cheaply."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._day = ""
        self._after = 0  # rowid: rows up to here are counted
        self._tally: dict[str, tuple[int, float]] = {}  # cart -> (handovers, grams); bounded by the carts

    def read(self, db: sqlite3.Connection, now: float | None = None) -> dict[str, tuple[int, float]]:
        """{cart: (handovers, kg)} of today (carts without a handover today are absent)."""
        now = time.time() if now is None else now
        day = time.strftime("%Y-%m-%d", time.localtime(now))
        with self._lock:
            if day != self._day:
                self._day, self._tally = day, {}
                self._after = _first_rowid_after(db, _midnight(now) - CLOCK_SLACK_S) - 1
            top = int(db.execute("SELECT COALESCE(MAX(rowid), 0) FROM records").fetchone()[0])
            if top > self._after:
                for cart, n, grams in db.execute(_TODAY_SQL, (self._after, top, day)):
                    had, had_g = self._tally.get(cart, (0, 0.0))
                    self._tally[cart] = (had + int(n), had_g + float(grams or 0))
                self._after = top
            return {cart: (n, round(g / 1000, 3)) for cart, (n, g) in self._tally.items()}


def _midnight(now: float) -> float:
    """The unix time of the gateway's last local midnight before ``now``."""
    local = datetime.fromtimestamp(now).astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _first_rowid_after(db: sqlite3.Connection, since: float) -> int:
    """The smallest rowid received at or after ``since`` (max rowid + 1 if none): a binary search,
    since rows are inserted in receive order (the gateway's clock; a step back of it only moves the
    start a little, and the created_at filter still decides)."""
    low, high = db.execute("SELECT COALESCE(MIN(rowid), 1), COALESCE(MAX(rowid), 0) FROM records").fetchone()
    low, high = int(low), int(high) + 1  # answer in [low, high]
    while low < high:
        mid = (low + high) // 2
        row = db.execute("SELECT rowid, received_at FROM records WHERE rowid >= ? ORDER BY rowid LIMIT 1",
                         (mid,)).fetchone()
        if row is None or float(row[1]) >= since:
            high = mid
        else:
            low = int(row[0]) + 1
    return low
