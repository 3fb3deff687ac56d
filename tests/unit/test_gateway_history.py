"""Telemetry history on the gateway's real SQLite store: each applied telemetry recorded, raw rows
rolled into minute then hour aggregates exactly (in bounded batches), old hours dropped, and a
series over any range answered in at most max_points points."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store import DeviceUpdate, Retention, SqliteStore
from gateway.store import history as history_mod

DAY = 86_400.0
NOW = 1_700_006_400.0  # a whole hour
KEEP = Retention(raw_s=DAY, minute_s=7 * DAY, hour_s=30 * DAY)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "gateway.sqlite")
    yield s
    s.close()


def generate(store: SqliteStore, cart: str, start: float, end: float, step: float) -> int:
    """Raw rows every ``step`` s in [start, end): backlog = minute of the hour, disk 1000."""
    rows = []
    at = start
    while at < end:
        rows.append((cart, at, int(at // 60) % 60, None, 1000, 5, 0, 1))
        at += step
    db = sqlite3.connect(store.path)
    with db:
        db.executemany("INSERT INTO telemetry_raw (cart, at, backlog, oldest_unsent_s, disk_free_mb, clock_offset_ms,"
                       " faults, online) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.close()
    return len(rows)


def tiers(store: SqliteStore) -> tuple[int, int, int]:
    db = sqlite3.connect(store.path)
    try:
        raw = db.execute("SELECT COUNT(*) FROM telemetry_raw").fetchone()[0]
        minute = db.execute("SELECT COUNT(*) FROM telemetry_agg WHERE res = 60").fetchone()[0]
        hour = db.execute("SELECT COUNT(*) FROM telemetry_agg WHERE res = 3600").fetchone()[0]
        return raw, minute, hour
    finally:
        db.close()


def maintain(store: SqliteStore, now: float) -> int:
    total = 0
    while done := store.history_maintenance(now, KEEP):
        total += done
    return total


def test_each_applied_telemetry_is_recorded_and_a_flood_is_thinned(store: SqliteStore) -> None:
    body = {"backlog": 3, "disk_free_mb": 700, "clock_offset_ms": -40, "printer": "error", "camera": "connecting"}
    for i in range(10):  # every second: only one per HISTORY_MIN_INTERVAL_S is kept
        store.store_batch([], NOW + i, devices=[DeviceUpdate("H1", "CART-01", "telemetry", body)])
    points = store.telemetry_series("CART-01", NOW - 1, NOW + 20)
    assert len(points) == 10 // int(history_mod.HISTORY_MIN_INTERVAL_S)
    assert (points[0]["backlog"], points[0]["disk_free_mb"], points[0]["faults"]) == (3, 700, 2)


def test_rollup_keeps_the_aggregates_exact_and_drops_the_finer_rows(store: SqliteStore,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history_mod, "ROLLUP_BATCH", 97)  # batches that cut minutes and hours in two
    n = generate(store, "CART-01", NOW - 10 * DAY, NOW - 9 * DAY, 30.0)  # a day, 8 days ago
    generate(store, "CART-01", NOW - 2 * DAY, NOW - 2 * DAY + 3600, 30.0)  # an hour, 2 days ago
    generate(store, "CART-01", NOW - 600, NOW, 30.0)  # the last 10 min: stays raw
    before = store.telemetry_series("CART-01", NOW - 10 * DAY, NOW - 9 * DAY, max_points=24)
    maintain(store, NOW)
    assert tiers(store) == (20, 60, 24)  # raw: 10 min; minutes: the hour 2 days ago; hours: the day 8 days ago
    after = store.telemetry_series("CART-01", NOW - 10 * DAY, NOW - 9 * DAY, max_points=24)
    assert sum(p["n"] for p in after) == n == sum(p["n"] for p in before)
    for b, a in zip(before, after, strict=True):  # hour by hour, the same mean / min / max as the raw rows
        assert (a["backlog"], a["backlog_min"], a["backlog_max"]) == pytest.approx(
            (b["backlog"], b["backlog_min"], b["backlog_max"]))
        assert a["oldest_unsent_s"] is None and a["disk_free_mb"] == 1000


def test_old_hours_are_dropped(store: SqliteStore) -> None:
    generate(store, "CART-01", NOW - 40 * DAY, NOW - 40 * DAY + 7200, 60.0)
    generate(store, "CART-01", NOW - 20 * DAY, NOW - 20 * DAY + 3600, 60.0)
    maintain(store, NOW)
    assert tiers(store) == (0, 0, 1)
    assert store.telemetry_series("CART-01", NOW - 41 * DAY, NOW - 39 * DAY) == []


def test_a_series_has_at_most_max_points_across_tiers_and_only_the_carts(store: SqliteStore) -> None:
    generate(store, "CART-01", NOW - 3 * DAY, NOW, 30.0)
    generate(store, "CART-02", NOW - DAY, NOW, 300.0)
    maintain(store, NOW)
    points = store.telemetry_series("CART-01", NOW - 3 * DAY, NOW, max_points=100)
    assert 90 <= len(points) <= 100  # minute aggregates beyond a day, raw rows within: no hole
    assert [p["at"] for p in points] == sorted(p["at"] for p in points)
    assert sum(p["n"] for p in points) == 3 * 2880
    assert len(store.telemetry_series("CART-01", NOW - 600, NOW, max_points=500)) == 20  # raw: one point each
    assert store.telemetry_series("CART-03", NOW - DAY, NOW) == []
