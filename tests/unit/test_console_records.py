"""The console's reads of the records table on a real SQLite file (the gateway's schema): today's
handovers and kilograms per cart (the gateway's local day, incremental, reset at midnight), a
cart's chain status and latest records, and the series JSON the cart page's charts take."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edge import wire
from gateway.console import records
from gateway.console.detail import DEFAULT_RANGE, RANGES, SERIES, range_of, series_json
from gateway.console.fleet import ConsoleDb
from gateway.store import DB_NAME

NOW = datetime(2026, 12, 7, 15, 0).astimezone()  # the gateway's local afternoon
TODAY = NOW.timestamp()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[ConsoleDb]:
    console = ConsoleDb(tmp_path / DB_NAME)  # opening migrates: the gateway's schema
    yield console
    console.close()


def put(path: Path, cart: str, seq: int, created: datetime, rtype: str = "handover", grams: tuple[int, ...] = (1000,),
        chain: str = "verified", received: float | None = None) -> None:
    """One stored record, as ingest writes it (only the columns the console reads matter)."""
    body = {"lines": [{"weight_g": g} for g in grams]} if rtype == "handover" else {"note": "x"}
    envelope = json.dumps({"type": rtype, "body": body})
    with sqlite3.connect(path) as con:
        con.execute("INSERT INTO records (id, site, cart, seq, type, created_at, hash, prev_hash, envelope,"
                    " received_at, chain, next_attempt_at) VALUES (?, 'S', ?, ?, ?, ?, 'h', ?, ?, ?, ?, 0)",
                    (wire.uuid7(), cart, seq, rtype, created.isoformat(timespec="milliseconds"), wire.GENESIS_HASH,
                     envelope, created.timestamp() if received is None else received, chain))
        con.execute("INSERT INTO carts (cart, site, upto_seq, max_seq) VALUES (?, 'S', 0, ?) ON CONFLICT (cart)"
                    " DO UPDATE SET max_seq = max(max_seq, excluded.max_seq)", (cart, seq))


def today(db: ConsoleDb, tally: records.HandoversToday, now: float = TODAY) -> dict[str, tuple[int, float]]:
    with db._read("test") as con:
        return tally.read(con, now)


def test_todays_handovers_and_kg_count_only_today_and_only_new_rows(db: ConsoleDb) -> None:
    path = db.path
    put(path, "A", 1, NOW - timedelta(days=1))  # yesterday: not today's
    put(path, "A", 2, NOW - timedelta(hours=2), grams=(1200, 800, 250))
    put(path, "A", 3, NOW - timedelta(hours=1), rtype="storage_in")  # not a handover
    put(path, "B", 1, NOW - timedelta(minutes=5), grams=(500,))
    # created today, written in a far time zone's notation (on another date there when the gateway runs
    # in UTC): the instant decides, so it is today here
    put(path, "B", 2, (NOW - timedelta(minutes=4)).astimezone(timezone(timedelta(hours=10))), grams=(500,))
    tally = records.HandoversToday()
    assert today(db, tally) == {"A": (1, 2.25), "B": (2, 1.0)}
    put(path, "A", 4, NOW - timedelta(minutes=1), grams=(1000,))  # only the new row is read and added
    assert today(db, tally) == {"A": (2, 3.25), "B": (2, 1.0)}
    assert today(db, tally) == {"A": (2, 3.25), "B": (2, 1.0)}  # nothing new: nothing counted twice
    assert today(db, tally, TODAY + 86400) == {}  # tomorrow starts from zero


def test_a_record_received_days_late_counts_on_the_day_it_was_created(db: ConsoleDb) -> None:
    put(db.path, "A", 1, NOW - timedelta(days=3), received=TODAY - 10)  # a backlog drained today
    put(db.path, "A", 2, NOW - timedelta(minutes=1), grams=(2000, "heavy"))  # type: ignore[arg-type]
    assert today(db, records.HandoversToday()) == {"A": (1, 2.0)}  # a non-integer weight counts as nothing


def test_the_first_row_of_the_day_is_found_by_receive_time(db: ConsoleDb) -> None:
    for seq in range(1, 41):
        put(db.path, "A", seq, NOW, received=1000.0 + seq * 10)
    with db._read("test") as con:
        assert records._first_rowid_after(con, 1205.0) == 21  # received 1210
        assert records._first_rowid_after(con, 0.0) == 1
        assert records._first_rowid_after(con, 99_999.0) == 41  # none: after the last


def test_chain_status_names_gaps_pending_and_broken(db: ConsoleDb) -> None:
    for seq, chain in ((1, "verified"), (2, "verified"), (4, "pending"), (5, "broken")):
        put(db.path, "A", seq, NOW, chain=chain)
    with sqlite3.connect(db.path) as con:
        con.execute("UPDATE carts SET upto_seq = 2 WHERE cart = 'A'")
    assert db.chain("A") == {"upto_seq": 2, "max_seq": 5, "stored": 4, "verified": 2, "pending": 1, "broken": 1,
                             "missing": 1, "first_gap": 3}
    assert db.chain("NOBODY")["stored"] == 0 and db.chain("NOBODY")["first_gap"] is None


def test_recent_records_newest_first_with_a_handovers_bags_and_kg(db: ConsoleDb) -> None:
    for seq in range(1, 26):
        put(db.path, "A", seq, NOW, rtype="handover" if seq % 2 else "void", grams=(1000, 234))
    got = db.recent("A")
    assert len(got) == records.RECENT and [r["seq"] for r in got[:2]] == [25, 24]
    assert (got[0]["type"], got[0]["bags"], got[0]["kg"]) == ("handover", 2, 1.234)
    assert (got[1]["type"], got[1]["bags"], got[1]["kg"]) == ("void", None, None)
    with sqlite3.connect(db.path) as con:  # each row names its record, which the cart page links to
        assert con.execute("SELECT seq FROM records WHERE id = ?", (got[0]["id"],)).fetchone() == (25,)


def test_series_json_gives_uplot_columns_and_text_summaries() -> None:
    points = [{"at": 10.0, "backlog": 5.0, "online": 1.0, "disk_free_mb": None},
              {"at": 20.0, "backlog": 2.0, "online": 0.5, "disk_free_mb": None}]
    got = series_json(points, "7d", 0.0, 30.0)
    assert got["at"] == [10.0, 20.0] and set(got["series"]) == set(SERIES)
    assert got["series"]["backlog"] == [5.0, 2.0] and got["series"]["online"] == [100.0, 50.0]  # a share, in %
    assert got["series"]["disk_free_mb"] == [None, None] and got["summary"]["disk_free_mb"] is None
    assert got["summary"]["backlog"] == {"low": 2.0, "high": 5.0, "last": 2.0}
    json.dumps(got, allow_nan=False)  # what the page embeds must be strict JSON


def test_an_unknown_range_is_the_default_view() -> None:
    assert [range_of(r) for r in RANGES] == list(RANGES)
    assert range_of(None) == range_of("365d") == range_of("") == DEFAULT_RANGE
