"""Version 2 record bodies through the gateway's ledger: each fixture body passes the record schema,
then a round signed and stored as ingest stores it (handover, a REJECTED check-in, a loss report, the
accepted check-in, a transfer with an overdue bag, a supervisor-approved void, a correction of the
departed transfer) is indexed, told in words, followed bag by bag and exported."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jinja2 import Environment, FileSystemLoader, select_autoescape
from openpyxl import load_workbook

from edge import wire
from gateway.console import i18n
from gateway.console.ledger_pages import CATEGORY_NAMES
from gateway.ingest.checks import KeyRing
from gateway.ledger.export import LEDGER_HEADERS, export, open_readonly
from gateway.ledger.index import index_record
from gateway.ledger.search import LedgerFilter, bag_path, record_view, search
from gateway.ledger.words import describe
from gateway.store import DB_NAME, SqliteStore
from tests import v2_bodies as v2
from tests.browser.ledger_fixtures import SigningCart, at, store_checked

TZ = ZoneInfo("Asia/Shanghai")
COL = {name: i for i, name in enumerate(LEDGER_HEADERS)}
TEMPLATES = Path(i18n.__file__).parent / "templates"


def schema_errors(rtype: str, body: dict[str, Any]) -> list[str]:
    """The record schema's complaints about ``body`` inside a well-formed envelope (as the gateway checks it)."""
    env = wire.unsigned_envelope(record_id=wire.uuid7(), cart="CART-A", seq=1, created_at=v2.T0,
                                 clock=wire.Clock("ntp", 1), rtype=rtype, body=body, prev_hash=wire.GENESIS_HASH)
    env.update(hash="0" * 64, sig="A" * 86 + "==")
    return wire.validate_record(env)


@pytest.mark.parametrize(("rtype", "body"), [
    ("handover", v2.handover()),
    ("handover", v2.handover([("V2CHEM1", "CHEMICAL", 300)], department="D03", notes=())),
    ("storage_in", v2.storage_in()),
    ("storage_in", v2.storage_in((*v2.HANDED[:1], v2.Handed("V2BAG02", "SHARPS", 500, None)))),
    ("transfer", v2.transfer()),
    ("void", v2.void()),
    ("incident", v2.incident()),
    ("correction", v2.correction(v2.HANDOVER_ID)),
])
def test_each_fixture_body_is_a_valid_version_2_body(rtype: str, body: dict[str, Any]) -> None:
    assert body["body_version"] == 2 and schema_errors(rtype, body) == []


def test_a_version_2_body_is_checked_against_its_own_shape() -> None:
    without_keeper = {k: v for k, v in v2.storage_in().items() if k != "keeper"}
    assert any("keeper" in e for e in schema_errors("storage_in", without_keeper))
    no_destination = {**v2.transfer(), "final_destination": ""}
    assert schema_errors("transfer", no_destination)


