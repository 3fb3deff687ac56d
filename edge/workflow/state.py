"""What the cart's workflow knows: the step, the round, where the cart is (a visit), the bags.

The state is a tree, not a bag of flags: a ``Round`` exists exactly while a round is open, and the
cart's ``visit`` is one of ``Stop`` (a department), ``Storage`` (the storage room), ``Transfer``
(the transporter's vehicle) or ``VoidScan`` (waiting for the label of a bag to void) — so code that
works at a department gets a ``Stop`` and never asks whether a department is set.  Read-only
properties (``lines``, ``department``, ``place`` …) give the flat view the screen and the tests read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from edge.catalogue import ACTUATOR_STATES
from edge.messages import NO_MSG, Msg, Text
from edge.roster import Room, Roster

__all__ = ["ACTUATOR_STATES", "COMPONENTS_MAX", "DEFAULT_ZONE", "EMPTY_BELOW_G", "EMPTY_ROSTER", "REASON_MAX", "Bag",
           "Batch", "Correction", "LastRecord", "Limits", "Line", "LostReport", "Pending", "PrintJob", "Reweigh",
           "Round", "Saving", "Signer", "State", "Step", "Stop", "Storage", "Transfer", "Visit", "VoidScan", "Weight",
           "Words"]

Words = Msg | Text  # what the shell reports (a refusal, a device's fault): a key, or words it already has


class Step(StrEnum):
    IDLE = "idle"              # waiting for a collector's badge
    ROUND = "round"            # round open, waiting for a department / room / vehicle code
    STOP = "stop"              # at a department: weigh bags, categories, labels
    CONFIRM = "confirm"        # the list is shown to the nurse: badge or PIN
    SAVING = "saving"          # commit requested, not yet durable
    STORAGE = "storage"        # storage room: re-weigh and reconcile
    TRANSFER = "transfer"      # hand-over to the transporter's vehicle
    VOID = "void"              # a void: waiting for the bag's label, then for a supervisor
    CORRECT = "correct"        # correcting a departed transfer's manifest: the number twice, then a supervisor


# A scale reading below this many grams counts as "platform empty" (re-arms the next bag).
EMPTY_BELOW_G = 20
REASON_MAX = 200  # characters of a void reason
COMPONENTS_MAX = 24  # characters of 主要成分 typed for chemical waste (the label's line holds this many)
DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")  # times in records, labels and on the kiosk carry this zone's offset
# A cart with no roster knows nobody: every badge is refused until one is configured.
EMPTY_ROSTER = Roster(version="none", org_name="未配置人员名单", rooms={"STORAGE": Room(name="暂存间")})


class Limits(BaseModel):
    """The round's rules: the ``[workflow]`` section of the cart's config is one of these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    round_max_h: float = Field(4.0, gt=0, le=48)  # a round open longer is warned about (routes have fixed times)
    # Ward -> storage: a bag handed over longer ago than this at its check-in is overdue (日产日清: within the day).
    ward_max_h: float = Field(24.0, gt=0, le=720)
    # In storage: checked in longer ago than this when it leaves on a vehicle = overdue (暂时贮存不得超过2天).
    storage_overdue_h: float = Field(48.0, gt=0)
    warn_pct: int = Field(80, ge=1, le=100)  # a bag past this share of either limit is warned about on the kiosk
    tolerance_g: int = Field(50, ge=0)  # re-weigh deviation always allowed (g): above a cart scale's division
    tolerance_pct: int = Field(5, ge=0, le=100)  # ... or this share of the expected weight, if larger (§6.4)
    max_bag_kg: float = Field(60.0, gt=0, le=1000)  # one bag heavier is refused: cart scales are <= 60 kg (§7.1)

    @property
    def round_max_s(self) -> int:
        return int(self.round_max_h * 3600)

    @property
    def storage_overdue_s(self) -> int:
        return int(self.storage_overdue_h * 3600)

    @property
    def ward_max_s(self) -> int:
        return int(self.ward_max_h * 3600)

    @property
    def max_bag_g(self) -> int:
        return int(self.max_bag_kg * 1000)


@dataclass(frozen=True)
class Weight:
    """What the workflow needs of a scale reading (the shell converts ``edge.devices.scales.Reading``)."""

    net_g: int | None
    stable: bool
    tare_g: int = 0
    protocol: str = ""
    raw: str = ""
    error: Words | None = None


