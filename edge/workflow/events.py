"""What goes into the workflow (events, each with the time it happened) and what comes out (effects).

**Events the shell sends**: ``Scanned(code)`` / ``Rejected(reason)`` a decoded QR / one
``edge.codes`` refused, or a PIN the shell did not accept; ``Weighed(Weight)`` every scale reading;
``Action(id, value)`` a kiosk button (``edge.workflow.actions``); ``PinConfirmed(person_id)`` the
shell checked a PIN typed for ``confirm_pin`` (the machine never sees PINs); ``ActuatorChanged``
the scale slide-out's state (``catalogue.ACTUATOR_STATES``; "none" = no actuator fitted: then no
``Actuate`` effects at all); ``Printed(ok, reason)`` the result of the last ``PrintLabel``; ``Tick``
time passing (the round-overdue warning); ``Committed(seq, record_id)`` / ``CommitFailed(reason)``
the result of the last ``Commit``.

**Effects the shell carries out**, in list order: ``Commit(rtype, body)`` write the record, then
send Committed / CommitFailed; ``PrintLabel(code, fields)`` print a label for bag code ``code``,
then send Printed; ``Actuate("extend" | "retract")`` drive the slide-out (it reports back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge.codes import Code
from edge.workflow.state import Weight, Words


@dataclass(frozen=True)
class Scanned:
    code: Code
    at: datetime


@dataclass(frozen=True)
class Rejected:
    """A payload ``edge.codes`` refused (its error's message), or a PIN the shell did not accept."""

    reason: Words
    at: datetime


@dataclass(frozen=True)
class Weighed:
    weight: Weight
    at: datetime


@dataclass(frozen=True)
class Committed:
    seq: int
    record_id: str
    at: datetime


@dataclass(frozen=True)
class CommitFailed:
    reason: Words
    at: datetime


@dataclass(frozen=True)
class Action:
    """A kiosk button: ``id`` from ``view()["actions"]``, ``value`` the typed text / reason / ""."""

    id: str
    value: str
    at: datetime


@dataclass(frozen=True)
class PinConfirmed:
    person_id: str
    at: datetime


@dataclass(frozen=True)
class ActuatorChanged:
    state: str
    at: datetime
    reason: Words | None = None  # with "fault": what the actuator's watchdog saw


@dataclass(frozen=True)
class Tick:
    at: datetime


@dataclass(frozen=True)
class Printed:
    ok: bool
    reason: Words | None
    at: datetime


Event = (Scanned | Rejected | Weighed | Committed | CommitFailed | Action | PinConfirmed | ActuatorChanged
         | Tick | Printed)


@dataclass(frozen=True)
class Commit:
    rtype: str
    body: dict[str, Any]


@dataclass(frozen=True)
class LabelFields:
    """What a bag's label says besides its QR (waste-domain §8.3, the medical minimum; Decree 36):
    names from the roster, the time in the cart's zone (with its offset), the chosen notes."""

    org: str
    department: str
    category: str
    category_name: str
    category_name_en: str
    waste_code: str
    weight_g: int
    produced_at: datetime
    package_code: str
    collector: str
    cart: str
    notes: str = ""                 # 备注: the chosen LABEL_NOTES' words
    org_name: str = ""              # 产生单位 (the roster's)
    department_name: str = ""
    main_components: str = ""       # 主要成分 (chemical waste)


@dataclass(frozen=True)
class PrintLabel:
    code: Code
    fields: LabelFields


@dataclass(frozen=True)
class Actuate:
    direction: str  # "extend" | "retract"


Effect = Commit | PrintLabel | Actuate
