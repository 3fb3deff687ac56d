"""Telemetry history: every applied telemetry as a raw row, rolled up as it ages, then dropped.

Tiers (``[history]``): raw rows for ``raw_hours``; then per-minute aggregates until ``minute_days``;
then per-hour aggregates until ``hour_days``; then nothing.  An aggregate keeps, per field, the sum,
the number of non-null values, min and max, so that folding more rows into a bucket that already
exists is exact: rollups run in bounded batches (``ROLLUP_BATCH`` rows, one short transaction each)
and a bucket may be filled by several of them.  Times are the gateway's receive times (unix s), not
the cart's clock, which may be the very thing that is wrong.

1,000 carts every 30 s is ~2.9 million raw rows a day; ``telemetry_series`` answers any range with
at most ``max_points`` points by merging the tiers that overlap it into equal-width buckets.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.alerts.catalogue import PERIPHERALS, faulty
from gateway.store.connection import SqliteConnection
from gateway.store.schema import HISTORY_FIELDS_V5 as FIELDS

# A cart's telemetry is kept at most once per this many seconds: carts report every 30 s, so only a
# faulty or hostile (but correctly signed) cart reporting faster is thinned, and its rows stay bounded.
HISTORY_MIN_INTERVAL_S = 5.0
# Rows folded per rollup transaction (count): ~10-30 ms of SQLite work, so ingest never waits long.
ROLLUP_BATCH = 5_000
MINUTE, HOUR = 60, 3600  # aggregate widths (s)

_RAW_COLS = ", ".join(FIELDS)
_AGG_COLS = ", ".join(f"{f}_sum, {f}_n, {f}_min, {f}_max" for f in FIELDS)
_AGG_MERGE = ", ".join(f"{f}_sum = COALESCE({f}_sum, 0) + COALESCE(excluded.{f}_sum, 0),"
                       f" {f}_n = {f}_n + excluded.{f}_n,"
                       f" {f}_min = min(COALESCE({f}_min, excluded.{f}_min), COALESCE(excluded.{f}_min, {f}_min)),"
                       f" {f}_max = max(COALESCE({f}_max, excluded.{f}_max), COALESCE(excluded.{f}_max, {f}_max))"
                       for f in FIELDS)
_UPSERT = (f"INSERT INTO telemetry_agg (res, cart, bucket, n, {_AGG_COLS}) VALUES (?, ?, ?, ?, "
           + ", ".join("?" for _ in range(4 * len(FIELDS)))
           + f") ON CONFLICT (res, cart, bucket) DO UPDATE SET n = n + excluded.n, {_AGG_MERGE}")


@dataclass(frozen=True)
class Retention:
    """How long each tier is kept (s); ``[history]`` in seconds."""

    raw_s: float
    minute_s: float
    hour_s: float


def sample(data: Mapping[str, Any], online: int | None) -> dict[str, int | None]:
    """The history fields of one telemetry body (a missing or non-integer field is None)."""
    out: dict[str, int | None] = {}
    for name in ("backlog", "oldest_unsent_s", "disk_free_mb", "clock_offset_ms"):
        value = data.get(name)
        out[name] = value if isinstance(value, int) and not isinstance(value, bool) else None
    out["faults"] = sum(1 for p in PERIPHERALS if faulty(data.get(p)))
    out["online"] = online
    return out


class _Bucket:
    """Sum, non-null count, min, max per field of the rows folded into one bucket."""

    def __init__(self) -> None:
        self.n = 0
        self.acc: dict[str, list[float | None]] = {f: [None, 0, None, None] for f in FIELDS}

    def add(self, values: Mapping[str, float | None], n: int = 1) -> None:
        self.n += n
        for f in FIELDS:
            v = values.get(f)
            if v is None:
                continue
            a = self.acc[f]
            a[0] = (a[0] or 0) + v
            a[1] = (a[1] or 0) + 1
            a[2] = v if a[2] is None else min(a[2], v)
            a[3] = v if a[3] is None else max(a[3], v)

    def merge(self, sums: Mapping[str, tuple[float | None, int, float | None, float | None]], n: int) -> None:
        self.n += n
        for f, (s, k, lo, hi) in sums.items():
            if not k:
                continue
            a = self.acc[f]
            a[0] = (a[0] or 0) + (s or 0)
            a[1] = (a[1] or 0) + k
            a[2] = lo if a[2] is None else min(a[2], lo if lo is not None else a[2])
            a[3] = hi if a[3] is None else max(a[3], hi if hi is not None else a[3])

    def params(self) -> list[float | None]:
        return [x for f in FIELDS for x in self.acc[f]]


class SqliteHistory(SqliteConnection):
    """Telemetry history on SQLite: ``_record_telemetry`` (in ingest's commit), ``history_maintenance``
    (one bounded batch per call), ``telemetry_series`` (the console's charts)."""

    def _record_telemetry(self, db: sqlite3.Connection, cart: str, data: Mapping[str, Any], online: int | None,
                          now: float) -> bool:
        """Append one raw row unless the cart's previous one is younger than HISTORY_MIN_INTERVAL_S."""
        last = db.execute("SELECT MAX(at) FROM telemetry_raw WHERE cart = ?", (cart,)).fetchone()[0]
        if last is not None and now - float(last) < HISTORY_MIN_INTERVAL_S:
            return False
        values = sample(data, online)
        db.execute(f"INSERT INTO telemetry_raw (cart, at, {_RAW_COLS}) VALUES (?, ?, "
                   + ", ".join("?" for _ in FIELDS) + ")", (cart, now, *(values[f] for f in FIELDS)))
        return True

    def history_maintenance(self, now: float, keep: Retention) -> int:
        """One bounded step of rollup and retention: raw -> minute, minute -> hour, old hours dropped,
        each at most ROLLUP_BATCH rows in its own transaction.  Returns the rows it consumed (0: done)."""
        done = self._roll_raw(now - keep.raw_s)
        done += self._roll_minutes(now - keep.minute_s)
        with self._tx("dropping old telemetry history") as db:
            done += db.execute("DELETE FROM telemetry_agg WHERE rowid IN (SELECT rowid FROM telemetry_agg"
                               " WHERE res = ? AND bucket < ? ORDER BY bucket LIMIT ?)",
                               (HOUR, now - keep.hour_s - HOUR, ROLLUP_BATCH)).rowcount
        return done

    def _roll_raw(self, cutoff: float) -> int:
        """Raw rows received before ``cutoff`` (oldest first: rowid order is arrival order) into minutes."""
        with self._tx("rolling telemetry up to minutes") as db:
            rows = db.execute(f"SELECT rowid, cart, at, {_RAW_COLS} FROM telemetry_raw WHERE rowid IN"
                              " (SELECT rowid FROM telemetry_raw ORDER BY rowid LIMIT ?) AND at < ?",
                              (ROLLUP_BATCH, cutoff)).fetchall()
            buckets: dict[tuple[str, float], _Bucket] = {}
            for row in rows:
                key = (str(row[1]), math.floor(float(row[2]) / MINUTE) * MINUTE)
                buckets.setdefault(key, _Bucket()).add(dict(zip(FIELDS, row[3:], strict=True)))
            for (cart, bucket), acc in buckets.items():
                db.execute(_UPSERT, (MINUTE, cart, bucket, acc.n, *acc.params()))
            db.executemany("DELETE FROM telemetry_raw WHERE rowid = ?", [(r[0],) for r in rows])
        return len(rows)

    def _roll_minutes(self, cutoff: float) -> int:
        """Minute buckets that started before ``cutoff`` into hours."""
        with self._tx("rolling telemetry up to hours") as db:
            rows = db.execute(f"SELECT rowid, cart, bucket, n, {_AGG_COLS} FROM telemetry_agg WHERE res = ?"
                              " AND bucket < ? ORDER BY bucket LIMIT ?", (MINUTE, cutoff, ROLLUP_BATCH)).fetchall()
            buckets: dict[tuple[str, float], _Bucket] = {}
            for row in rows:
                key = (str(row[1]), math.floor(float(row[2]) / HOUR) * HOUR)
                buckets.setdefault(key, _Bucket()).merge(_sums(row[4:]), int(row[3]))
            for (cart, bucket), acc in buckets.items():
                db.execute(_UPSERT, (HOUR, cart, bucket, acc.n, *acc.params()))
            db.executemany("DELETE FROM telemetry_agg WHERE rowid = ?", [(r[0],) for r in rows])
        return len(rows)

    def telemetry_series(self, cart: str, since: float, until: float, max_points: int = 500) -> list[dict[str, Any]]:
        """The cart's history in [since, until] as at most ``max_points`` points, oldest first:
        {at (mean time of the samples), n (samples), and per field F: F (mean, None if no value),
        F_min, F_max} with F in backlog, oldest_unsent_s, disk_free_mb, clock_offset_ms, faults,
        online (the share of samples online).  Raw rows, minute and hour aggregates are merged, so a
        range that spans tiers has no hole where one tier ends."""
        if until <= since or max_points < 1:
            return []
        width = max((until - since) / max_points, 1e-6)
        points: dict[int, tuple[_Bucket, list[float]]] = {}

        def slot(at: float) -> tuple[_Bucket, list[float]]:
            index = min(int((at - since) / width), max_points - 1)
            return points.setdefault(index, (_Bucket(), [0.0]))

        with self._read("reading telemetry history") as db:
            for row in db.execute(f"SELECT at, {_RAW_COLS} FROM telemetry_raw WHERE cart = ? AND at >= ? AND at <= ?",
                                  (cart, since, until)):
                acc, at_sum = slot(float(row[0]))
                acc.add(dict(zip(FIELDS, row[1:], strict=True)))
                at_sum[0] += float(row[0])
            for row in db.execute(f"SELECT res, bucket, n, {_AGG_COLS} FROM telemetry_agg WHERE res IN (?, ?)"
                                  " AND cart = ? AND bucket >= ? AND bucket <= ?", (MINUTE, HOUR, cart, since, until)):
                middle = float(row[1]) + int(row[0]) / 2
                acc, at_sum = slot(middle)
                acc.merge(_sums(row[3:]), int(row[2]))
                at_sum[0] += middle * int(row[2])
        return [_point(acc, at_sum[0]) for _, (acc, at_sum) in sorted(points.items()) if acc.n]


def _sums(row: tuple[Any, ...] | list[Any]) -> dict[str, tuple[float | None, int, float | None, float | None]]:
    return {f: (row[4 * i], int(row[4 * i + 1] or 0), row[4 * i + 2], row[4 * i + 3]) for i, f in enumerate(FIELDS)}


def _point(acc: _Bucket, at_sum: float) -> dict[str, Any]:
    point: dict[str, Any] = {"at": at_sum / acc.n, "n": acc.n}
    for f in FIELDS:
        total, count, lo, hi = acc.acc[f]
        point[f] = None if not count else (total or 0) / count
        point[f"{f}_min"], point[f"{f}_max"] = lo, hi
    return point
