"""``SqliteStore``: the gateway's store on one SQLite file, composed from its rooms.

Each room is a class on the shared ``SqliteConnection`` (one connection, one lock, one
transaction helper): ``SqliteIngest`` (ingest transactions), ``SqliteOutbox`` (forwarding) and
``SqliteQueries`` (operator reads).  Together they implement ``GatewayRepository``; a PostgreSQL
store would be a second such class beside this one.
"""

from __future__ import annotations

from gateway.store.ingest import SqliteIngest
from gateway.store.outbox import SqliteOutbox
from gateway.store.queries import SqliteQueries


class SqliteStore(SqliteIngest, SqliteOutbox, SqliteQueries):
    """``store_batch`` (ingest), ``due_for_forwarding`` / ``mark_*`` (forwarder), ``counts`` (stats).

    Opening creates or migrates the file (``SqliteConnection``); ``close()`` when done.
    """
