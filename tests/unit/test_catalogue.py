"""One fact, one place: the JSON Schema's enums and patterns agree with the domain catalogue, and the
catalogue is consistent with itself (each device's states known, letters and codes unique)."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from edge import catalogue, codes
from edge.messages import category_name


def schema() -> dict[str, Any]:
    text = resources.files("edge").joinpath("schemas/record.schema.json").read_text("utf-8")
    return dict(json.loads(text))


def test_schema_categories_are_the_catalogues() -> None:
    assert schema()["$defs"]["category"]["enum"] == [c.id for c in catalogue.CATEGORIES]


def test_schema_clock_sources_are_the_catalogues() -> None:
    source = schema()["properties"]["clock"]["properties"]["source"]["enum"]
    assert source == list(catalogue.CLOCK_SOURCES)
    assert set(catalogue.CLOCK_SYNCED) < set(catalogue.CLOCK_SOURCES) and "unsynced" not in catalogue.CLOCK_SYNCED


def test_waste_codes_fit_the_schema_and_are_unique() -> None:
    pattern = re.compile(schema()["$defs"]["waste_code"]["pattern"])
    hw = [c.waste_code for c in catalogue.CATEGORIES]
    assert all(pattern.match(code) for code in hw) and len(set(hw)) == len(hw)
    assert sorted(hw) == [f"841-00{n}-01" for n in range(1, 6)]  # the five HW01 codes of the 2021 list


def test_label_letters_are_unique_and_codes_read_them() -> None:
    letters = [c.letter for c in catalogue.CATEGORIES]
    assert len(set(letters)) == len(letters)
    for c in catalogue.CATEGORIES:
        code = codes.Code("B", "H1", "P1", c.letter)
        assert code.category == c.id


def test_every_device_state_is_described() -> None:
    described = set(catalogue.DEVICE_STATE)
    for device, states in catalogue.DEVICES.items():
        assert set(states) <= described, device
        assert "none" in states, f"{device}: 'none' (not fitted) must be a state"
    used = {s for states in catalogue.DEVICES.values() for s in states}
    assert described == used, f"states no device reports: {described - used}"
    assert all(s.level in ("ok", "busy", "off", "warn", "bad") for s in catalogue.DEVICE_STATES)


def test_names_come_from_the_catalogue() -> None:
    for c in catalogue.CATEGORIES:
        name = category_name(c.id)
        assert (name.zh, name.en) == (c.zh, c.en)
    served = catalogue.as_json()
    json.dumps(served, allow_nan=False)
    assert [c["id"] for c in served["categories"]] == [c.id for c in catalogue.CATEGORIES]