@dataclass(frozen=True)
class Line:
    """One bag at the current stop.  ``label``: "scanned" (its own label states the category),
    "printed" (we printed it: a category change reprints), "plain" (label without category)."""

    package_code: str
    category: str
    weight_g: int
    weighing: dict[str, Any]
    label: str = "scanned"
    notes: tuple[str, ...] = ()    # catalogue.LABEL_NOTES ids printed in the label's 备注
    components: str = ""           # 主要成分 (chemical waste)

    @property
    def editable(self) -> bool:
        return self.label != "scanned"


@dataclass(frozen=True)
class Bag:
    """A bag handed over (carried) or checked in to storage (stored), until the next step."""

    package_code: str
    category: str
    weight_g: int
    department: str
    handed_over_at: datetime
    record_id: str                  # the handover record
    facility: str | None = None     # storage room, once stored
    stored_at: datetime | None = None  # checked in (the in-storage dwell runs from here)


@dataclass(frozen=True)
class Pending:
    """A bag being taken: weight captured; waiting for its category and/or label."""

    weight_g: int
    weighing: dict[str, Any]
    category: str | None = None
    package_code: str | None = None
    label: str = "plain"           # what the line will say if completed without a further scan
    notes: tuple[str, ...] = ()    # chosen on the kiosk before printing (catalogue.LABEL_NOTES ids)
    components: str = ""           # 主要成分, typed for chemical waste before printing


@dataclass(frozen=True)
class PrintJob:
    package_code: str
    category: str
    reprint: bool = False          # a category change of a printed line (``edit``)


@dataclass(frozen=True)
class Reweigh:
    package_code: str
    weight_g: int
    weighing: dict[str, Any]


@dataclass(frozen=True)
class Batch:
    package_codes: tuple[str, ...]
    weight_g: int
    weighing: dict[str, Any]


@dataclass(frozen=True)
class Round:
    """An open collection round: who collects, since when."""

    collector: str
    id: str
    started_at: datetime
    warned: bool = False           # the overdue warning was given once


@dataclass(frozen=True)
class Stop:
    """At a department: the bags taken so far and the one being taken."""

    department: str
    lines: tuple[Line, ...] = ()
    pending: Pending | None = None
    editing: str | None = None     # package code whose category is being changed
    print_job: PrintJob | None = None
    confirmer: str | None = None   # the nurse whose confirmation is being saved

    @property
    def busy(self) -> bool:
        """A bag is half-taken (weighed, printing, or its category being changed)."""
        return self.pending is not None or self.print_job is not None or self.editing is not None


@dataclass(frozen=True)
class Signer:
    """Who signed and how (badge "card" or "pin"); the roster gives the name and says the role allows it."""

    person_id: str
    role: str
    auth_method: str = "card"


@dataclass(frozen=True)
class LostReport:
    """Bags not found at the check-in, reported lost: waiting for a supervisor to confirm."""

    package_codes: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Storage:
    """In the storage room: the carried bags re-weighed one by one or as a batch; the keeper signs
    after the last change (a re-weigh clears the signature), so a deviation is confirmed knowingly."""

    room: str
    reweighs: tuple[Reweigh, ...] = ()
    batch: Batch | None = None
    keeper: Signer | None = None
    lost: LostReport | None = None
    incidents: tuple[str, ...] = ()  # incident records committed during this visit


@dataclass(frozen=True)
class Transfer:
    """At the transporter's vehicle: the driver who signs and the manifest number (typed twice)."""

    vehicle: str
    manifest: str | None = None          # confirmed (typed twice alike)
    manifest_type: str = "national"      # national | local (local only on purpose: its own button)
    first: tuple[str, str] | None = None  # (type, number) typed once, waiting for the second entry
    driver: Signer | None = None


@dataclass(frozen=True)
class VoidScan:
    """A void: the reason (a VOID_REASONS id and words), then the bag (or the last record), then a supervisor."""

    reason_code: str
    reason: str
    record_id: str | None = None       # what is voided, once known
    rtype: str | None = None
    package: str | None = None         # one bag of it (None: the whole record)


