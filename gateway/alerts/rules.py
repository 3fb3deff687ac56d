"""The fleet's condition rules, pure: each cart's verified state + ``[alerts]`` thresholds + now ->
the conditions that hold (``Condition``: kind, cart, site, subject, detail).

The store opens an alert for a condition that starts holding and resolves it when it stops
(``apply_conditions``), so a rule here only says *whether* it holds now.  Telemetry rules read the
cart's last telemetry even while it is offline: the last known state stands until the cart says
otherwise (a cart that went away with 600 unsent records still has them).

- OFFLINE: the retained status / will says offline for longer than ``offline_min`` (since the
  status that flipped it: ``online_since``); or the status says online but nothing was heard from
  the cart for longer than ``silence_min`` (a half-open connection the broker has not noticed).
- BACKLOG: unsent records above ``backlog_max``.  OLDEST_UNSENT: the oldest older than
  ``oldest_unsent_min``.  DISK: free space below ``disk_free_mb``.
- CLOCK: the clock source is "unsynced", or |clock_offset_ms| above ``clock_offset_s``.
- PERIPHERAL: a scale/camera/printer/actuator reporting a fault (``catalogue.faulty``) for longer
  than ``peripheral_faulty_min``, timed by ``faulty_since`` (kept in the store, so a restarted
  gateway does not restart the clock).
"""

from __future__ import annotations

from collections.abc import Iterable

from edge.catalogue import CLOCK_SYNCED
from gateway.alerts.settings import AlertsConfig
from gateway.store.model import Condition, FleetRow


def evaluate(fleet: Iterable[FleetRow], limits: AlertsConfig, now: float) -> set[Condition]:
    """Every condition that holds at ``now``."""
    holding: set[Condition] = set()
    for row in fleet:
        holding.update(_cart(row, limits, now))
    return holding


def _cart(row: FleetRow, limits: AlertsConfig, now: float) -> list[Condition]:
    out: list[Condition] = []

    def hold(kind: str, subject: str, detail: str) -> None:
        out.append(Condition(kind, row.cart, row.site, subject, detail))

    if row.online is False and row.online_since is not None and now - row.online_since > limits.offline_min * 60:
        hold("OFFLINE", "status offline", f"offline since {_ago(now - row.online_since)} ago (its will or status)")
    elif row.online is True and now - row.last_seen > limits.silence_min * 60:
        hold("OFFLINE", "silent", f"status online but nothing heard for {_ago(now - row.last_seen)}")
    t = row.telemetry
    if t is None:
        return out
    backlog = _int(t.get("backlog"))
    if backlog is not None and backlog > limits.backlog_max:
        hold("BACKLOG", "backlog", f"{backlog} records unsent (limit {limits.backlog_max})")
    oldest = _int(t.get("oldest_unsent_s"))
    if oldest is not None and oldest > limits.oldest_unsent_min * 60:
        hold("OLDEST_UNSENT", "oldest unsent", f"oldest unsent record {_ago(oldest)} old "
                                               f"(limit {limits.oldest_unsent_min:g} min)")
    disk = _int(t.get("disk_free_mb"))
    if disk is not None and disk < limits.disk_free_mb:
        hold("DISK", "disk free", f"{disk} MB free (limit {limits.disk_free_mb} MB)")
    source, offset = t.get("clock"), _int(t.get("clock_offset_ms"))
    if isinstance(source, str) and source not in CLOCK_SYNCED:
        hold("CLOCK", "clock unsynced", f"clock source {source!r}: not synchronised")
    elif offset is not None and abs(offset) > limits.clock_offset_s * 1000:
        hold("CLOCK", "clock offset", f"clock off by {offset / 1000:+.1f} s (limit {limits.clock_offset_s:g} s)")
    for name, since in sorted(row.faulty_since.items()):
        if now - since > limits.peripheral_faulty_min * 60:
            faults = ", ".join(f"{n} {t.get(n)!s}" for n, s in sorted(row.faulty_since.items())
                               if now - s > limits.peripheral_faulty_min * 60)
            hold("PERIPHERAL", name, f"not working for over {limits.peripheral_faulty_min:g} min: {faults}")
            break
    return out


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ago(seconds: float) -> str:
    """A duration as an operator reads it: 45 s, 12 min, 3.5 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
