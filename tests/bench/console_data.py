"""Data for ``bench_console``: a gateway store filled by SQL as 1,000 carts and 30 days of telemetry
would leave it under the default retention (see ``bench_console``'s docstring, step 1)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from edge import wire
from gateway.store import SqliteStore

CARTS = 1_000  # the fleet
SITES = 10  # carts are spread over this many sites (hospitals)
REPORT_S = 30  # s between two telemetries of one cart (the cart's default)
RAW_S = 86_400  # s of raw rows ([history].raw_hours default: 24 h)
MINUTE_DAYS, HISTORY_DAYS = 7, 30  # minute aggregates until day 7, hour aggregates until day 30
OFFLINE_EVERY, FAULTY_EVERY, BACKLOG_EVERY = 97, 61, 50  # every n-th cart: offline, a faulty peripheral, a backlog


def cart_id(i: int) -> str:
    return f"CART-{i:04d}"


def site_of(i: int) -> str:
    return f"HOSP-{i % SITES:02d}"

# 1. generation ------------------------------------------------------------------------------------

def device_words(i: int) -> dict[str, Any]:
    faulty = i % FAULTY_EVERY == 0
    return {"scale": "disconnected" if faulty and i % 2 else "connected",
            "camera": "ok", "printer": "error" if faulty and not i % 2 else "ok", "actuator": "retracted",
            "clock": "ntp", "clock_offset_ms": (i * 7) % 41 - 20}


def _devices(now: float) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """``devices`` rows and their ``boots`` rows: status + latest telemetry, as the ingest leaves them."""
    rows, boots = [], []
    for i in range(1, CARTS + 1):
        boot = wire.uuid7(int((now - 3 * 86400 - i) * 1000))
        online = 0 if i % OFFLINE_EVERY == 0 else 1
        seen = now - (7200 + i if not online else i % REPORT_S)
        backlog = (i % 37) + 1 if i % BACKLOG_EVERY == 0 else 0
        words = device_words(i)
        status = {**words, "state": "online" if online else "offline", "boot_id": boot, "seq_head": 400 + i,
                  "refused": {"ack": 0, "reject": 0, "cmd": 0}, "rejected": 0}
        telemetry = {**words, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seen)), "boot_id": boot,
                     "seq_head": 400 + i, "backlog": backlog, "oldest_unsent_s": 40 * backlog if backlog else None,
                     "disk_free_mb": 20_000 + (i * 131) % 9_000, "refused": {"ack": 0, "reject": 0, "cmd": 0},
                     "rejected": 0}
        faulty_since = {"printer" if words["printer"] == "error" else "scale": now - 3600} \
            if i % FAULTY_EVERY == 0 else {}
        rows.append((cart_id(i), site_of(i), online, boot, 400 + i, 400 + i, json.dumps(status), seen - 40,
                     json.dumps(telemetry), seen, seen, seen - (7200 if not online else 3 * 86400),
                     json.dumps(faulty_since)))
        boots.append((cart_id(i), boot, now - 3 * 86400))
    return rows, boots


# Values per (k: the sample's step, c.i: the cart), deterministic: a backlog on every BACKLOG_EVERY-th
# cart, disk slowly filling, clock within ±20 ms, a fault on every FAULTY_EVERY-th cart, offline ones offline.
_VALUES = (f"CASE WHEN c.i % {BACKLOG_EVERY} = 0 THEN (k * 7 + c.i) % 40 ELSE 0 END AS backlog,"
           f" CASE WHEN c.i % {BACKLOG_EVERY} = 0 THEN (k * 13 + c.i) % 900 END AS oldest,"
           " c.disk - (k % 500) AS disk, (k * 7 + c.i * 13) % 41 - 20 AS clock,"
           f" CASE WHEN c.i % {FAULTY_EVERY} = 0 THEN 1 ELSE 0 END AS faults,"
           f" CASE WHEN c.i % {OFFLINE_EVERY} = 0 THEN 0 ELSE 1 END AS online")
_FIELDS = ("backlog", "oldest", "disk", "clock", "faults", "online")  # as HISTORY_FIELDS_V5, in order


def _agg_select(res: int, per_bucket: int) -> str:
    """One aggregate row per bucket: every sample of it had the same values (sum = n × v, min = max = v)."""
    cols = ", ".join(f"{per_bucket} * {f}, CASE WHEN {f} IS NULL THEN 0 ELSE {per_bucket} END, {f}, {f}"
                     for f in _FIELDS)
    return f"SELECT {res}, cart, at, {per_bucket}, {cols} FROM v"


def generate(db_path: Path, now: float) -> dict[str, Any]:
    """The store (schema by ``SqliteStore``), then the rows by SQL on a connection of our own."""
    t0 = time.monotonic()
    SqliteStore(db_path).close()
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = OFF")  # a throw-away fixture: no journal, no fsync
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -1048576")  # KiB: 1 GiB, the indexes stay in memory while filling
        db.execute("BEGIN")
        rows, boots = _devices(now)
        db.executemany("INSERT INTO devices (cart, site, online, boot_id, seq_head, seq_head_claimed, status,"
                       " status_at, telemetry, telemetry_at, last_seen, online_since, faulty_since)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT INTO boots (cart, boot_id, first_seen) VALUES (?, ?, ?)", boots)
        db.execute("CREATE TEMP TABLE c (i INTEGER PRIMARY KEY, cart TEXT, disk INTEGER)")
        db.executemany("INSERT INTO c VALUES (?, ?, ?)",
                       [(i, cart_id(i), 20_000 + (i * 131) % 9_000) for i in range(1, CARTS + 1)])
        raw_sql = ("INSERT INTO telemetry_raw (cart, at, backlog, oldest_unsent_s, disk_free_mb, clock_offset_ms,"
                   " faults, online) SELECT cart, at, " + ", ".join(_FIELDS) + " FROM v")
        tiers = {  # name: (first sample time, step s, samples per cart, the INSERT from v)
            "raw": (now - RAW_S, REPORT_S, RAW_S // REPORT_S, raw_sql),
            "minute": (now - MINUTE_DAYS * 86400, 60, (MINUTE_DAYS * 86400 - RAW_S) // 60,
                       "INSERT INTO telemetry_agg " + _agg_select(60, 60 // REPORT_S)),
            "hour": (now - HISTORY_DAYS * 86400, 3600, (HISTORY_DAYS - MINUTE_DAYS) * 24,
                     "INSERT INTO telemetry_agg " + _agg_select(3600, 3600 // REPORT_S)),
        }
        for start, step, samples, insert in tiers.values():
            first = int(start // step) * step  # aggregates start on their bucket; raw rows spread over the 30 s
            spread = f"(c.i % {REPORT_S})" if step == REPORT_S else "0"
            # CROSS JOIN keeps t the outer loop: rows arrive time-major, as a live gateway stores them
            db.execute(f"WITH RECURSIVE t(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM t WHERE k < {samples - 1}),"
                       f" v AS (SELECT c.cart AS cart, {first} + k * {step} + {spread} AS at, {_VALUES}"
                       f" FROM t CROSS JOIN c) {insert}")
        db.execute("COMMIT")
        db.execute("ANALYZE")
    finally:
        db.close()
    with sqlite3.connect(db_path) as check:
        counts = {"devices": check.execute("SELECT COUNT(*) FROM devices").fetchone()[0],
                  "telemetry_raw": check.execute("SELECT COUNT(*) FROM telemetry_raw").fetchone()[0],
                  **{f"telemetry_agg_{res}s": n for res, n in
                     check.execute("SELECT res, COUNT(*) FROM telemetry_agg GROUP BY res").fetchall()}}
    check.close()
    return {"rows": counts, "seconds": round(time.monotonic() - t0, 1),
            "db_mib": round(db_path.stat().st_size / 2**20)}


# 2. the console, logged in ------------------------------------------------------------------------
