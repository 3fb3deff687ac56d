"""Operators' actions on what the gateway held back: quarantine and dead letters, each with its audit row.

Every change here is ONE transaction that makes the change AND appends its ``audit_log`` row
(``gateway.store.audit.append``), so the log can never miss an action nor name one that did not
happen.  A refusal (already released, not a dead letter, …) changes nothing and writes no audit
row: the operator is told why on the page; the log holds what was done, not what was tried.

- ``release_quarantined``: the store side of ``gateway.release.release`` with a user: the record
  stored (the same ``_insert`` / ``_seen`` / ``_advance`` as ingest) and the row marked released.
- ``discard_quarantined``: the row kept (for the record) but marked discarded, never released.
- ``retry_dead``: a dead letter back to 'stored', due now; its attempts are kept and its last error
  goes into the audit row's detail, so the history survives the next attempt.
- ``discard_dead``: the record stays in the ledger (records are never deleted) but is marked
  discarded and no longer waits; the cart's RECORD_REJECTED alert stays for an acknowledgement.
- ``audited``: any other change outside the database (a cart key file) inside the audit row's
  transaction: the row is rolled back if the change fails.

Plus the pages' reads: ``quarantine_list`` / ``quarantine_item`` / ``dead_list`` (keyset paged by id).
"""

from __future__ import annotations

import codecs
import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.errors import GatewayError
from gateway.store.audit import append
from gateway.store.ingest import SqliteIngest
from gateway.store.model import BatchResult, Incoming, Outcome

REASON_MAX = 500  # characters of an operator's reason (as the audit log keeps)
PAGE_MAX = 200  # rows per page at most

QuarantineState = Literal["waiting", "released", "discarded"]
DeadState = Literal["waiting", "discarded"]
QUARANTINE_STATES: tuple[QuarantineState, ...] = ("waiting", "released", "discarded")
DEAD_STATES: tuple[DeadState, ...] = ("waiting", "discarded")


class NotFound(GatewayError):
    """No such quarantined payload or record (the console answers 404)."""


@dataclass(frozen=True)
class ActionResult:
    """What an action did, or why it did not: ``text`` in English for logs and the CLI; ``key`` and
    ``args`` for the console's words (``gateway.console.texts.actions``)."""

    ok: bool
    text: str
    key: str = ""
    args: dict[str, str] = field(default_factory=dict)


def check_reason(reason: str) -> str:
    """The operator's reason, stripped: 1..REASON_MAX characters; ValueError naming the field."""
    reason = reason.strip()
    if not 1 <= len(reason) <= REASON_MAX:
        raise ValueError(f"reason: required, 1 to {REASON_MAX} characters (got {len(reason)})")
    return reason


