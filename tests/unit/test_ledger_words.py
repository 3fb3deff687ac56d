"""A record's body in words, per type and in both languages: who, where, what, how much."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.ledger.words import Words, describe
from tests.browser.ledger_fixtures import SigningCart, scenario

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def recs() -> dict[str, Any]:
    return scenario(SigningCart("CART-A"), SigningCart("CART-B"))


def fields(words: Words) -> dict[str, str]:
    return dict(words.fields)


def test_handover_in_chinese(recs: dict[str, Any]) -> None:
    w = describe(recs["h1"], "zh", TZ)
    assert w.title == "交接记录"
    assert w.sentence == "ICU 的 N0001 将 2 袋医疗废物（1.734 kg）交给收集人 C0001（CART-A）。"
    f = fields(w)
    assert (f["科室"], f["交出人（科室）"], f["收集人"], f["收集车"]) == ("ICU", "N0001 (刷卡)", "C0001", "CART-A")
    assert f["交接时间"] == "2026-12-01 09:00:00 +08:00" and f["合计"] == "2 袋, 1.734 kg"
    bags, by_category = w.tables
    assert bags.rows == [["BAGA01", "感染性废物", "841-001-01", "1.234"],
                         ["BAGA02", "损伤性废物", "841-002-01", "0.500"]]
    assert by_category.rows == [["感染性废物", "1", "1.234"], ["损伤性废物", "1", "0.500"]]


def test_handover_in_english_with_the_nurses_way_of_signing(recs: dict[str, Any]) -> None:
    w = describe(recs["b2"], "en", TZ)
    assert w.sentence == "N0003 of LAB handed 2 bag(s) of medical waste (1.000 kg) to collector C0002 (CART-B)."
    assert fields(w)["Handed over by (department)"] == "N0003 (PIN)"
    assert fields(w)["Handed over at"] == "2026-12-02 00:30:00 +08:00"  # a UTC stamp, in the ledger's zone
    assert [r[1] for r in w.tables[0].rows] == ["Chemical", "Infectious"]


def test_storage_in_says_each_bags_status(recs: dict[str, Any]) -> None:
    w = describe(recs["s1"], "zh", TZ)
    assert w.sentence == "C0001 将 2 袋送入暂存间 ROOM1，库管员 K0001 (刷卡)；结果：接收（有异常）。"
    f = fields(w)
    assert (f["暂存间"], f["应到"], f["实到"], f["缺失"], f["超时阈值"]) == ("ROOM1", "3 袋", "2 袋", "1", "48.0 小时")
    assert f["允许偏差"] == "max(50 g, 5 %)"
    rows = w.tables[0].rows
    assert [(r[0], r[3], r[4], r[5], r[6]) for r in rows] == [
        ("BAGA01", "正常", "1.234", "1.240", "+0.006"), ("BAGA04", "缺失", "2.000", "-", "-"),
        ("BAGA05", "偏差超限", "0.950", "1.100", "+0.150")]
    assert describe(recs["s1"], "en", TZ).tables[0].rows[1][3] == "missing"


def test_transfer_names_vehicle_manifest_and_destination(recs: dict[str, Any]) -> None:
    w = describe(recs["t1"], "en", TZ)
    assert w.sentence == ("2 bag(s) (2.340 kg) left on vehicle TRUCK1 under manifest national e-manifest "
                          "12345678901234.")
    f = fields(w)
    assert (f["Vehicle"], f["Disposal method"], f["Final destination"]) == ("TRUCK1", "高温蒸汽", "市医疗废物处置中心")
    assert fields(describe(recs["t1"], "zh", TZ))["联单"] == "全国电子联单 12345678901234"


def test_void_says_what_why_and_who(recs: dict[str, Any]) -> None:
    whole = describe(recs["v_whole"], "zh", TZ)
    assert whole.sentence == "C0001 作废了 整条记录，原因：科室选错。"
    assert fields(whole)["作废对象"] == f"交接记录 {recs['h2']['id']}"
    one = describe(recs["v_bag"], "en", TZ)
    assert one.sentence == "C0001 voided Package code BAGA02: 标签重复."
    assert fields(one)["By"] == "C0001 (CART-A)"


def test_another_type_lists_its_fields_with_readable_labels() -> None:
    env = {"type": "correction", "cart": "CART-A", "body": {
        "corrects_record_id": "abc", "reason": "weight typed wrong", "weight_g": 1200, "reviewed": True,
        "by": {"person_id": "S0001"}, "lines": [{"package_code": "BAG1", "category": "SHARPS", "weight_g": 10}],
        "noted_at": "2026-12-01T01:00:00Z"}}
    w = describe(env, "en", TZ)
    f = fields(w)
    assert w.title == "Correction"
    assert (f["Reason"], f["Weight (kg)"], f["Reviewed"], f["By · Person id"]) == \
        ("weight typed wrong", "1.200", "yes", "S0001")
    assert f["Corrects record id"] == "abc" and f["Noted at"] == "2026-12-01 09:00:00 +08:00"
    assert w.tables[0].columns == ["Package code", "Category", "Weight (kg)"]
    assert w.tables[0].rows == [["BAG1", "Sharps", "0.010"]]
    assert describe({"type": "incident", "body": {"what": "<script>"}}, "zh").fields == [("What", "<script>")]


def test_a_body_of_the_wrong_shape_is_shown_not_raised() -> None:
    w = describe({"type": "handover", "body": {"lines": "nope", "from_party": 3, "handover_at": "later"}}, "zh", TZ)
    assert fields(w)["交出人（科室）"] == "-" and fields(w)["交接时间"] == "later"
    assert describe({"type": "storage_in", "body": []}, "en").title == "Storage check-in"
