"""The operators' audit log: who did what, to what, when and why — appended, hash-chained, never changed.

Every console action that changes something (release, retry, discard, a command to a cart, an
export) writes one row **in the transaction that makes the change** (``append``), so an action
without its row cannot exist.  SQLite triggers (migration 6) refuse UPDATE and DELETE on the table;
each row's ``hash`` covers the previous row's hash, so a row removed or edited by someone with
the file in hand shows in ``verify_audit``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from gateway.store.connection import SqliteConnection

GENESIS = "0" * 64
TEXT_MAX = 500  # characters of a reason kept
DETAIL_MAX = 4_000  # characters of a detail (JSON) kept
_COLUMNS = ("id", "at", "user", "action", "target", "reason", "detail", "prev_hash", "hash")


def _digest(prev_hash: str, at: float, user: str, action: str, target: str, reason: str, detail: str) -> str:
    text = json.dumps([prev_hash, repr(at), user, action, target, reason, detail], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append(db: sqlite3.Connection, now: float, user: str, action: str, target: str, reason: str = "",
           detail: Mapping[str, Any] | str = "") -> int:
    """Append one row in the caller's transaction; returns its id.  ``action``: a dotted name such as
    ``quarantine.release``; ``target``: what it acted on (``quarantine 12``, ``record <id>``, ``cart C``)."""
    text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False, sort_keys=True)
    text, reason = text[:DETAIL_MAX], reason[:TEXT_MAX]
    row = db.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    prev = str(row[0]) if row else GENESIS
    digest = _digest(prev, now, user, action, target, reason, text)
    cur = db.execute("INSERT INTO audit_log (at, user, action, target, reason, detail, prev_hash, hash)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (now, user, action, target, reason, text, prev, digest))
    return int(cur.lastrowid or 0)


class SqliteAudit(SqliteConnection):
    """``append_audit`` (an action that changes nothing else), ``audit_entries``, ``verify_audit``."""

    def append_audit(self, user: str, action: str, target: str, reason: str = "",
                     detail: Mapping[str, Any] | str = "", now: float | None = None) -> int:
        with self._tx("writing the audit log") as db:
            return append(db, time.time() if now is None else now, user, action, target, reason, detail)

    def audit_entries(self, limit: int = 100, before_id: int | None = None) -> list[dict[str, Any]]:
        """Newest first: {id, at, user, action, target, reason, detail, prev_hash, hash}; ``before_id``
        pages back."""
        with self._read("reading the audit log") as db:
            rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?",
                              (before_id if before_id is not None else 2**62, limit)).fetchall()
        return [dict(zip(_COLUMNS, row, strict=True)) for row in rows]

    def verify_audit(self) -> tuple[int, int | None]:
        """(rows checked, id of the first row whose chain does not hold, or None)."""
        prev = GENESIS
        n = 0
        with self._read("checking the audit log") as db:
            for row in db.execute(f"SELECT {', '.join(_COLUMNS)} FROM audit_log ORDER BY id"):
                entry = dict(zip(_COLUMNS, row, strict=True))
                n += 1
                if entry["prev_hash"] != prev or entry["hash"] != _digest(
                        prev, entry["at"], entry["user"], entry["action"], entry["target"], entry["reason"],
                        entry["detail"]):
                    return n, int(entry["id"])
                prev = str(entry["hash"])
        return n, None
