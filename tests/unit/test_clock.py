"""The cart's clock: its source is recorded, and the gateway's time is adopted only when needed."""

from __future__ import annotations

import time
from pathlib import Path

from edge.clock import SystemClock


def test_unsynced_cart_adopts_the_gateways_time(tmp_path: Path) -> None:
    clock = SystemClock("auto", timesync_flag=tmp_path / "absent")
    assert clock.source() == "unsynced"
    clock.offer(time.time_ns() // 1_000_000 + 3_600_000)  # the gateway is an hour ahead
    assert clock.source() == "gateway"
    assert 3590 < (clock.now().timestamp() - time.time()) < 3610
    _, stamp = clock.stamp()
    assert stamp.source == "gateway"


def test_ntp_synced_cart_keeps_its_own_time(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    flag.touch()
    clock = SystemClock("auto", timesync_flag=flag)
    clock.offer(time.time_ns() // 1_000_000 + 3_600_000)
    assert clock.source() == "ntp"
    assert abs(clock.now().timestamp() - time.time()) < 5


def test_configured_source_wins(tmp_path: Path) -> None:
    assert SystemClock("rtc", timesync_flag=tmp_path / "absent").source() == "rtc"
