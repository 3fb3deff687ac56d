"""The gateway's store: records, their chain and forwarding state, quarantine, alerts, devices.

The row is the source of truth (CONVENTIONS 6): ingest acks a cart only after ``store_batch``
committed, and the forwarder forgets nothing until the platform accepted it.

Rooms:
    model.py       the values in and out (Incoming, Rejected, BatchResult, Pending, …), back-end free
    repository.py  what ingest, the forwarder and operators need: IngestRepository, Outbox, Queries
    schema.py      the numbered migrations (``PRAGMA user_version``)
    connection.py  the one SQLite connection: pragmas, lock, ``BEGIN IMMEDIATE`` transactions
    ingest.py      the ingest transactions: store_batch, chain linking, gaps, heads, release
    devices.py     verified device state (boots, consistency), the command counter, command results
    quarantine.py  quarantine (a prefix of each payload, a byte budget) and collapsed alerts
    alerting.py    the alert lifecycle (conditions applied, acknowledged, resolved) and the webhook queue
    history.py     telemetry history: raw rows, minute and hour rollups, retention, series for charts
    outbox.py      forwarding states: due, mark_*, recovery after a crash
    queries.py     operator queries and ``read_summary`` (read-only, safe while a gateway runs)
    sqlite.py      ``SqliteStore``: the rooms composed into one ``GatewayRepository``
"""

from gateway.store.connection import BUSY_TIMEOUT_MS
from gateway.store.history import Retention
from gateway.store.model import (
    Alert,
    BatchResult,
    Command,
    Condition,
    DeviceUpdate,
    FleetRow,
    Gap,
    Incoming,
    Outcome,
    Pending,
    QuarantineLimits,
    QuarantineRow,
    Rejected,
)
from gateway.store.queries import SUMMARY_ROWS, read_summary
from gateway.store.repository import Alerting, GatewayRepository, IngestRepository, Outbox, Queries
from gateway.store.schema import DB_NAME, MIGRATIONS
from gateway.store.sqlite import SqliteStore

__all__ = [
    "BUSY_TIMEOUT_MS", "DB_NAME", "MIGRATIONS", "SUMMARY_ROWS", "Alert", "Alerting", "BatchResult", "Command",
    "Condition", "DeviceUpdate", "FleetRow", "Gap", "GatewayRepository", "Incoming", "IngestRepository", "Outbox",
    "Outcome", "Pending", "QuarantineLimits", "QuarantineRow", "Queries", "Rejected", "Retention", "SqliteStore",
    "read_summary",
]