class SqliteActions(SqliteIngest):
    """Audited quarantine and dead-letter actions and the reads behind their pages."""

    # ---- quarantine ----------------------------------------------------------------------------

    def release_quarantined(self, quarantine_id: int, rec: Incoming, now: float, user: str) -> Outcome:
        """Store ``rec`` (checked again by the caller) and mark the row released, with the audit row
        ``quarantine.release``, in ONE transaction.  A row released or discarded meanwhile, or a store
        refusal (REPLAYED, CHAIN_BREAK), changes nothing: a rejected Outcome that says why."""
        with self._tx("releasing a quarantined record") as db:
            state = _quarantine_state(db, quarantine_id)
            if state != "waiting":
                return Outcome("rejected", cart=rec.cart, kind="STATE", reason=f"#{quarantine_id} was {state} already")
            outcome = self._insert(db, rec, now, BatchResult([]))
            if outcome.status == "rejected":
                return outcome
            if outcome.status == "stored":
                self._seen(db, rec.cart, rec.site, now)
                self._advance(db, rec.cart, rec.site, now, BatchResult([]))
            self._mark_released(db, quarantine_id, f"released by {user}: {outcome.status}", now)
            append(db, now, user, "quarantine.release", f"quarantine {quarantine_id}", "",
                   {"record": rec.id, "cart": rec.cart, "seq": rec.seq, "outcome": outcome.status})
        return outcome

    def discard_quarantined(self, quarantine_id: int, user: str, reason: str, now: float) -> ActionResult:
        """Mark a waiting row discarded (kept, never released); ValueError for a missing reason,
        NotFound for no such row; a released or discarded row is refused."""
        reason = check_reason(reason)
        with self._tx("discarding a quarantined payload") as db:
            state = _quarantine_state(db, quarantine_id)
            if state != "waiting":
                return ActionResult(False, f"#{quarantine_id} was {state} already: nothing to discard",
                                    f"action_refused_{state}", {"id": str(quarantine_id)})
            row = db.execute("SELECT kind, cart, seq, sha256, size FROM quarantine WHERE id = ?",
                             (quarantine_id,)).fetchone()
            db.execute("UPDATE quarantine SET discarded_at = ?, discarded_by = ?, discard_reason = ? WHERE id = ?",
                       (now, user, reason, quarantine_id))
            append(db, now, user, "quarantine.discard", f"quarantine {quarantine_id}", reason,
                   dict(zip(("kind", "cart", "seq", "sha256", "size"), row, strict=True)))
        return ActionResult(True, f"#{quarantine_id} discarded", "action_q_discarded", {"id": str(quarantine_id)})

    # ---- dead letters ----------------------------------------------------------------------------

    def retry_dead(self, record_id: str, user: str, now: float) -> ActionResult:
        """A dead letter back to 'stored', due now (its attempts kept; its last error in the audit
        row's detail).  NotFound for no such record; anything not a waiting dead letter is refused."""
        with self._tx("retrying a dead letter") as db:
            row = _dead_row(db, record_id)
            refused = _dead_refusal(record_id, row)
            if refused is not None:
                return refused
            db.execute("UPDATE records SET forward_state = 'stored', next_attempt_at = ?, outcome_unknown = 0"
                       " WHERE id = ?", (now, record_id))
            append(db, now, user, "dead.retry", f"record {record_id}", "",
                   {"cart": row["cart"], "seq": row["seq"], "attempts": row["attempts"],
                    "last_error": row["last_error"]})
        return ActionResult(True, f"record {record_id} is forwarded again", "action_dead_retried", {"id": record_id})

    def discard_dead(self, record_id: str, user: str, reason: str, now: float) -> ActionResult:
        """Mark a waiting dead letter discarded: it stays in the ledger, no longer waits.  ValueError
        for a missing reason, NotFound for no such record; anything else than a waiting dead letter
        is refused."""
        reason = check_reason(reason)
        with self._tx("discarding a dead letter") as db:
            row = _dead_row(db, record_id)
            refused = _dead_refusal(record_id, row)
            if refused is not None:
                return refused
            db.execute("UPDATE records SET discarded_at = ?, discarded_by = ?, discard_reason = ? WHERE id = ?",
                       (now, user, reason, record_id))
            append(db, now, user, "dead.discard", f"record {record_id}", reason,
                   {"cart": row["cart"], "seq": row["seq"], "attempts": row["attempts"],
                    "last_error": row["last_error"]})
        return ActionResult(True, f"record {record_id} discarded", "action_dead_discarded", {"id": record_id})

    # ---- any other audited change ----------------------------------------------------------------

    def audited(self, user: str, action: str, target: str, reason: str, detail: Mapping[str, Any],
                now: float, change: Callable[[], None]) -> int:
        """Append the audit row, then run ``change`` (e.g. a file's atomic rename) in the same
        transaction: if it raises, the row is rolled back and the exception propagates."""
        with self._tx(f"auditing {action}") as db:
            entry = append(db, now, user, action, target, reason, detail)
            change()
        return entry

    # ---- the pages' reads ----------------------------------------------------------------------

    def quarantine_list(self, state: QuarantineState | None = None, kind: str | None = None,
                        cart: str | None = None, limit: int = 50, before_id: int | None = None) -> list[dict[str, Any]]:
        with self._read("listing quarantine") as db:
            return quarantine_list(db, state, kind, cart, limit, before_id)

    def quarantine_item(self, quarantine_id: int) -> dict[str, Any] | None:
        with self._read("reading a quarantined payload") as db:
            return quarantine_item(db, quarantine_id)

    def dead_list(self, state: DeadState | None = "waiting", limit: int = 50,
                  before: int | None = None) -> list[dict[str, Any]]:
        with self._read("listing dead letters") as db:
            return dead_list(db, state, limit, before)


# ---- queries (a plain connection: the store's, or the console's own) ----------------------------

_Q_COLUMNS = ("id, received_at, topic, kind, cart, subject, seq, reason, size, length(payload) AS kept, sha256,"
              " released_at, release_note, discarded_at, discarded_by, discard_reason")
_Q_STATES = {"waiting": "released_at IS NULL AND discarded_at IS NULL", "released": "released_at IS NOT NULL",
             "discarded": "discarded_at IS NOT NULL"}


def quarantine_list(db: sqlite3.Connection, state: QuarantineState | None = None, kind: str | None = None,
                    cart: str | None = None, limit: int = 50, before_id: int | None = None) -> list[dict[str, Any]]:
    """Newest first (by id), without payloads; ``before_id`` pages back; ValueError for an unknown state."""
    where, params = _filters(state, _Q_STATES, "state", (("kind", kind), ("cart", cart)))
    if before_id is not None:
        where.append("id < ?")
        params.append(before_id)
    clause = " WHERE " + " AND ".join(where) if where else ""
    rows = _rows(db, f"SELECT {_Q_COLUMNS} FROM quarantine{clause} ORDER BY id DESC LIMIT ?",
                 (*params, _limit(limit)))
    for row in rows:
        row["state"] = _state_of(row)
    return rows


