"""Ledger search, a record's view, a bag's path and summaries on a real SqliteStore file, with real
signed records stored through the gateway's own checks (so the index is written as ingest writes it)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from gateway.ingest.checks import KeyRing
from gateway.ledger.search import LedgerFilter, bag_path, decode_cursor, encode_cursor, record_view, search, verdict
from gateway.ledger.summary import per_period, summarize, totals
from gateway.store import SqliteStore
from tests.browser.ledger_fixtures import SigningCart, at, expected_summary, scenario, store_checked, store_unchecked

TZ = ZoneInfo("Asia/Shanghai")
NOW = 1_796_200_000.0


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqliteStore, dict[str, Any], KeyRing]]:
    a, b = SigningCart("CART-A"), SigningCart("CART-B")
    recs = scenario(a, b)
    keys = KeyRing({"CART-A": a.public_key, "CART-B": b.public_key}, None)
    store = SqliteStore(tmp_path_factory.mktemp("ledger") / "gateway.sqlite")
    store_checked(store, list(recs.values()), keys, NOW)
    yield store, recs, keys
    store.close()


@pytest.fixture
def db(ledger: tuple[SqliteStore, dict[str, Any], KeyRing]) -> Iterator[sqlite3.Connection]:
    with ledger[0]._read("a test's read") as conn:
        yield conn


@pytest.fixture
def recs(ledger: tuple[SqliteStore, dict[str, Any], KeyRing]) -> dict[str, Any]:
    return ledger[1]


def ids(db: sqlite3.Connection, f: LedgerFilter, limit: int = 100) -> list[str]:
    return [r["id"] for r in search(db, f, limit).rows]


def names(recs: dict[str, Any], found: list[str]) -> list[str]:
    by_id = {e["id"]: n for n, e in recs.items()}
    return [by_id[i] for i in found]


def params(**kw: str) -> LedgerFilter:
    return LedgerFilter.from_params(kw, TZ)


def test_everything_newest_first(db: sqlite3.Connection, recs: dict[str, Any]) -> None:
    newest_first = sorted(recs, key=lambda n: -datetime.fromisoformat(recs[n]["created_at"]).timestamp())
    assert names(recs, ids(db, LedgerFilter())) == newest_first


@pytest.mark.parametrize(("query", "expected"), [
    ({"department": "ICU"}, ["b3", "h3", "h1", "b1"]),
    ({"department": "icu"}, ["b3", "h3", "h1", "b1"]),  # typed in lower case: codes are upper case
    ({"cart": "CART-B"}, ["b3", "b2", "b1"]),
    ({"type": "void"}, ["v_bag", "v_whole"]),
    ({"collector": "C0002"}, ["b3", "b2", "b1"]),
    ({"confirmer": "N0002"}, ["h2"]),
    ({"confirmer": "K0001"}, ["s1"]),
    ({"category": "SHARPS"}, ["b3", "h1"]),  # the void of BAGA02 names no category: not found by one
    ({"category": "CHEMICAL"}, ["b2"]),
    ({"bag": "BAGA01"}, ["t1", "s1", "h1"]),
    ({"bag": "baga02"}, ["v_bag", "h1"]),
    ({"bag": "BAGB"}, ["b3", "b2", "b1"]),  # a prefix
    ({"from": "2026-12-02"}, ["b3", "t1", "b2"]),  # b2 was stamped 16:30 UTC on the 1st: the 2nd in Shanghai
    ({"to": "2026-11-30"}, ["b1"]),
    ({"from": "2026-12-01", "to": "2026-12-01"}, ["s1", "v_bag", "v_whole", "h3", "h2", "h1"]),
    ({"department": "ICU", "type": "handover", "from": "2026-12-01"}, ["b3", "h3", "h1"]),
    ({"bag": "NOSUCHBAG"}, []),
])
def test_each_filter(db: sqlite3.Connection, recs: dict[str, Any], query: dict[str, str],
                     expected: list[str]) -> None:
    assert names(recs, ids(db, params(**query))) == expected


def test_a_category_filter_keeps_voided_bags_of_that_category(db: sqlite3.Connection, recs: dict[str, Any]) -> None:
    # the ER handover was voided as a whole, but it is still in the ledger: search shows it, summaries do not count it
    assert "h2" in names(recs, ids(db, params(category="INFECTIOUS")))


def test_paging_covers_every_record_once_newest_first(db: sqlite3.Connection, recs: dict[str, Any]) -> None:
    everything = ids(db, LedgerFilter())
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = search(db, LedgerFilter(), 3, after)
        seen += [r["id"] for r in page.rows]
        pages += 1
        if page.next is None:
            break
        after = page.next
    assert seen == everything and len(seen) == len(recs) and pages == 4  # 10 records, 3 a page
    filtered = search(db, params(department="ICU"), 2)
    assert filtered.next is not None
    rest = search(db, params(department="ICU"), 2, filtered.next)
    assert names(recs, [r["id"] for r in filtered.rows + rest.rows]) == ["b3", "h3", "h1", "b1"]
    assert rest.next is None


def test_rows_say_who_what_and_how_much(db: sqlite3.Connection, recs: dict[str, Any]) -> None:
    row = next(r for r in search(db, params(bag="BAGA03")).rows)
    assert (row["cart"], row["seq"], row["type"], row["department"], row["collector"], row["confirmer"]) == \
        ("CART-A", 2, "handover", "ER", "C0001", "N0002")
    assert (row["bags"], row["weight_g"], row["kg"]) == (1, 800, 0.8)
    assert row["time"] == "2026-12-01 10:00:00 +08:00"
    utc = next(r for r in search(db, params(bag="BAGB02")).rows)
    assert utc["time"] == "2026-12-02 00:30:00 +08:00"  # shown in the ledger's zone, with its offset


@pytest.mark.parametrize(("query", "message"), [
    ({"from": "2026-13-01"}, "from: '2026-13-01' is not a date"),
    ({"to": "yesterday"}, "to: 'yesterday' is not a date"),
    ({"from": "2026-12-02", "to": "2026-12-01"}, "to: 2026-12-01 is before from"),
    ({"type": "lunch"}, "type: 'lunch' is not a record type"),
    ({"category": "PLASTIC"}, "category: 'PLASTIC' is not a waste category"),
    ({"department": "X" * 65}, "department: longer than 64"),
    ({"since": "soon"}, "since: 'soon' is not a unix time"),
])
def test_a_bad_filter_names_its_field(query: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        params(**query)


def test_a_bad_cursor_names_after(db: sqlite3.Connection) -> None:
    for bad in ("garbage", encode_cursor(1.0, "x")[:-3] + "!!!", "WyJhIiwgMV0"):
        with pytest.raises(ValueError, match=r"^after: "):
            search(db, LedgerFilter(), 5, bad)
    assert decode_cursor(encode_cursor(1.5, "abc")) == (1.5, "abc")


def test_params_round_trip() -> None:
    f = params(**{"from": "2026-12-01", "to": "2026-12-02", "bag": "baga01", "type": "Handover", "cart": " CART-A "})
    assert f.to_params() == {"from": "2026-12-01", "to": "2026-12-02", "bag": "BAGA01", "type": "handover",
                             "cart": "CART-A"}
    assert LedgerFilter.from_params(f.to_params(), TZ) == f
    assert f.until is not None and f.since is not None and f.until - f.since == 2 * 86400
    raw = LedgerFilter(since=10.5, until=99.0, department="ICU")
    assert LedgerFilter.from_params(raw.to_params(), TZ) == raw


def test_every_filter_is_served_by_an_index(db: sqlite3.Connection) -> None:
    from gateway.ledger.search import where

    expected = {"cart": "ledger_records_cart", "department": "ledger_records_department",
                "collector": "ledger_records_collector", "confirmer": "ledger_records_confirmer",
                "type": "ledger_records_type", "bag": "sqlite_autoindex_ledger_bags_1",
                "category": "ledger_bags_record", "since": "ledger_records_at"}
    for name, index in expected.items():
        f = LedgerFilter(**{name: 1.0 if name == "since" else "X"})  # type: ignore[arg-type]
        conds, args = where(f)
        conds.append("(r.at, r.id) < (?, ?)")
        plan = " | ".join(r[3] for r in db.execute(
            "EXPLAIN QUERY PLAN SELECT r.id FROM ledger_records r WHERE " + " AND ".join(conds)
            + " ORDER BY r.at DESC, r.id DESC LIMIT 51", (*args, 1e10, "z")))
        assert index in plan, (name, plan)
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan or name == "bag", (name, plan)  # no full sort


def test_record_view_of_a_voided_record_and_of_its_void(db: sqlite3.Connection, recs: dict[str, Any],
                                                        ledger: tuple[SqliteStore, dict[str, Any], KeyRing]) -> None:
    keys = ledger[2]
    view = record_view(db, recs["h2"]["id"], keys, TZ)
    assert view is not None
    assert (view["signature"], view["chain"], view["forward_state"]) == ("valid", "verified", "stored")
    assert view["received_at"] == NOW and view["accepted_at"] is None and view["refers_to"] is None
    assert [(x["id"], x["reason"]) for x in view["referred_by"]] == [(recs["v_whole"]["id"], "科室选错")]
    assert view["envelope"] == recs["h2"]
    assert [(b["package_code"], b["voided_by"]) for b in view["bags"]] == [("BAGA03", recs["v_whole"]["id"])]
    void = record_view(db, recs["v_whole"]["id"], keys, TZ)
    assert void is not None and void["refers_to"]["id"] == recs["h2"]["id"] and void["refers_to"]["type"] == "handover"
    one_bag = record_view(db, recs["h1"]["id"], keys, TZ)
    assert one_bag is not None
    assert [(x["package_code"], x["reason"]) for x in one_bag["referred_by"]] == [("BAGA02", "标签重复")]
    assert record_view(db, "no-such-id", keys, TZ) is None


def test_verdict_valid_forged_altered_and_no_key(recs: dict[str, Any],
                                                 ledger: tuple[SqliteStore, dict[str, Any], KeyRing]) -> None:
    env = recs["h1"]
    assert verdict(env, ledger[2])[0] == "valid"
    other = KeyRing({"CART-A": wire.public_key_text(Ed25519PrivateKey.generate().public_key())}, None)
    assert verdict(env, other) == ("FORGED", "sig: not a valid Ed25519 signature by this cart's key")
    changed = {**env, "body": {**env["body"], "department": "ER"}}
    assert verdict(changed, ledger[2])[0] == "ALTERED"
    assert verdict(env, KeyRing({}, None))[0] == "no key"
    assert verdict(env, None)[0] == "no key"


def test_a_record_stored_under_a_key_since_replaced_shows_forged(tmp_path: Path) -> None:
    """What an operator sees after a cart's key was swapped in the gateway's config: the stored
    record no longer verifies with the key the gateway holds now."""
    cart = SigningCart("CART-R")
    env = cart.handover(at("2026-12-03"), "ICU", [("BAGR01", "INFECTIOUS", 400)])
    store = SqliteStore(tmp_path / "gateway.sqlite")
    try:
        store_unchecked(store, env, NOW)
        wrong = KeyRing({"CART-R": wire.public_key_text(Ed25519PrivateKey.generate().public_key())}, None)
        with store._read("test") as db:
            view = record_view(db, env["id"], wrong, TZ)
        assert view is not None and view["signature"] == "FORGED"
    finally:
        store.close()


def test_bag_path_in_time_order(db: sqlite3.Connection, recs: dict[str, Any]) -> None:
    path = bag_path(db, "baga01", TZ)
    assert [(s["type"], s["status"]) for s in path] == [("handover", "HANDED_OVER"), ("storage_in", "OK"),
                                                         ("transfer", "TRANSFERRED")]
    handed, checked, moved = path
    assert (handed["department"], handed["weight_g"], handed["confirmer"], handed["collector"]) == \
        ("ICU", 1234, "N0001", "C0001")
    assert (checked["facility"], checked["expected_g"], checked["reweigh_g"], checked["confirmer"]) == \
        ("ROOM1", 1234, 1240, "K0001")
    assert (moved["vehicle"], moved["manifest"], moved["record_id"]) == ("TRUCK1", "12345678901234", recs["t1"]["id"])
    missing = bag_path(db, "BAGA04", TZ)
    assert [s["status"] for s in missing] == ["HANDED_OVER", "MISSING"]
    assert bag_path(db, "NOSUCHBAG", TZ) == []


def test_bag_path_shows_its_voids(db: sqlite3.Connection, recs: dict[str, Any]) -> None:
    one = bag_path(db, "BAGA02", TZ)  # the void names the bag: its own row
    assert [(s["type"], s["status"]) for s in one] == [("handover", "HANDED_OVER"), ("void", "VOIDED")]
    assert one[0]["voided_by"] == recs["v_bag"]["id"] and one[1]["reason"] == "标签重复"
    whole = bag_path(db, "BAGA03", TZ)  # the void names the record only: found through voided_by
    assert [(s["type"], s["status"], s["record_id"]) for s in whole] == [
        ("handover", "HANDED_OVER", recs["h2"]["id"]), ("void", "VOIDED", recs["v_whole"]["id"])]
    assert whole[1]["reason"] == "科室选错"


@pytest.mark.parametrize("by", ["day", "month"])
def test_summaries_equal_the_envelopes_summed_independently(db: sqlite3.Connection, recs: dict[str, Any],
                                                            by: str) -> None:
    rows = summarize(db, LedgerFilter(), by)  # type: ignore[arg-type]
    got = {(r.period, r.department, r.category): [r.bags, r.weight_g] for r in rows}
    assert got == expected_summary(list(recs.values()), by)
    assert totals(rows) == (sum(v[0] for v in got.values()), sum(v[1] for v in got.values()))


def test_summary_figures(db: sqlite3.Connection) -> None:
    rows = summarize(db, LedgerFilter(), "day")
    # h1 less its voided BAGA02, h3 whole, h2 voided; b1 on 11-30, b2 (UTC clock) and b3 on 12-02
    assert per_period(rows) == [("2026-11-30", 1, 100), ("2026-12-01", 3, 1234 + 2000 + 950),
                                ("2026-12-02", 3, 300 + 700 + 250)]
    assert [(r.period, r.department, r.category, r.bags) for r in summarize(db, LedgerFilter(), "month")] == [
        ("2026-11", "ICU", "INFECTIOUS", 1), ("2026-12", "ICU", "INFECTIOUS", 2),
        ("2026-12", "ICU", "PATHOLOGICAL", 1), ("2026-12", "ICU", "SHARPS", 1), ("2026-12", "LAB", "CHEMICAL", 1),
        ("2026-12", "LAB", "INFECTIOUS", 1)]


@pytest.mark.parametrize(("query", "expected"), [
    ({"department": "ICU"}, (5, 100 + 1234 + 2000 + 950 + 250)),
    ({"category": "INFECTIOUS", "from": "2026-12-01", "to": "2026-12-01"}, (2, 1234 + 950)),
    ({"cart": "CART-B", "from": "2026-12-02"}, (3, 1250)),
    ({"collector": "C0002", "confirmer": "N0003"}, (2, 1000)),
    ({"bag": "BAGA0"}, (3, 1234 + 2000 + 950)),
    ({"type": "transfer"}, (0, 0)),
])
def test_summaries_follow_the_filter(db: sqlite3.Connection, query: dict[str, str],
                                     expected: tuple[int, int]) -> None:
    assert totals(summarize(db, params(**query), "day")) == expected


def test_summary_refuses_an_unknown_period(db: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match=r"^by: 'week'"):
        summarize(db, LedgerFilter(), "week")  # type: ignore[arg-type]
