"""The kiosk page knows no domain fact of its own: device states, their levels and words, clock
sources, line statuses and category colours come from ``edge.catalogue`` (GET /api/catalogue).
Checked on the page's source; tests/browser checks what it shows."""

from __future__ import annotations

import re

from edge import catalogue
from edge.kiosk.server import STATIC_DIR

JS = (STATIC_DIR / "kiosk.js").read_text("utf-8")
CSS = (STATIC_DIR / "kiosk.css").read_text("utf-8")
HTML = (STATIC_DIR / "index.html").read_text("utf-8")
STRINGS = set(re.findall(r'"((?:[^"\\\n]|\\.)*)"', JS))  # every double-quoted literal of the script

# The tables the page once had, and the words of states only it knew (Python never sends them).
OLD_TABLES = ("LEVELS", "STATE_WORDS", "CLOCK_OK", "LINE_STATUS", "PALETTE")
PAGE_ONLY_WORDS = ("就绪", "打印中", "未启用", "缺纸", "卡纸", "no paper", "jammed")
LEVELS = {s.level for s in catalogue.DEVICE_STATES} | set(catalogue.LINE_STATUSES.values())


def test_the_page_has_no_state_table_of_its_own() -> None:
    for name in OLD_TABLES:
        assert not re.search(rf"\b{name}\b", JS), f"kiosk.js defines {name}: take it from the catalogue"
    assert "api/catalogue" in JS


def test_no_device_state_is_spelt_in_the_page() -> None:
    """A state's word and level appear only in the catalogue, and so does a category's colour."""
    words = {s.zh for s in catalogue.DEVICE_STATES}
    assert not words & STRINGS, f"device-state words spelt in kiosk.js: {words & STRINGS}"
    for word in PAGE_ONLY_WORDS:
        assert word not in JS, word
    mapped = re.findall(rf'[{{,]\s*([\w"-]+)\s*:\s*"({"|".join(LEVELS)})"', JS)  # {{ key: "level", … }}
    assert not mapped, f"kiosk.js maps these to a level itself: {mapped}"
    for c in catalogue.CATEGORIES:
        assert c.color.lower() not in JS.lower(), f"{c.id}'s colour is spelt in kiosk.js"


def test_every_level_the_catalogue_uses_is_styled() -> None:
    for level in LEVELS:
        assert f'.pill[data-level="{level}"]' in CSS, f"no style for level {level!r}"


def test_the_status_bar_has_a_pill_and_a_name_for_every_device() -> None:
    pills = re.findall(r'data-device="(\w+)"', HTML)
    assert sorted(pills) == sorted(catalogue.DEVICES)
    for device in catalogue.DEVICES:
        assert len(re.findall(rf"\b{device}: \"", JS)) == 2, f"{device} needs a zh and an en name in I18N"


def test_reasons_and_label_notes_come_from_the_cart() -> None:
    """The void reasons and label notes are the cart's (an action's ``reasons``, ``note:<id>`` buttons):
    the page spells none of their words; the one reason it knows by id (words required) is a real one."""
    words = {r.zh for r in catalogue.VOID_REASONS} | {n.zh for n in catalogue.LABEL_NOTES}
    assert not words & STRINGS, f"spelt in kiosk.js: {words & STRINGS}"
    assert "DEFAULT_REASONS" not in JS
    needs_words = re.findall(r'REASON_NEEDS_WORDS = "(\w+)"', JS)
    assert needs_words and needs_words[0] in catalogue.VOID_REASON
