"""Reading a cart's ledger from outside the agent: ``wastecart edge ledger`` (text, JSON, CSV).

Through sqlite-utils on a read-only connection (``mode=ro``), so it is safe while the agent runs
and can never write: the cart's own commits stay on the raw sqlite3 connection in
``edge.ledger.store`` (``BEGIN IMMEDIATE``, WAL, ``synchronous=FULL``).  One query, one
snapshot: every row comes from the same moment of the ledger.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import sqlite_utils

from edge.errors import StoreError
from edge.ledger.store import LEDGER_FILE

# What `edge ledger --json` shows per record; "rejected" is the gateway's reason (wire.REJECT_REASONS)
# for a record it refused for good, or None.
BRIEF = ("id", "seq", "type", "created_at", "synced", "rejected")
# ... and with --full: when acked or rejected (and why, in the gateway's words), the signed record itself
FULL = (*BRIEF, "synced_at", "rejected_at", "rejected_detail", "record")
REJECTED = ("rejected_reason", "rejected_detail", "rejected_at")  # columns of migration 2


@contextmanager
def open_read_only(data_dir: Path) -> Iterator[sqlite_utils.Database]:
    """The cart's ledger as a read-only sqlite-utils ``Database``; StoreError if it is not there."""
    path = data_dir / LEDGER_FILE
    if not path.exists():
        raise StoreError("ledger.none", path=path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError("ledger.unreadable", path=path, reason=str(exc)) from exc
    # No plugins (nothing outside this project touches a cart's ledger), no pragmas set.
    db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
    try:
        yield db
    except sqlite3.Error as exc:
        raise StoreError("ledger.unreadable", path=path, reason=str(exc)) from exc
    finally:
        db.close()


def read_ledger(data_dir: Path) -> list[dict[str, Any]]:
    """Every record in a cart's ledger, in seq order: ``FULL`` keys, ``record`` the parsed envelope."""
    with open_read_only(data_dir) as db:
        table = db.table("records")
        # A ledger the agent has not opened since the upgrade lacks migration 2 (read-only: not added here).
        have = set(table.columns_dict)
        rejected = ", ".join(c if c in have else f"NULL AS {c}" for c in REJECTED)
        rows = table.rows_where(select=f"id, seq, type, created_at, synced_at, {rejected}, envelope", order_by="seq")
        return [
            {"id": r["id"], "seq": r["seq"], "type": r["type"], "created_at": r["created_at"],
             "synced": r["synced_at"] is not None, "rejected": r["rejected_reason"], "synced_at": r["synced_at"],
             "rejected_at": r["rejected_at"], "rejected_detail": r["rejected_detail"],
             "record": json.loads(r["envelope"])}
            for r in rows
        ]


def listing(data_dir: Path, *, full: bool = False) -> list[dict[str, Any]]:
    """The rows ``edge ledger`` prints or exports: ``BRIEF`` keys, or ``FULL`` with ``full``."""
    keys = FULL if full else BRIEF
    return [{k: row[k] for k in keys} for row in read_ledger(data_dir)]


def write_json_lines(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    """One JSON object per record, one per line; Chinese as itself (not \\u escapes)."""
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO, *, full: bool = False) -> int:
    """A header and one line per record; ``synced`` as true/false, ``rejected`` the reason or empty,
    ``record`` as its canonical JSON (the exact text that was signed and sent).  Returns the number
    of records written."""
    writer = csv.DictWriter(out, fieldnames=FULL if full else BRIEF, lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in rows:
        cells = {**row, "synced": "true" if row["synced"] else "false"}
        if "record" in cells:
            cells["record"] = json.dumps(cells["record"], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        writer.writerow(cells)
        n += 1
    return n