@pytest.fixture(scope="module")
def rounds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """One cart's round in version 2 bodies, signed and stored through the gateway's checks."""
    folder = tmp_path_factory.mktemp("v2")
    cart = SigningCart("CART-A")
    recs: dict[str, dict[str, Any]] = {}
    hand_at = at("2026-12-01", 9)
    recs["h"] = cart.seal("handover", v2.handover((("V2BAG01", "INFECTIOUS", 1234), ("V2BAG02", "SHARPS", 500),
                                                   ("V2BAG03", "PATHOLOGICAL", 2000)), at=v2.T0), hand_at)
    recs["h2"] = cart.seal("handover", v2.handover((("V2BAG04", "INFECTIOUS", 700), ("V2BAG05", "SHARPS", 90)),
                                                   department="D02", at="2026-12-01T10:00:00.000+08:00"),
                           at("2026-12-01", 10))
    recs["void"] = cart.seal("void", v2.void(recs["h2"]["id"], package_code="V2BAG05"), at("2026-12-01", 11))
    hid = recs["h"]["id"]
    handed = (v2.Handed("V2BAG01", "INFECTIOUS", 1234, 1240, handover_record_id=hid),
              v2.Handed("V2BAG02", "SHARPS", 500, None, handover_record_id=hid),
              v2.Handed("V2BAG03", "PATHOLOGICAL", 2000, 2010, handover_record_id=hid))
    other = v2.Handed("V2BAG04", "INFECTIOUS", 700, 705, department="D02", handover_record_id=recs["h2"]["id"])
    recs["rejected"] = cart.seal("storage_in", v2.storage_in((*handed, other), at="2026-12-01T12:40:00.000+08:00"),
                                 at("2026-12-01", 12, 40))
    recs["lost"] = cart.seal("incident", v2.incident((handed[1],)), at("2026-12-01", 12, 50))
    recs["stored"] = cart.seal("storage_in", v2.storage_in((handed[0], handed[2]), incidents=[recs["lost"]["id"]]),
                               at("2026-12-01", 13))
    moved = (v2.Moved("V2BAG01", "INFECTIOUS", 1240), v2.Moved("V2BAG03", "PATHOLOGICAL", 2010))  # stored 13:00
    recs["transfer"] = cart.seal("transfer", v2.transfer(moved, at="2026-12-03T15:00:00.000+08:00"),
                                 at("2026-12-03", 15))  # 50 h later: both overdue
    recs["correction"] = cart.seal("correction", v2.correction(recs["transfer"]["id"],
                                                               at="2026-12-03T16:00:00.000+08:00"),
                                   at("2026-12-03", 16))
    store = SqliteStore(folder / DB_NAME)
    try:
        keys = wire.public_key_text(cart.key.public_key())
        store_checked(store, list(recs.values()), KeyRing({"CART-A": keys}, None), at("2026-12-04").timestamp())
    finally:
        store.close()
    return folder, recs


@pytest.fixture
def db(rounds: tuple[Path, dict[str, Any]]) -> Iterator[sqlite3.Connection]:
    conn = open_readonly(rounds[0])
    yield conn
    conn.close()


def rows(db: sqlite3.Connection, rid: str) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    rec = db.execute("SELECT type, department, collector, confirmer, bags, weight_g, refers_to FROM ledger_records"
                     " WHERE id = ?", (rid,)).fetchone()
    bags = db.execute("SELECT package_code, status, department, weight_g, voided_by FROM ledger_bags"
                      " WHERE record_id = ? ORDER BY package_code", (rid,)).fetchall()
    return rec, bags


def test_the_index_names_who_signed_each_version_2_record(db: sqlite3.Connection, rounds: Any) -> None:
    recs = rounds[1]
    assert rows(db, recs["h"]["id"])[0][:5] == ("handover", "D01", "COL-01", "NUR-01", 3)
    assert rows(db, recs["stored"]["id"])[0][2:4] == ("COL-01", "KEEP-01")
    assert rows(db, recs["transfer"]["id"])[0][2:4] == ("COL-01", "DRV-01")  # carrier.driver.person_id
    void, void_bags = rows(db, recs["void"]["id"])
    assert (void[3], void[6], [b[0] for b in void_bags]) == ("SUP-01", recs["h2"]["id"], ["V2BAG05"])
    assert rows(db, recs["h2"]["id"])[1][1][4] == recs["void"]["id"]  # V2BAG05 taken out
    correction, correction_bags = rows(db, recs["correction"]["id"])
    assert (correction[3], correction[6], correction_bags) == ("SUP-01", recs["transfer"]["id"], [])


def test_a_rejected_check_in_stores_nothing_and_a_lost_bag_is_lost(db: sqlite3.Connection, rounds: Any) -> None:
    recs = rounds[1]
    _, bags = rows(db, recs["rejected"]["id"])
    assert [(b[0], b[1]) for b in bags] == [("V2BAG01", "REJECTED"), ("V2BAG02", "MISSING"), ("V2BAG03", "REJECTED"),
                                            ("V2BAG04", "REJECTED")]
    lost, lost_bags = rows(db, recs["lost"]["id"])
    assert lost == ("incident", "D01", "COL-01", "SUP-01", 1, 500, None)
    assert lost_bags == [("V2BAG02", "LOST", "D01", 500, None)]
    stored = db.execute("SELECT package_code, status FROM ledger_bags WHERE record_id = ?",
                        (recs["stored"]["id"],)).fetchall()
    assert sorted(stored) == [("V2BAG01", "OK"), ("V2BAG03", "OK")]