@dataclass(frozen=True)
class Correction:
    """A departed transfer's manifest number corrected (it cannot be voided: its bags have left): the
    reason, the right number typed twice (the same fields as ``Transfer``), then a supervisor."""

    record_id: str
    was: tuple[str, str]                 # (type, number): the manifest as the transfer (or its last correction) has it
    reason_code: str
    reason: str
    manifest: str | None = None
    manifest_type: str = "national"
    first: tuple[str, str] | None = None


Visit = Stop | Storage | Transfer | VoidScan | Correction


@dataclass(frozen=True)
class Saving:
    """The outstanding Commit: what it was (its body is applied as the record once it is durable)
    and where a failure goes back to."""

    rtype: str
    body: dict[str, Any]
    back: Step


@dataclass(frozen=True)
class LastRecord:
    """The last committed record; ``before`` = (carried, stored) before it, to undo a void."""

    record_id: str
    rtype: str
    seq: int
    before: tuple[tuple[Bag, ...], tuple[Bag, ...]]
    manifest: tuple[str, str] | None = None  # a transfer's manifest (type, number), as last corrected


@dataclass(frozen=True)
class State:
    org: str
    cart: str
    limits: Limits = field(default_factory=Limits)
    roster: Roster = EMPTY_ROSTER         # who may sign what, and the names records carry
    zone: ZoneInfo = DEFAULT_ZONE         # the offset of every time in records, labels and on the screen
    step: Step = Step.IDLE
    round: Round | None = None
    visit: Visit | None = None
    weight: Weight | None = None
    weight_at: datetime | None = None
    armed: bool = True                    # platform was empty since the last bag: a new bag may be taken
    actuator: str = "none"
    carried: tuple[Bag, ...] = ()         # handed over since the last storage-in
    stored: tuple[Bag, ...] = ()          # checked in since the last transfer
    saving: Saving | None = None
    last_record: LastRecord | None = None
    message: Msg = NO_MSG                 # last confirmation (green)
    error: Words = NO_MSG                 # last refusal (red), until the next accepted action
    voice_seq: int = 0                    # bumps when a main step is entered: the page speaks once
    voice: Words = NO_MSG
    saved: int = 0                        # records committed this run
    last_seq: int | None = None           # seq of the last Committed (cleared when a new commit starts)
    dwell_warned: frozenset[str] = frozenset()  # "<code>:warn" / "<code>:over" already announced

    # the flat view: what the screen and the tests read ------------------------------------------

    @property
    def stop(self) -> Stop | None:
        return self.visit if isinstance(self.visit, Stop) else None

    @property
    def storage(self) -> Storage | None:
        return self.visit if isinstance(self.visit, Storage) else None

    @property
    def transfer(self) -> Transfer | None:
        return self.visit if isinstance(self.visit, Transfer) else None

    @property
    def collector(self) -> str | None:
        return self.round.collector if self.round else None

    @property
    def round_id(self) -> str | None:
        return self.round.id if self.round else None

    @property
    def round_started_at(self) -> datetime | None:
        return self.round.started_at if self.round else None

    @property
    def department(self) -> str | None:
        return self.stop.department if self.stop else None

    @property
    def place(self) -> str | None:
        """The storage room or the vehicle."""
        v = self.visit
        return v.room if isinstance(v, Storage) else v.vehicle if isinstance(v, Transfer) else None

    @property
    def lines(self) -> tuple[Line, ...]:
        return self.stop.lines if self.stop else ()

    @property
    def pending(self) -> Pending | None:
        return self.stop.pending if self.stop else None

    @property
    def editing(self) -> str | None:
        return self.stop.editing if self.stop else None

    @property
    def print_job(self) -> PrintJob | None:
        return self.stop.print_job if self.stop else None

    @property
    def reweighs(self) -> tuple[Reweigh, ...]:
        return self.storage.reweighs if self.storage else ()

    @property
    def batch(self) -> Batch | None:
        return self.storage.batch if self.storage else None

    @property
    def manifest(self) -> str | None:
        return self.transfer.manifest if self.transfer else None

    @property
    def void_reason(self) -> str | None:
        return self.visit.reason if isinstance(self.visit, VoidScan) else None

    @property
    def void(self) -> VoidScan | None:
        return self.visit if isinstance(self.visit, VoidScan) else None

    @property
    def correction(self) -> Correction | None:
        return self.visit if isinstance(self.visit, Correction) else None
