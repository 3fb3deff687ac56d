"""The ledger bench's generator at a tiny size: its store is one the gateway would have made.

Every stored record passes the ingest's own checks (``check_message``: topic, schema, the cart's
key from the written ``.pub`` file), the chains link seq 1..n per cart, the ledger index equals the
one the store rebuilds from the envelopes itself, and the cache is reused, not regenerated.  Every
body is version 2 and names only what its site's roster holds, with the role it signed as; manifest
numbers pass the kiosk's national check; a REJECTED check-in leaves its bags for the next one.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from edge import wire
from edge.catalogue import CATEGORY, VOID_REASON
from edge.manifest import national_problem
from gateway.ingest.checks import KeyRing, check_message
from gateway.store import SqliteStore, read_summary
from tests.bench import ledger_data

SIZE = ledger_data.Size(records=600, carts=3)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> ledger_data.Generated:
    return ledger_data.dataset(SIZE, tmp_path_factory.mktemp("ledger-cache"), workers=2)


def _index(db: sqlite3.Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    return (db.execute("SELECT * FROM ledger_records ORDER BY id").fetchall(),
            db.execute("SELECT * FROM ledger_bags ORDER BY record_id, package_code").fetchall())


def test_every_record_passes_the_ingest_checks_and_the_chains_link(generated: ledger_data.Generated) -> None:
    keys = KeyRing({}, generated.keys_dir)
    with sqlite3.connect(generated.db_path) as db:
        rows = db.execute("SELECT site, cart, seq, hash, prev_hash, envelope, chain FROM records"
                          " ORDER BY cart, seq").fetchall()
        noted = dict(db.execute("SELECT cart, public_key FROM cart_keys").fetchall())
    db.close()
    assert len(rows) == SIZE.records
    last: dict[str, tuple[int, str]] = {}
    for site, cart, seq, hash_, prev, envelope, chain in rows:
        rec = check_message(wire.topic(site, cart, wire.RECORD), envelope.encode(), keys)
        assert (rec.seq, rec.hash, rec.prev_hash, chain) == (seq, hash_, prev, "verified")
        before_seq, before_hash = last.get(cart, (0, wire.GENESIS_HASH))
        assert (seq, prev) == (before_seq + 1, before_hash), f"{cart} seq {seq}: chain broken"
        last[cart] = (seq, hash_)
    assert sorted(last) == [ledger_data.cart_id(i) for i in range(1, SIZE.carts + 1)]
    assert sum(s for s, _ in last.values()) == SIZE.records
    assert noted == {cart: keys.text(cart) for cart in last}  # the keys ingest would have noted


def test_the_store_opens_as_is_and_its_index_is_the_one_the_gateway_builds(
        generated: ledger_data.Generated, tmp_path: Path) -> None:
    copy = tmp_path / "copy.sqlite"
    with sqlite3.connect(generated.db_path) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
        before = _index(dst)
        dst.execute("DELETE FROM ledger_meta")  # the next open rebuilds the index from the envelopes
    src.close()
    dst.close()
    store = SqliteStore(generated.db_path)
    try:
        assert store.reindex() == 0  # version and zone as the gateway writes them: no rebuild at open
    finally:
        store.close()
    rebuilt = SqliteStore(copy)
    rebuilt.close()
    with sqlite3.connect(copy) as db:
        assert _index(db) == before
    db.close()
    types = Counter(r[4] for r in before[0])
    assert types["handover"] > types["storage_in"] > types["transfer"] > 0
    assert types["void"] > 0 and any(b[10] is not None for b in before[1])  # voids took bags out


def test_forward_states_and_carts_are_what_the_gateway_leaves(generated: ledger_data.Generated) -> None:
    summary = read_summary(generated.data)
    carts = summary["carts"]
    assert len(carts) == SIZE.carts
    assert all(c["chain_ok"] == c["stored"] == c["upto_seq"] == c["max_seq"] and not c["chain_broken"]
               for c in carts.values())
    assert summary["counts"]["accepted"] > 0.9 * SIZE.records
    assert generated.meta["first_day"] < generated.meta["last_day"]


def _signed(body: dict[str, Any], rtype: str) -> list[tuple[dict[str, Any], str]]:
    """(person, role) of everyone a body names: signers with their role, collectors as collectors."""
    people: dict[str, list[tuple[str, str | None]]] = {
        "handover": [("from_party", None), ("to_party", "collector")],
        "storage_in": [("operator", "collector"), ("keeper", None)],
        "transfer": [("from_party", "collector")],
        "void": [("by", "collector"), ("approved_by", None)]}
    out = [(body[k], role or body[k]["role"]) for k, role in people[rtype]]
    if rtype == "transfer":
        out.append((body["carrier"]["driver"], body["carrier"]["driver"]["role"]))
    return out


def test_every_body_is_version_2_and_names_only_its_sites_roster(generated: ledger_data.Generated) -> None:
    with sqlite3.connect(generated.db_path) as db:
        rows = db.execute("SELECT site, type, envelope FROM records ORDER BY cart, seq").fetchall()
    db.close()
    seen: Counter[str] = Counter()
    for site, rtype, text in rows:
        env = json.loads(text)
        body = env["body"]
        assert wire.validate_record(env) == [] and body["body_version"] == 2, f"{env['id']}: not a valid v2 body"
        roster = ledger_data.site_roster(int(site.removeprefix("HOSP-")))
        assert body["org"] == site and body["roster"] == roster.stamp()
        for who, role in _signed(body, rtype):
            person = roster.person(who["person_id"])
            assert person is not None and person.has(role) and who["name"] == person.name, (rtype, who)
            seen[role] += 1
        if rtype == "handover":
            nurse = roster.people[body["from_party"]["person_id"]]
            assert body["department"] in nurse.departments  # she signs for her own department only
            assert body["department_name"] == roster.departments[body["department"]].name
            assert body["destination"]["facility"] in roster.rooms
            assert all(("main_components" in ln) == CATEGORY[ln["category"]].needs_components
                       for ln in body["lines"])
        elif rtype == "storage_in":
            assert body["facility_name"] == roster.rooms[body["facility"]].name
        elif rtype == "transfer":
            vehicle = roster.vehicles[body["carrier"]["vehicle"]]
            assert (body["carrier"]["plate"], body["carrier"]["org"], body["receiver"]["id"]) == (
                vehicle.plate, vehicle.carrier, vehicle.receiver)
            assert roster.people[body["carrier"]["driver"]["person_id"]].carrier == vehicle.carrier
            day = datetime.fromisoformat(body["handed_over_at"]).date()
            assert body["manifest"]["type"] == "national"
            assert national_problem(body["manifest"]["number"], day) is None, body["manifest"]
        elif rtype == "void":
            assert body["reason_code"] in VOID_REASON and body["reason"].startswith(
                VOID_REASON[body["reason_code"]].zh)
            assert body["by"]["person_id"] != body["approved_by"]["person_id"]
    assert {"collector", "nurse", "keeper", "transporter", "supervisor"} <= set(seen)


def test_a_site_roster_holds_a_disposal_for_every_category_and_is_the_same_each_time() -> None:
    roster = ledger_data.site_roster(3)
    assert all(set(r.disposal) == set(CATEGORY) for r in roster.receivers.values())
    assert roster.org_name.startswith("嘉兴市")  # site 3 is in city 3304
    names = [p.name for p in roster.people.values()]
    assert len(set(names)) == len(names) and not any(pid == p.name for pid, p in roster.people.items())
    ledger_data.site_roster.cache_clear()
    assert ledger_data.site_roster(3).digest == roster.digest  # drawn from the site's seed alone


def test_a_rejected_check_in_leaves_its_bags_for_the_next_one() -> None:
    """A bag not found makes the check-in REJECTED (nothing stored): the next check-in has them all."""
    check_ins = [env["body"] for *_, env in ledger_data._cart_records(2, 1_000, date(2026, 11, 30))
                 if env["type"] == "storage_in"]
    rejected = [n for n, b in enumerate(check_ins) if b["result"] == "REJECTED"]
    assert rejected, "cart 2's first 1,000 records hold a REJECTED check-in"
    for n in rejected:
        body = check_ins[n]
        assert body["summary"]["missing_count"] == 1 and body["summary"]["present_count"] >= 1
        codes = {p["package_code"] for p in body["packages"]}
        assert codes <= {p["package_code"] for p in check_ins[n + 1]["packages"] if p["status"] != "MISSING"}


def test_a_second_call_uses_the_cache(generated: ledger_data.Generated) -> None:
    again = ledger_data.dataset(SIZE, generated.root.parent)
    assert again.meta["cached"] is True and again.meta["rows"] == generated.meta["rows"]


def test_the_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ledger_data.RECORDS_ENV, "50_000")
    monkeypatch.delenv(ledger_data.CARTS_ENV, raising=False)
    assert ledger_data.size_from_env() == ledger_data.Size(50_000, 50)
    monkeypatch.setenv(ledger_data.CARTS_ENV, "many")
    with pytest.raises(ValueError, match=ledger_data.CARTS_ENV):
        ledger_data.size_from_env()
