"""National hazardous-waste manifest numbers: what can be checked in one, and how it reads back.

The national uniform number (危险废物转移管理办法 Art. 15, in force 2021-09-01) is 14 digits::

    YYYY PP CC NNNNNN     year, province code, prefecture-level city code, serial within that city

It carries no check digit, so a mistyped digit can only be caught where it makes the number
impossible: a year before the format existed or after today, a province code no province has, a
city code that is not a city of that province (GB/T 2260 codes, shipped in ``edge/data/divisions.json``
with its source).  The serial cannot be checked; that is why the kiosk reads the number back
(``describe``) and asks for it a second time.  Pure: stdlib and ``edge.messages`` only, no I/O but
reading the shipped table once.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from edge.messages import Msg, Text, msg

LENGTH = 14  # digits of a national number (Art. 15)
FIRST_YEAR = 2021  # the national number exists since the Transfer Measures took effect (2021-09-01)
SHOWN_CHARS = 20  # of a wrong entry quoted back on the screen: enough to see the mistake, no more
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True)
class Divisions:
    """The shipped GB/T 2260 table: province code -> name (zh, short en), 4-digit city code -> name."""

    provinces: Mapping[str, Text]
    cities: Mapping[str, str]
    source: str


@cache
def divisions() -> Divisions:
    """The table, read once from the package (it ships beside the code, like the schemas)."""
    text = resources.files("edge").joinpath("data/divisions.json").read_text("utf-8")
    raw = json.loads(text)
    provinces = {code: Text(zh, en) for code, (zh, en) in raw["provinces"].items()}
    return Divisions(MappingProxyType(provinces), MappingProxyType(dict(raw["cities"])), str(raw["source"]))


def is_national_shape(number: str) -> bool:
    """14 ASCII digits (``str.isdigit`` would also take full-width and other scripts' digits)."""
    return len(number) == LENGTH and set(number) <= _DIGITS


def national_problem(number: str, today: datetime.date) -> Msg | None:
    """What is wrong with ``number`` as a national manifest number, or None when every check passes.

    One problem, the first in reading order (shape, year, province, city), in words that name the
    digits to look at.  ``today`` is the local date: a number from a later year is a typo.
    """
    if not is_national_shape(number):
        if set(number) <= _DIGITS:
            return msg("manifest.length", length=len(number))
        shown = number if len(number) <= SHOWN_CHARS else number[:SHOWN_CHARS] + "…"
        return msg("manifest.not_digits", number=shown)
    year = int(number[:4])
    if not FIRST_YEAR <= year <= today.year:
        return msg("manifest.year", year=number[:4], first=FIRST_YEAR, last=today.year)
    table = divisions()
    province = table.provinces.get(number[4:6])
    if province is None:
        return msg("manifest.province", code=number[4:6])
    if number[4:8] not in table.cities:
        return msg("manifest.city", code=number[4:8], province=province)
    return None


def describe(number: str) -> Text:
    """The number in words to read back, e.g. "2026年 浙江省 杭州市 第000123号"; a part the table does
    not know shows as its digits, and anything not 14 digits shows as typed."""
    if not is_national_shape(number):
        return Text(number, number)
    table = divisions()
    province: Text | str = table.provinces.get(number[4:6], number[4:6])
    city = table.cities.get(number[4:8], number[4:8])
    return msg("manifest.describe", year=number[:4], province=province, city=city, serial=number[8:]).text
