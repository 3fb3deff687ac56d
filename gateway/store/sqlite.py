"""``SqliteStore``: the gateway's store on one SQLite file, composed from its rooms.

Each room is a class on the shared ``SqliteConnection`` (one connection, one lock, one
transaction helper): ``SqliteIngest`` (ingest transactions, with the ledger's index rows),
``SqliteOutbox`` (forwarding), ``SqliteQueries`` (operator reads), ``SqliteAudit`` (the audit log)
and ``SqliteActions`` (operators' audited actions on quarantine and dead letters).  Together they implement
``GatewayRepository``; a PostgreSQL store would be a second such class beside this one.
"""

from __future__ import annotations

from pathlib import Path

from gateway.store.actions import SqliteActions
from gateway.store.audit import SqliteAudit
from gateway.store.ingest import SqliteIngest
from gateway.store.model import QuarantineLimits
from gateway.store.outbox import SqliteOutbox
from gateway.store.queries import SqliteQueries


class SqliteStore(SqliteActions, SqliteIngest, SqliteOutbox, SqliteQueries, SqliteAudit):
    """``store_batch`` (ingest), ``due_for_forwarding`` / ``mark_*`` (forwarder), ``counts`` (stats).

    Opening creates or migrates the file (``SqliteConnection``) and brings the ledger's index up to
    date (``reindex``: only when its version or zone changed); ``close()`` when done.
    """

    def __init__(self, path: Path, limits: QuarantineLimits | None = None, ledger_zone: str | None = None) -> None:
        super().__init__(path, limits, ledger_zone)
        self.reindex()
