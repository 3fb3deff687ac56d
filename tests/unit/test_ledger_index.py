"""The ledger's index: the rows each record type gives, voids in either order, rebuilds, migration."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edge import wire
from gateway.ledger.index import INDEX_VERSION, index_record
from gateway.store import Incoming, SqliteStore
from tests.unit.test_gateway_store import h


def envelope(seq: int, rtype: str, body: dict[str, Any], created_at: str = "2026-03-01T23:30:00+08:00",
             cart: str = "CART-1") -> dict[str, Any]:
    return {"id": f"id-{cart}-{seq}", "cart": cart, "seq": seq, "type": rtype, "created_at": created_at, "body": body}


def incoming(env: dict[str, Any]) -> Incoming:
    seq, cart = int(env["seq"]), str(env["cart"])
    return Incoming(id=env["id"], site="H1", cart=cart, seq=seq, type=env["type"], created_at=env["created_at"],
                    hash=h(env["id"]), envelope=json.dumps(env), topic=f"wc/v1/H1/{cart}/record", payload=b"{}",
                    prev_hash=wire.GENESIS_HASH if seq == 1 else h(f"id-{cart}-{seq - 1}"))


HANDOVER = {"department": "ICU", "from_party": {"person_id": "N0001", "auth_method": "card"},
            "to_party": {"person_id": "C0001", "device_id": "CART-1"},
            "lines": [{"package_code": "BAG1", "category": "INFECTIOUS", "weight_g": 1200},
                      {"package_code": "BAG2", "category": "SHARPS", "weight_g": 300}]}
STORAGE_IN = {"facility": "ROOM-1", "operator": {"person_id": "C0001"}, "keeper": {"person_id": "K0001"},
              "packages": [{"package_code": "BAG1", "category": "INFECTIOUS", "department": "ICU",
                            "expected_g": 1200, "reweigh_g": 1190, "status": "OK"},
                           {"package_code": "BAG2", "category": "SHARPS", "department": "ICU",
                            "expected_g": 300, "reweigh_g": None, "status": "MISSING"}]}
TRANSFER = {"from_party": {"person_id": "C0001"}, "carrier": {"vehicle": "浙A12345"},
            "lines": [{"package_code": "BAG1", "category": "INFECTIOUS", "weight_g": 1200}]}


def test_each_type_names_who_where_and_its_bags() -> None:
    row, bags = index_record(envelope(1, "handover", HANDOVER), "H1")
    assert (row.department, row.collector, row.confirmer, row.bags, row.weight_g) == ("ICU", "C0001", "N0001", 2, 1500)
    assert [(b.package_code, b.status, b.department, b.weight_g) for b in bags] == [
        ("BAG1", "HANDED_OVER", "ICU", 1200), ("BAG2", "HANDED_OVER", "ICU", 300)]
    row, bags = index_record(envelope(2, "storage_in", STORAGE_IN), "H1")
    assert (row.collector, row.confirmer) == ("C0001", "K0001")
    # the missing bag is indexed (its path shows it missing) but not counted as present
    assert [(b.package_code, b.status, b.weight_g) for b in bags] == [("BAG1", "OK", 1190), ("BAG2", "MISSING", 300)]
    assert (row.bags, row.weight_g) == (1, 1190)
    row, bags = index_record(envelope(3, "transfer", TRANSFER), "H1")
    assert (row.collector, [b.status for b in bags]) == ("C0001", ["TRANSFERRED"])
    row, bags = index_record(envelope(4, "void", {"voided_record_id": "id-CART-1-1", "package_code": "BAG2",
                                                  "by": {"person_id": "C0001"}, "reason": "wrong bag"}), "H1")
    assert (row.refers_to, [b.package_code for b in bags]) == ("id-CART-1-1", ["BAG2"])


def test_the_day_is_the_ledger_zone_s_not_the_cart_s(tmp_path: Path) -> None:
    # 23:30 in Shanghai is 15:30 UTC the same day; 17:30 UTC on the 1st is 01:30 in Shanghai on the 2nd
    late = envelope(2, "handover", HANDOVER, created_at="2026-03-01T17:30:00+00:00")
    for zone_name, days in (("Asia/Shanghai", ["2026-03-01", "2026-03-02"]), ("UTC", ["2026-03-01", "2026-03-01"])):
        store = SqliteStore(tmp_path / zone_name.replace("/", "-") / "gateway.sqlite", ledger_zone=zone_name)
        store.store_batch([incoming(envelope(1, "handover", HANDOVER)), incoming(late)], 1.0)
        store.close()
        with sqlite3.connect(tmp_path / zone_name.replace("/", "-") / "gateway.sqlite") as db:
            assert [d for (d,) in db.execute("SELECT day FROM ledger_records ORDER BY seq")] == days
            assert {d for (d,) in db.execute("SELECT day FROM ledger_bags WHERE record_id = 'id-CART-1-2'")} == {
                days[1]}


def test_a_body_of_an_unexpected_shape_is_indexed_without_its_odd_fields() -> None:
    odd = {"department": 7, "lines": [{"package_code": None}, "x", {"package_code": "B", "weight_g": True}]}
    row, bags = index_record(envelope(1, "handover", odd), "H1")
    assert (row.department, row.bags, [(b.package_code, b.weight_g) for b in bags]) == (None, 1, [("B", None)])


def voided(db: sqlite3.Connection) -> dict[str, str | None]:
    return dict(db.execute("SELECT package_code, voided_by FROM ledger_bags WHERE type = 'handover'").fetchall())


@pytest.mark.parametrize("void_first", [False, True])
def test_a_void_takes_its_bag_out_whichever_arrives_first(tmp_path: Path, void_first: bool) -> None:
    store = SqliteStore(tmp_path / "gateway.sqlite")
    handover = incoming(envelope(1, "handover", HANDOVER))
    void = incoming(envelope(2, "void", {"voided_record_id": "id-CART-1-1", "package_code": "BAG2",
                                         "by": {"person_id": "C0001"}}))
    for item in ([void, handover] if void_first else [handover, void]):
        assert store.store_batch([item], 1.0).outcomes[0].status == "stored"
    store.close()
    with sqlite3.connect(tmp_path / "gateway.sqlite") as db:
        assert voided(db) == {"BAG1": None, "BAG2": "id-CART-1-2"}


def test_a_new_zone_rebuilds_the_index_and_the_same_zone_does_not(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    store = SqliteStore(path)
    store.store_batch([incoming(envelope(1, "handover", HANDOVER, created_at="2026-03-01T17:30:00+00:00"))], 1.0)
    assert store.reindex() == 0
    store.close()
    store = SqliteStore(path, ledger_zone="UTC")  # rebuilt at open
    assert store.reindex() == 0
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT day FROM ledger_records").fetchall() == [("2026-03-01",)]
        assert dict(db.execute("SELECT key, value FROM ledger_meta").fetchall())["zone"] == "UTC"


def test_an_unknown_zone_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        SqliteStore(tmp_path / "gateway.sqlite", ledger_zone="Mars/Olympus")


def test_records_stored_before_the_index_existed_are_indexed_at_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    store = SqliteStore(path)
    store.store_batch([incoming(envelope(1, "handover", HANDOVER))], 1.0)
    store.close()
    with sqlite3.connect(path) as db:  # as a version-5 gateway left it: records, no index
        db.execute("DELETE FROM ledger_records")
        db.execute("DELETE FROM ledger_bags")
        db.execute("DELETE FROM ledger_meta")
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id, bags, weight_g FROM ledger_records").fetchall() == [("id-CART-1-1", 2, 1500)]


def test_a_tool_that_names_no_zone_keeps_the_gateway_s(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    SqliteStore(path, ledger_zone="UTC").close()
    store = SqliteStore(path)  # as `gateway release` or an export opens it: no [ledger] config at hand
    assert (store.zone.key, store.reindex()) == ("UTC", 0)
    store.close()


def test_an_index_built_by_an_older_version_is_rebuilt_at_open(tmp_path: Path) -> None:
    """INDEX_VERSION 2 reads v2 bodies (a REJECTED check-in's bags, incidents): an older index is rebuilt."""
    path = tmp_path / "gateway.sqlite"
    rejected = {**STORAGE_IN, "result": "REJECTED"}
    store = SqliteStore(path)
    store.store_batch([incoming(envelope(1, "storage_in", rejected))], 1.0)
    store.close()
    with sqlite3.connect(path) as db:  # as the version 1 index left it: the present bag read as checked in
        db.execute("UPDATE ledger_bags SET status = 'OK' WHERE package_code = 'BAG1'")
        db.execute("UPDATE ledger_meta SET value = '1' WHERE key = 'version'")
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT package_code, status FROM ledger_bags ORDER BY package_code").fetchall() == [
            ("BAG1", "REJECTED"), ("BAG2", "MISSING")]
        assert dict(db.execute("SELECT key, value FROM ledger_meta").fetchall())["version"] == str(INDEX_VERSION)
