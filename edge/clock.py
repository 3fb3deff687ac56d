"""Wall time and how it was known.  A Pi has no RTC and may boot without network, so every
record says whether its time came from NTP, an RTC, the gateway, or nothing (``unsynced``).

The gateway offers its time (``cmd/time``) when a cart comes online; a cart whose own clock is
not synchronised adopts it as an offset (the system clock is left alone) and stamps records
``gateway`` from then on.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path

from edge import wire

log = logging.getLogger(__name__)

# systemd-timesyncd touches this file once the clock is synchronised (see systemd-timesyncd(8)).
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")


class SystemClock:
    def __init__(self, source: str = "auto", timesync_flag: Path = TIMESYNC_FLAG) -> None:
        self.configured = source
        self.timesync_flag = timesync_flag
        self.offset_ms: int | None = None  # gateway time minus our wall time, once offered

    def _own_source(self) -> str:
        if self.configured != "auto":
            return self.configured
        return "ntp" if self.timesync_flag.exists() else "unsynced"

    def source(self) -> str:
        own = self._own_source()
        return "gateway" if own == "unsynced" and self.offset_ms is not None else own

    def now(self) -> datetime:
        wall = datetime.now().astimezone()
        if self.source() == "gateway" and self.offset_ms:
            return wall + timedelta(milliseconds=self.offset_ms)
        return wall

    def offer(self, gateway_utc_ms: int) -> None:
        """The gateway's time arrived: adopt it only if we have nothing better."""
        offset = gateway_utc_ms - time.time_ns() // 1_000_000
        if self._own_source() == "unsynced":
            self.offset_ms = offset
        log.info("gateway time offered: offset %+d ms (%s)", offset,
                 "adopted" if self._own_source() == "unsynced" else f"kept own clock ({self._own_source()})")

    def stamp(self) -> tuple[datetime, wire.Clock]:
        return self.now(), wire.Clock(self.source(), time.monotonic_ns() // 1_000_000)
