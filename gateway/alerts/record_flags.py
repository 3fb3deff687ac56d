"""The domain alerts a stored record carries, pure: (record type, seq, body) -> [(kind, detail)].

The store raises them in the transaction that stores the record (``gateway.store.ingest``), one
per kind, collapsed per cart; an operator's acknowledgement resolves them (``catalogue``).
Existing kinds are reused, so that no migration of the alerts table's CHECK is needed:

- storage_in: its summary's overdue / deviating / missing counts -> STORAGE_OVERDUE /
  WEIGHT_DEVIATION / BAG_MISSING; a check-in whose result is REJECTED (a bag missing and not
  declared lost: nothing was stored) says so in its BAG_MISSING.
- incident (v2): bags declared lost -> BAG_MISSING naming the bags, the weight and the supervisor
  (Regulations Art. 13/14: a loss is reported, never silently dropped).
- transfer (v2): bags that left storage after the in-storage limit (``summary.overdue_count``,
  暂时贮存不得超过2天) -> STORAGE_OVERDUE.

Bodies passed the record schema, but are read defensively: an odd field raises nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# storage_in summary count -> the domain alert it raises, and how its detail says it
STORAGE_FLAGS = (("overdue_count", "STORAGE_OVERDUE", "overdue"),
                 ("deviation_count", "WEIGHT_DEVIATION", "re-weighed outside the tolerance"),
                 ("missing_count", "BAG_MISSING", "missing"))
TEXT_MAX = 64  # characters of a code or name quoted in a detail
CODES_SHOWN = 5  # package codes of a loss named in its detail (then "…")


def record_flags(rtype: str, seq: int, body: Any) -> list[tuple[str, str]]:
    """The (kind, detail) of every domain alert ``body`` of a record of ``rtype`` raises."""
    if not isinstance(body, Mapping):
        return []
    if rtype == "storage_in":
        return _storage_in(seq, body)
    if rtype == "incident":
        return _incident(seq, body)
    if rtype == "transfer":
        return _transfer(seq, body)
    return []


def _storage_in(seq: int, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    summary = body.get("summary")
    if not isinstance(summary, Mapping):
        return []
    room = _text(body.get("facility"))
    rejected = body.get("result") == "REJECTED"
    out = []
    for key, kind, what in STORAGE_FLAGS:
        n = _int(summary.get(key))
        if n is not None and n > 0:
            if kind == "BAG_MISSING" and rejected:
                what += "; check-in REJECTED: nothing was stored, the bags stay on the cart"
            out.append((kind, f"storage check-in at {room} (seq {seq}): {n} bag(s) {what}"))
    if rejected and not any(kind == "BAG_MISSING" for kind, _ in out):
        out.append(("BAG_MISSING", f"storage check-in at {room} (seq {seq}) REJECTED: nothing was stored, "
                                   "the bags stay on the cart"))
    return out


def _incident(seq: int, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    bags = [b for b in body.get("bags") or [] if isinstance(b, Mapping)] if isinstance(body.get("bags"), list) else []
    codes = [_text(b.get("package_code")) for b in bags]
    shown = ", ".join(codes[:CODES_SHOWN]) + (", …" if len(codes) > CODES_SHOWN else "")
    grams = _int(body.get("total_g"))
    weight = f" ({grams / 1000:.3f} kg)" if grams is not None else ""
    confirmed = body.get("confirmed_by")
    who = _text(confirmed.get("person_id")) if isinstance(confirmed, Mapping) else "?"
    return [("BAG_MISSING", f"incident {_text(body.get('incident_type'))} at {_text(body.get('facility'))} "
                            f"(seq {seq}): {len(bags)} bag(s){weight} declared lost, confirmed by {who}: {shown}")]


def _transfer(seq: int, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    summary = body.get("summary")
    n = _int(summary.get("overdue_count")) if isinstance(summary, Mapping) else None
    if n is None or n <= 0:
        return []
    carrier = body.get("carrier")
    vehicle = _text(carrier.get("plate") or carrier.get("vehicle")) if isinstance(carrier, Mapping) else "?"
    limits = body.get("limits")
    limit_s = _int(limits.get("storage_max_s")) if isinstance(limits, Mapping) else None
    limit = f" (limit {limit_s / 3600:g} h)" if limit_s is not None else ""
    return [("STORAGE_OVERDUE", f"transfer on {vehicle} (seq {seq}): {n} bag(s) left storage after the "
                                f"in-storage limit{limit}")]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    return str(value)[:TEXT_MAX] if value not in (None, "") else "?"
