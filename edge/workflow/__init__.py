"""The cart's work as one pure state machine: events in, new state + effects out, and a screen model.

Rooms: ``state`` (what the workflow knows, as sub-states), ``events`` (events in, typed effects
out), ``machine`` (the transition function; scans), ``actions`` (one declaration per kiosk button),
``visits`` (the storage room, the vehicle and voids: the actions that close a visit with a signed
record), ``moves`` (transitions both make), ``records`` (record bodies; ``apply_record`` used by commit and
replay alike), ``view`` (the typed screen model, where message keys become words).
"""

from edge.workflow.actions import action_known
from edge.workflow.events import (
    Action,
    Actuate,
    ActuatorChanged,
    Commit,
    CommitFailed,
    Committed,
    Effect,
    Event,
    LabelFields,
    PinConfirmed,
    Printed,
    PrintLabel,
    Rejected,
    Scanned,
    Tick,
    Weighed,
)
from edge.workflow.machine import Machine, new_package_code, round_overdue, step
from edge.workflow.records import (
    REPLAYED,
    apply_record,
    handover_body,
    replay,
    storage_in_body,
    tolerance_g,
    totals,
    transfer_body,
    void_body,
)
from edge.workflow.state import (
    ACTUATOR_STATES,
    EMPTY_BELOW_G,
    REASON_MAX,
    Bag,
    Batch,
    LastRecord,
    Limits,
    Line,
    Pending,
    PrintJob,
    Reweigh,
    Round,
    Saving,
    State,
    Step,
    Stop,
    Storage,
    Transfer,
    VoidScan,
    Weight,
)
from edge.workflow.view import ScreenModel, view

__all__ = [
    "ACTUATOR_STATES", "EMPTY_BELOW_G", "REASON_MAX", "REPLAYED", "Action", "Actuate", "ActuatorChanged", "Bag",
    "Batch", "Commit", "CommitFailed", "Committed", "Effect", "Event", "LabelFields", "LastRecord", "Limits", "Line",
    "Machine", "Pending", "PinConfirmed", "PrintJob", "PrintLabel", "Printed", "Rejected", "Reweigh", "Round",
    "Saving", "Scanned", "ScreenModel", "State", "Step", "Stop", "Storage", "Tick", "Transfer", "VoidScan",
    "Weighed", "Weight", "action_known", "apply_record", "handover_body", "new_package_code", "replay",
    "round_overdue", "step", "storage_in_body", "tolerance_g", "totals", "transfer_body", "view", "void_body",
]