def test_an_incident_over_two_departments_names_none() -> None:
    lost = (v2.Handed("X1", "SHARPS", 10, None), v2.Handed("X2", "SHARPS", 20, None, department="D02"))
    row, bags = index_record({"id": "i", "cart": "C", "seq": 1, "type": "incident",
                              "created_at": v2.T0, "body": v2.incident(lost)}, "H1")
    assert (row.department, row.weight_g, [b.department for b in bags]) == (None, 30, ["D01", "D02"])


def test_the_type_filter_knows_incidents_and_corrections(db: sqlite3.Connection, rounds: Any) -> None:
    found = search(db, LedgerFilter.from_params({"type": "incident"}, TZ), tz=TZ).rows
    assert [r["id"] for r in found] == [rounds[1]["lost"]["id"]]


def test_a_bags_path_shows_its_rejected_check_in_and_its_loss(db: sqlite3.Connection) -> None:
    lost = bag_path(db, "V2BAG02", TZ)
    assert [(s["type"], s["status"]) for s in lost] == [("handover", "HANDED_OVER"), ("storage_in", "MISSING"),
                                                        ("incident", "LOST")]
    assert lost[2]["reason"] == "锐器盒在电梯间遗失，已报告院感科" and lost[2]["confirmed_name"] == "周主管"
    kept = bag_path(db, "V2BAG03", TZ)
    assert [s["status"] for s in kept] == ["HANDED_OVER", "REJECTED", "OK", "TRANSFERRED"]
    moved = kept[-1]
    assert (moved["disposal_method"], moved["final_destination"], moved["overdue"], moved["dwell_s"]) == (
        "焚烧", v2.FINAL_DESTINATION, True, 180000)
    assert (moved["plate"], kept[2]["facility_name"]) == ("浙A·D1234", v2.ROOM_NAME)


def render_bag(code: str, steps: list[dict[str, Any]], lang: str) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    return env.get_template("bag.html").render(t=i18n.texts(lang), lang=lang, langs=i18n.LANGS,
                                               lang_links={"zh": "?", "en": "?"}, path=f"/bags/{code}", csrf="x",
                                               user=None, zone=TZ.key, cats=CATEGORY_NAMES, code=code, steps=steps)


def test_the_bag_page_says_lost_rejected_dwell_and_disposal_in_words(db: sqlite3.Connection) -> None:
    zh = render_bag("V2BAG02", bag_path(db, "V2BAG02", TZ), "zh")
    assert "遗失（主管确认的遗失报告）" in zh and "周主管" in zh
    page = render_bag("V2BAG03", bag_path(db, "V2BAG03", TZ), "en")
    assert "check-in rejected (not stored, still on the cart)" in page
    assert "Disposal method 焚烧" in page and "Dwell 50.0 h (OVERDUE)" in page
    assert "Dwell 4.0 h" in page  # ward (09:00) to storage (13:00), within the day


def test_the_record_page_tells_each_version_2_record_in_words(db: sqlite3.Connection, rounds: Any) -> None:
    recs = rounds[1]

    def said(name: str, lang: str = "zh") -> dict[str, str]:
        view = record_view(db, recs[name]["id"], None, TZ)
        assert view is not None
        return dict(describe(view["envelope"], lang, TZ).fields)

    assert said("h")["交出人（科室）"] == "李护士 (NUR-01) · 科室护士 · 刷卡"
    assert said("h")["名册版本"] == "demo-1" and said("h", "en")["Department"] == "心血管内科 (D01)"
    assert said("rejected")["结果"] == "拒收：本次未入库，包装仍在收集车上"
    assert said("rejected", "en")["Ward to storage limit"] == "24.0 h (warned at 80 %)"
    transfer = said("transfer")
    assert (transfer["运输车辆"], transfer["驾驶员"]) == ("浙A·D1234 (V1)", "吴司机 (DRV-01) · 转运人员 · 刷卡")
    assert (transfer["处置方法"], transfer["最终去向"]) == ("高温蒸汽灭菌、焚烧", v2.FINAL_DESTINATION)
    assert transfer["接收单位（处置） · 许可证号"] == "浙危废经第3301000001号" and transfer["超时"] == "2"
    void = said("void", "en")
    assert (void["Reason (listed)"], void["Approved by"]) == ("registered twice", "周主管 (SUP-01) · supervisor · PIN")
    lost = said("lost")
    assert (lost["异常类型"], lost["确认人（主管）"], lost["合计"]) == ("医废遗失", "周主管 (SUP-01) · 主管 · PIN 码",
                                                                  "1 袋, 0.500 kg")
    assert said("correction", "en")["Manifest (was → now)"] == ("national e-manifest 20263301000001 → "
                                                                "national e-manifest 20263301000002")


