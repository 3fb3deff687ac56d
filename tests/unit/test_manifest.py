"""National manifest numbers: real ones pass, each impossible part is named, a one-digit typo in the
place code is caught unless it lands on another real place, and nothing typed can crash the check."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge import manifest, messages
from edge.manifest import describe, divisions, is_national_shape, national_problem
from edge.messages import Text

TODAY = datetime.date(2026, 12, 7)
PROBLEMS = {"manifest.not_digits", "manifest.length", "manifest.year", "manifest.province", "manifest.city"}


@pytest.mark.parametrize("number", [
    "20263301000123",  # 浙江省 杭州市
    "20211101000001",  # 北京市 市辖区, the first year of the national number
    "20235002004711",  # 重庆市 县
    "20244190000010",  # 河南省 省直辖县级行政区划 (济源)
    "20256590123456",  # 新疆 自治区直辖县级行政区划
    "20264403999999",  # 广东省 深圳市
])
def test_real_numbers_pass(number: str) -> None:
    assert is_national_shape(number)
    assert national_problem(number, TODAY) is None


def test_each_problem_names_the_digits_that_are_wrong() -> None:
    length = national_problem("2026330100012", TODAY)
    assert length is not None and length.key == "manifest.length"
    assert "13" in length.zh and "13" in length.en

    letters = national_problem("2026-33-01-000123", TODAY)
    assert letters is not None and letters.key == "manifest.not_digits"
    assert "2026-33-01-000123" in letters.zh

    future = national_problem("20273301000123", TODAY)
    assert future is not None and future.key == "manifest.year"
    assert (future.zh, future.en) == ("联单号前4位是年份：2027年不在2021年至2026年之间",
                                      "The first 4 digits are the year: 2027 is not between 2021 and 2026")
    past = national_problem("20203301000123", TODAY)
    assert past is not None and past.key == "manifest.year" and "2020" in past.zh

    province = national_problem("20269901000123", TODAY)
    assert province is not None and province.key == "manifest.province"
    assert "99" in province.zh and "99" in province.en

    city = national_problem("20263312000123", TODAY)  # 浙江 has 11 cities, 3301–3311
    assert city is not None and city.key == "manifest.city"
    assert (city.zh, city.en) == ("联单号第5–8位是省份和城市代码：3312不是浙江省的城市",
                                  "Digits 5–8 are the province and city code: 3312 is not a city of Zhejiang")


def test_the_year_follows_today() -> None:
    number = "20273301000123"
    assert national_problem(number, datetime.date(2027, 1, 1)) is None
    assert national_problem(number, datetime.date(2026, 12, 31)) is not None


def test_hong_kong_macao_taiwan_and_retired_codes_are_not_in_the_national_system() -> None:
    for code in ("71", "81", "82"):
        problem = national_problem(f"2026{code}01000001", TODAY)
        assert problem is not None and problem.key == "manifest.province"
    laiwu = national_problem("20263712000001", TODAY)  # 莱芜市, merged into 济南市 in 2019
    assert laiwu is not None and laiwu.key == "manifest.city"
    hebei_direct = national_problem("20261390000001", TODAY)  # 河北 has no province-administered units
    assert hebei_direct is not None and hebei_direct.key == "manifest.city"


def test_overlong_junk_is_quoted_shortened() -> None:
    problem = national_problem("x" * 500, TODAY)
    assert problem is not None and problem.key == "manifest.not_digits"
    assert len(problem.zh) < 100 and "…" in problem.zh


def test_describe_reads_the_number_back_in_words() -> None:
    assert describe("20263301000123") == Text("2026年 浙江省 杭州市 第000123号", "2026, Zhejiang 杭州市, no. 000123")
    assert describe("20261101000001") == Text("2026年 北京市 市辖区 第000001号", "2026, Beijing 市辖区, no. 000001")
    assert describe("20269901000123") == Text("2026年 99 9901 第000123号", "2026, 99 9901, no. 000123")
    assert describe("12345") == Text("12345", "12345")


def test_the_table_is_whole_and_consistent() -> None:
    table = divisions()
    assert len(table.provinces) == 31 and len(table.cities) == 342  # 333 prefecture level + 01/02 + xx90
    assert table.source and "modood" in table.source
    orphans = {code for code in table.cities if code[:2] not in table.provinces}
    assert not orphans, f"city codes of no province: {orphans}"
    assert all(len(code) == 2 and code.isdigit() for code in table.provinces)
    assert all(len(code) == 4 and code.isdigit() for code in table.cities)
    assert {"1101", "1201", "3101", "5001", "5002"} <= table.cities.keys()  # municipalities
    assert {c for c in table.cities if c.endswith("90")} == {"4190", "4290", "4690", "6590"}
    assert table.cities["3301"] == "杭州市" and table.provinces["33"] == Text("浙江省", "Zhejiang")


def test_a_single_mistyped_place_digit_is_caught_unless_it_is_another_real_place() -> None:
    """Every real city, every digit of its 4-digit code, every wrong digit: caught, or a real code."""
    cities = divisions().cities
    missed = []
    for code in cities:
        for position in range(4):
            for digit in "0123456789":
                if digit == code[position]:
                    continue
                typo = code[:position] + digit + code[position + 1:]
                problem = national_problem(f"2026{typo}000123", TODAY)
                if typo in cities:
                    assert problem is None, typo
                elif problem is None or problem.key not in ("manifest.province", "manifest.city"):
                    missed.append(typo)
    assert not missed, missed[:10]


@given(st.text(alphabet="0123456789", min_size=14, max_size=14))
def test_every_14_digit_string_passes_or_gets_exactly_one_named_problem(number: str) -> None:
    problem = national_problem(number, TODAY)
    if problem is None:
        assert _year_ok(number) and number[4:8] in divisions().cities
        return
    assert problem.key in PROBLEMS - {"manifest.not_digits", "manifest.length"}
    assert "{" not in problem.zh and "{" not in problem.en  # every field filled in both languages
    assert describe(number).zh.endswith(f"第{number[8:]}号")


@given(st.text(max_size=40))
def test_anything_typed_is_judged_without_raising(number: str) -> None:
    problem = national_problem(number, TODAY)
    assert problem is None or problem.key in PROBLEMS
    assert (problem is None) <= is_national_shape(number)
    if not is_national_shape(number):
        assert describe(number) == Text(number, number)  # shown as typed, never raises
    if problem is not None:
        assert problem.key in messages.CATALOGUE


def _year_ok(number: str) -> bool:
    return manifest.FIRST_YEAR <= int(number[:4]) <= TODAY.year
