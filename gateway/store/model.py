"""What goes into the gateway's store and what comes out of it, whatever the database.

Plain frozen values, so that the checks (``gateway.ingest.checks``, run in worker processes too:
they must pickle), the ingest worker, the forwarder and every back-end speak the same types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from edge import wire


@dataclass(frozen=True)
class Incoming:
    """A received record that passed topic, schema and seal checks; ``envelope`` is its JSON."""

    id: str
    site: str
    cart: str
    seq: int
    type: str
    created_at: str
    hash: str
    envelope: str
    topic: str
    payload: bytes  # as received, kept for quarantine if the store refuses it
    prev_hash: str = wire.GENESIS_HASH


@dataclass(frozen=True)
class Rejected:
    """A received payload refused before the store; quarantined with an alert in the same commit."""

    topic: str
    payload: bytes
    reason: str
    kind: str = "MALFORMED"  # one of wire.ALERT_KINDS
    site: str | None = None
    cart: str | None = None
    subject: str | None = None  # record id if known; the topic otherwise


@dataclass(frozen=True)
class DeviceUpdate:
    """A cart's status (retained birth / will) or telemetry, already parsed to a JSON object."""

    site: str
    cart: str
    leaf: Literal["status", "telemetry"]
    data: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What ``store_batch`` did with one message; ``id`` is set for stored and duplicate."""

    status: Literal["stored", "duplicate", "rejected"]
    id: str | None = None
    cart: str | None = None
    reason: str | None = None
    kind: str | None = None  # alert kind of a rejection


@dataclass(frozen=True)
class Alert:
    kind: str
    cart: str | None
    site: str | None
    subject: str
    detail: str


@dataclass(frozen=True)
class Gap:
    """A cart whose highest stored seq is above its contiguous ``upto_seq``."""

    site: str
    cart: str
    upto_seq: int
    max_seq: int

    @property
    def from_seq(self) -> int:
        return self.upto_seq + 1


@dataclass
class BatchResult:
    """One outcome per item, the alerts raised and the gaps open after the commit."""

    outcomes: list[Outcome]
    alerts: list[Alert] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)


@dataclass(frozen=True)
class Pending:
    """A stored record due for (another) platform attempt."""

    id: str
    site: str
    cart: str
    seq: int
    type: str
    created_at: str
    hash: str
    envelope: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class QuarantineRow:
    received_at: float
    topic: str
    payload: bytes
    reason: str
    kind: str | None = None
    cart: str | None = None
    subject: str | None = None