def test_version_2_tables_show_notes_dwell_and_disposal_per_bag() -> None:
    w = describe({"type": "handover", "body": v2.handover()}, "zh", TZ)
    assert w.tables[0].rows[0][4:] == ["含少量药物性废物", "-"]
    chem = describe({"type": "handover", "body": v2.handover([("C1", "CHEMICAL", 300)], department="D03")}, "en")
    assert chem.tables[0].rows[0][5] == "甲醛、二甲苯"
    t = describe({"type": "transfer", "body": v2.transfer()}, "en", TZ)
    assert [r[6:] for r in t.tables[0].rows] == [["19.0", "OK", "高温蒸汽灭菌"],
                                                 ["40.0", "near the limit", "高温蒸汽灭菌"]]
    assert "杭州医废转运有限公司" in t.sentence and "吴司机 (DRV-01)" in t.sentence


def test_an_unknown_body_version_is_listed_not_misread() -> None:
    w = describe({"type": "transfer", "body": {"body_version": 3, "carrier": {"vehicle": "V9"}}}, "en", TZ)
    assert w.sentence == "" and ("Carrier · Vehicle", "V9") in w.fields


def test_the_export_fills_disposal_and_destination_and_shows_lost_and_rejected(
        db: sqlite3.Connection, tmp_path: Path) -> None:
    out = tmp_path / "v2.csv"
    export(db, LedgerFilter(), "csv", out, TZ)
    table = list(csv.reader(out.read_text("utf-8-sig").splitlines()))
    assert tuple(table[0]) == LEDGER_HEADERS
    by_code = {r[COL["包装编码"]]: r for r in table[1:]}
    assert sorted(by_code) == ["V2BAG01", "V2BAG02", "V2BAG03", "V2BAG04", "V2BAG05"]
    one, three = by_code["V2BAG01"], by_code["V2BAG03"]
    assert (one[COL["处置方法"]], one[COL["最终去向"]], one[COL["状态"]]) == (
        "高温蒸汽灭菌", v2.FINAL_DESTINATION, "已转运")
    assert (three[COL["处置方法"]], three[COL["暂存间"]], three[COL["复核重量(kg)"]]) == ("焚烧", "ROOM1", "2.010")
    lost = by_code["V2BAG02"]
    assert (lost[COL["状态"]], lost[COL["暂存间"]], lost[COL["处置方法"]], lost[COL["联单号"]]) == ("遗失", "", "", "")
    rejected = by_code["V2BAG04"]
    assert (rejected[COL["状态"]], rejected[COL["暂存间"]], rejected[COL["入库时间"]]) == (
        "入库被拒(未入库, 仍在车上)", "", "")
    assert by_code["V2BAG05"][COL["状态"]] == "作废"


def test_the_xlsx_says_where_disposal_and_destination_come_from(db: sqlite3.Connection, tmp_path: Path) -> None:
    out = tmp_path / "v2.xlsx"
    export(db, LedgerFilter(), "xlsx", out, TZ)
    book = load_workbook(out, read_only=True)
    try:
        header = next(book["台账"].iter_rows(values_only=True))
        notes = {r[0]: r[1] for r in book["说明"].iter_rows(values_only=True)}
    finally:
        book.close()
    assert tuple(header) == LEDGER_HEADERS and len(header) == 18
    assert "第2版" in str(notes["处置方法 / 最终去向"])
