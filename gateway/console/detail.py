"""One cart's page: its latest state, its telemetry over a chosen range, its chain, records, alerts.

The history comes from the store's ``telemetry_series`` (downsampled there to at most ``POINTS``
points).  The page draws it with uPlot (``static/vendor/``) from ``/api/carts/{cart}/series``:
columns as uPlot takes them (``at`` and one array per series, null where a bucket had no value),
and per series low / high / last, which the page also shows as text (the fallback without script).
"""

from __future__ import annotations

import math
from typing import Any

from gateway.console.fleet import fleet_row

RANGES = {"24h": 24 * 3600.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0}  # s: the spans the switch offers
DEFAULT_RANGE = "24h"
# points per series at most: ~5 min apart over a day, 2 h over 30 days; enough for a chart ~600-1200 px wide
POINTS = 300
# series drawn, in page order; "online" is the share of samples online (0..1), shown in %
SERIES = ("backlog", "oldest_unsent_s", "disk_free_mb", "clock_offset_ms", "faults", "online")


def range_of(asked: str | None) -> str:
    """The range asked for if it is one of RANGES, else the default (never an error: it is a view)."""
    return asked if asked in RANGES else DEFAULT_RANGE


def cart_view(device: dict[str, Any]) -> dict[str, Any]:
    """The fleet row of one cart from ``Queries.device`` (status and telemetry already decoded)."""
    since = device.get("online_since", device.get("status_at"))
    return fleet_row(device["cart"], device["site"], device["online"], since, device["last_seen"],
                     device["boot_id"], device["status"] or {}, device["telemetry"] or {},
                     device["telemetry_at"])


def series_json(points: list[dict[str, Any]], span: str, since: float, until: float) -> dict[str, Any]:
    """{range, since, until, at: [unix s], series: {key: [value | null]}, summary: {key: {low, high,
    last} | null}} from ``telemetry_series`` points (online as a percentage)."""
    scale = {"online": 100.0}
    columns: dict[str, list[float | None]] = {key: [] for key in SERIES}
    for p in points:
        for key in SERIES:
            value = p.get(key)
            columns[key].append(None if value is None or not math.isfinite(value)
                                else round(value * scale.get(key, 1.0), 3))
    summary: dict[str, dict[str, float] | None] = {}
    for key, values in columns.items():
        present = [v for v in values if v is not None]
        summary[key] = ({"low": min(present), "high": max(present), "last": present[-1]} if present else None)
    return {"range": span, "since": since, "until": until, "at": [round(p["at"], 3) for p in points],
            "series": columns, "summary": summary}
