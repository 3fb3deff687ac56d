"""The gateway's alert kinds beside the wire's, how each kind ends, and which peripheral states are faults.

- wire kinds (``wire.ALERT_KINDS``: FORGED, ALTERED, …): events on what arrived; repeats collapse
  into the active alert's count; an operator's acknowledgement resolves them (an event does not
  "clear"), and a later occurrence raises a new alert.
- DOMAIN_KINDS: flags a stored record carries (``gateway.alerts.record_flags``: a storage check-in
  with overdue, deviating or missing bags or REJECTED, bags declared lost by an incident, a transfer
  carrying bags kept in storage beyond the limit); events too, ended the same way.  RECORD_REJECTED
  is reserved for a record the platform refuses for good (raised by the forwarder's dead-lettering, when that is wired).
- CONDITION_KINDS: a state of the fleet (``gateway.alerts.rules``): opened when it holds, resolved
  by the rules engine when it no longer does; acknowledging only says an operator is on it.

The store's CHECK lists them written out (``gateway.store.schema.ALERT_KINDS_V5``); a test keeps
the two equal.
"""

from __future__ import annotations

from edge import catalogue, wire

CONDITION_KINDS: tuple[str, ...] = ("OFFLINE", "BACKLOG", "OLDEST_UNSENT", "CLOCK", "DISK", "PERIPHERAL")
DOMAIN_KINDS: tuple[str, ...] = ("STORAGE_OVERDUE", "WEIGHT_DEVIATION", "BAG_MISSING", "RECORD_REJECTED")
ALL_KINDS: tuple[str, ...] = (*wire.ALERT_KINDS, *DOMAIN_KINDS, *CONDITION_KINDS)

# Webhook events: an alert was opened, acknowledged by an operator, or resolved.  A collapsed
# repeat is not an event (its count shows in the next event and on the console).
EVENTS: tuple[str, ...] = ("opened", "acknowledged", "resolved")

# The cart's peripherals its telemetry reports (``edge.catalogue.DEVICES``).
PERIPHERALS: tuple[str, ...] = tuple(catalogue.DEVICES)
# Status-bar levels that are not a fault: working ("ok") or not fitted / stopped on purpose ("off").
# Everything else — "bad", "warn", and "busy" (connecting, moving) — is a fault once it lasts longer
# than ``[alerts].peripheral_faulty_min``; a word the catalogue does not know is a fault too.
_FINE_LEVELS = ("ok", "off")


def faulty(state: object) -> bool:
    """Is a peripheral in this reported state (a word, or absent: None) not working?"""
    if state is None:
        return False
    known = catalogue.DEVICE_STATE.get(str(state))
    return known is None or known.level not in _FINE_LEVELS
