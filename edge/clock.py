"""Wall time and how it was known.  A Pi has no RTC and may boot without network, so every
record says whether its time came from NTP, the gateway, an RTC or nothing (``unsynced``)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from edge import wire

# systemd-timesyncd touches this file once the clock is synchronised (see systemd-timesyncd(8)).
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")


class SystemClock:
    def __init__(self, source: str = "auto") -> None:
        self.configured = source

    def now(self) -> datetime:
        return datetime.now().astimezone()

    def source(self) -> str:
        if self.configured != "auto":
            return self.configured
        return "ntp" if TIMESYNC_FLAG.exists() else "unsynced"

    def stamp(self) -> tuple[datetime, wire.Clock]:
        return self.now(), wire.Clock(self.source(), time.monotonic_ns() // 1_000_000)
