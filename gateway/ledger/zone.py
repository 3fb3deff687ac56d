"""The ledger's time zone: a record's day and month, and the unix range of a day span.

Records carry their own offset (``created_at`` is ISO 8601 with it); a ledger's day is a day in ONE
zone (``[ledger] timezone``, default Asia/Shanghai), so that a summary per day adds up the same
whatever zone each cart's clock was set to.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Asia/Shanghai"


def zone(name: str) -> ZoneInfo:
    """The zone called ``name``; ValueError naming it if the system has no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)") from exc


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with its offset (a record's ``created_at``); ValueError otherwise."""
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"time {text!r} has no offset")
    return at


def day_of(at: float, tz: ZoneInfo) -> str:
    """YYYY-MM-DD of unix time ``at`` in ``tz``."""
    return datetime.fromtimestamp(at, tz).date().isoformat()


def day_range(first: date | None, last: date | None, tz: ZoneInfo) -> tuple[float | None, float | None]:
    """[start of ``first``, start of the day after ``last``) in ``tz`` as unix seconds; None: open."""
    since = None if first is None else datetime.combine(first, time(), tz).timestamp()
    until = None if last is None else datetime.combine(last + timedelta(days=1), time(), tz).timestamp()
    return since, until


def parse_day(text: str, what: str) -> date:
    """A YYYY-MM-DD date given by a user; ValueError naming ``what`` (the flag or field) otherwise."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"{what}: {text!r} is not a date (YYYY-MM-DD)") from exc