def quarantine_item(db: sqlite3.Connection, quarantine_id: int) -> dict[str, Any] | None:
    """One row with its kept prefix shown safely (``payload_view``), or None."""
    rows = _rows(db, f"SELECT {_Q_COLUMNS}, payload FROM quarantine WHERE id = ?", (quarantine_id,))
    if not rows:
        return None
    row = rows[0]
    row["state"] = _state_of(row)
    row["payload"] = payload_view(bytes(row["payload"]), int(row["size"] or 0))
    return row


_D_STATES = {"waiting": "discarded_at IS NULL", "discarded": "discarded_at IS NOT NULL"}


def dead_list(db: sqlite3.Connection, state: DeadState | None = "waiting", limit: int = 50,
              before: int | None = None) -> list[dict[str, Any]]:
    """Dead letters, newest first (by rowid: ``cursor``; ``before`` pages back): {id, site, cart, seq,
    type, attempts, reason (the platform's last answer), last_attempt_at, received_at, discarded_*}."""
    where, params = _filters(state, _D_STATES, "state", ())
    where.insert(0, "forward_state = 'dead'")
    if before is not None:
        where.append("rowid < ?")
        params.append(before)
    return _rows(db, "SELECT rowid AS cursor, id, site, cart, seq, type, attempts, last_error AS reason,"
                     " sent_at AS last_attempt_at, received_at, discarded_at, discarded_by, discard_reason"
                     f" FROM records WHERE {' AND '.join(where)} ORDER BY rowid DESC LIMIT ?",
                 (*params, _limit(limit)))


# ---- a kept payload, shown safely ---------------------------------------------------------------

HEX_ROW = 32  # bytes per line of a hex dump


def payload_view(kept: bytes, size: int) -> dict[str, Any]:
    """How the page shows a kept prefix: {format: "json" (pretty) | "text" (a UTF-8 JSON prefix) |
    "hex" (offset + bytes per line), text, kept, size, truncated}.  Text only when it decodes as
    UTF-8 (a prefix may end inside a character), starts like JSON and holds no control characters
    but newlines and tabs; anything else is hex, so no byte reaches the page as markup or escape."""
    base = {"kept": len(kept), "size": max(size, len(kept)), "truncated": len(kept) < size}
    text = _utf8_prefix(kept)
    if text is not None and text.lstrip()[:1] in ("{", "[") and not any(
            (ord(c) < 32 and c not in "\n\r\t") or 0x7F <= ord(c) < 0xA0 for c in text):
        try:
            return {**base, "format": "json", "text": json.dumps(json.loads(text), ensure_ascii=False, indent=2)}
        except ValueError:
            return {**base, "format": "text", "text": text}
    lines = [f"{i:08x}  {kept[i:i + HEX_ROW].hex(' ')}" for i in range(0, len(kept), HEX_ROW)]
    return {**base, "format": "hex", "text": "\n".join(lines)}


def _utf8_prefix(data: bytes) -> str | None:
    """``data`` as UTF-8, allowing one incomplete character at its end (a cut prefix); None if not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        return decoder.decode(data, final=False)
    except UnicodeDecodeError:
        return None


# ---- helpers ----------------------------------------------------------------------------------------

def _quarantine_state(db: sqlite3.Connection, quarantine_id: int) -> QuarantineState:
    row = db.execute("SELECT released_at, discarded_at FROM quarantine WHERE id = ?", (quarantine_id,)).fetchone()
    if row is None:
        raise NotFound(f"no quarantined payload #{quarantine_id}")
    return "released" if row[0] is not None else "discarded" if row[1] is not None else "waiting"


def _state_of(row: Mapping[str, Any]) -> QuarantineState:
    return "released" if row["released_at"] is not None else "discarded" if row["discarded_at"] is not None \
        else "waiting"


def _dead_row(db: sqlite3.Connection, record_id: str) -> dict[str, Any]:
    rows = _rows(db, "SELECT cart, seq, forward_state, attempts, last_error, discarded_at, discarded_by FROM records"
                     " WHERE id = ?", (record_id,))
    if not rows:
        raise NotFound(f"no record {record_id}")
    return rows[0]


def _dead_refusal(record_id: str, row: Mapping[str, Any]) -> ActionResult | None:
    """Why ``row`` is not a waiting dead letter, or None if it is."""
    if row["discarded_at"] is not None:
        return ActionResult(False, f"record {record_id} was discarded by {row['discarded_by']}",
                            "action_dead_refused_discarded", {"id": record_id})
    if row["forward_state"] != "dead":
        return ActionResult(False, f"record {record_id} is {row['forward_state']}, not a dead letter",
                            "action_dead_refused_state", {"id": record_id, "state": str(row["forward_state"])})
    return None


def _filters(state: str | None, states: Mapping[str, str], name: str,
             equal: tuple[tuple[str, str | None], ...]) -> tuple[list[str], list[Any]]:
    if state is not None and state not in states:
        raise ValueError(f"{name} {state!r}: expected one of {', '.join(states)}")
    where = [states[state]] if state is not None else []
    params: list[Any] = []
    for column, value in equal:
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    return where, params


def _limit(limit: int) -> int:
    return max(1, min(PAGE_MAX, limit))


def _rows(db: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    cur = db.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
