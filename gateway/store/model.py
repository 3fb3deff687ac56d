"""What goes into the gateway's store and what comes out of it, whatever the database.

Plain frozen values, so that the checks (``gateway.ingest.checks``, run in worker processes too:
they must pickle), the ingest worker, the forwarder and every back-end speak the same types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from edge import wire
from gateway.ledger.index import Rows


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
    key: str = ""  # the cart's public key (base64) its seal was verified with; "" in tests that store bare rows
    # its ledger index rows, made by the checks where the envelope is decoded (None: the store makes them)
    ledger: Rows | None = None


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
    seq: int | None = None  # the record's seq, when the envelope could still be read (within bounds)
    # The reason (wire.REJECT_REASONS) of a signed reject the cart can act on: set only for a record of a
    # known cart whose id and seq could be read and that re-sending cannot fix.
    reject: str | None = None


@dataclass(frozen=True)
class DeviceUpdate:
    """A cart's status (retained birth / will), telemetry or command result: the VERIFIED body of its
    signed message (``wire.open_message`` with the cart's key; every number within its bound)."""

    site: str
    cart: str
    leaf: Literal["status", "telemetry", "cmd_result"]
    data: dict[str, Any]
    topic: str = ""
    payload: bytes = b""  # as received: quarantined alone if storing it fails


@dataclass(frozen=True)
class Command:
    """A command the store logged (its counter taken) and the ingest worker signs and publishes."""

    site: str
    cart: str
    name: str
    boot_id: str
    counter: int
    args: dict[str, int | str | bool]


@dataclass(frozen=True)
class QuarantineLimits:
    """How much of the quarantine is kept: a prefix per payload, a total byte budget."""

    keep_bytes: int = 4_096
    budget_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    """What ``store_batch`` did with one message; ``id`` is set for stored and duplicate."""

    status: Literal["stored", "duplicate", "rejected"]
    id: str | None = None
    cart: str | None = None
    reason: str | None = None
    kind: str | None = None  # alert kind of a rejection
    reject: str | None = None  # a signed reject goes to the cart with this reason (None: no answer)


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
    alerts: list[Alert] = field(default_factory=list)  # newly raised (a collapsed repeat is not listed)
    gaps: list[Gap] = field(default_factory=list)
    # cart -> (upto_seq, hash of its record at upto_seq; GENESIS_HASH for 0): what its ack names
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)  # per DeviceUpdate: "applied" or why not


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
    payload: bytes  # at most QuarantineLimits.keep_bytes of it
    reason: str
    kind: str | None = None
    cart: str | None = None
    subject: str | None = None
    id: int = 0
    size: int = 0  # of the whole payload
    sha256: str | None = None  # of the whole payload
    seq: int | None = None
    released_at: float | None = None

    @property
    def truncated(self) -> bool:
        return len(self.payload) < self.size


@dataclass(frozen=True)
class Condition:
    """A condition rule that holds for one cart now (``gateway.alerts.rules``): its alert stays active
    while the rules keep returning it, and is resolved when they stop."""

    kind: str  # one of gateway.alerts.catalogue.CONDITION_KINDS
    cart: str
    site: str
    subject: str
    detail: str


@dataclass(frozen=True)
class FleetRow:
    """What the rules read of one cart: its verified state, and since when each part of it holds."""

    cart: str
    site: str
    online: bool | None  # the retained status / will; None: no verified status yet
    online_since: float | None  # when the flag took its current value (unix s)
    last_seen: float
    telemetry: dict[str, Any] | None
    telemetry_at: float | None
    faulty_since: dict[str, float] = field(default_factory=dict)  # peripheral -> not ok since (unix s)
