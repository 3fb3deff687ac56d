"""The page draws device states, clock sources, line statuses and category colours from the cart's
catalogue (``edge/catalogue.py`` at GET /api/catalogue), and still works when it cannot load it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from edge import catalogue
from edge.kiosk.server import KioskServer
from edge.kiosk.settings import KioskSettings
from tests.browser.conftest import KioskPage
from tests.browser.expect import expect
from tests.browser.screens import DEVICE_OK, OFFLINE, STOP, STORAGE, ScriptedSource

DEVICE_NAMES = {"scale": ("秤", "Scale"), "camera": ("相机", "Camera"), "printer": ("打印机", "Printer"),
                "actuator": ("称台", "Platform")}
CATALOGUE_MISSING = r"Failed to load resource"  # Chromium logs a failed fetch as a console error


def cat_color(kp: KioskPage, selector: str) -> str:
    value: str = kp.page.locator(selector).first.evaluate("el => el.style.getPropertyValue('--cat')")
    return value


def test_every_device_state_shows_its_catalogue_word_and_level(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    for device, states in catalogue.DEVICES.items():
        pill = page.by(f"dev-{device}")
        for state_id in states:
            state = catalogue.DEVICE_STATE[state_id]
            kiosk_source.update(device={**DEVICE_OK, device: state_id})
            expect(pill).to_have_attribute("data-state", state_id)
            expect(pill).to_have_text(f"{DEVICE_NAMES[device][0]} {state.zh}")
            expect(pill).to_have_attribute("data-level", state.level)
    page.by("lang-toggle").tap()
    for device, states in catalogue.DEVICES.items():
        state = catalogue.DEVICE_STATE[states[-1]]
        kiosk_source.update(device={**DEVICE_OK, device: state.id})
        expect(page.by(f"dev-{device}")).to_have_text(f"{DEVICE_NAMES[device][1]} {state.en}")


def test_clock_sources_and_line_statuses_take_the_catalogues_levels(page: KioskPage,
                                                                     kiosk_source: ScriptedSource) -> None:
    clock = page.by("clock")
    for source in catalogue.CLOCK_SOURCES:
        kiosk_source.update(device={**DEVICE_OK, "clock": source})
        expect(clock).to_have_attribute("data-source", source)
        if source in catalogue.CLOCK_SYNCED:
            expect(clock).to_have_attribute("data-level", "ok")
            expect(clock.locator(".sync")).to_have_text("")
        else:
            expect(clock).to_have_attribute("data-level", "warn")
            expect(clock.locator(".sync")).to_have_text("⚠ 未同步")
    kiosk_source.show(STORAGE)
    page.wait_step("storage")
    for ln in STORAGE["lines"]:
        pill = page.page.locator(f'[data-testid="line"][data-package="{ln["package_code"]}"] .pill')
        expect(pill).to_have_attribute("data-level", catalogue.LINE_STATUSES[ln["status"]])


def test_a_category_colour_comes_from_the_catalogue(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    """The STOP screen offers no categories (so no colours of its own): its lines take the catalogue's."""
    kiosk_source.show(STOP)
    page.wait_step("stop")
    for category in ("INFECTIOUS", "SHARPS"):
        color = catalogue.CATEGORY[category].color
        expect(page.page.locator(f'[data-testid="total"][data-category="{category}"]')).to_have_attribute(
            "style", f"--cat: {color};")
        assert cat_color(page, f'[data-testid="line"] td[data-category="{category}"] .swatch') == color


def test_a_state_the_catalogue_does_not_know_is_shown_as_sent(page: KioskPage,
                                                              kiosk_source: ScriptedSource) -> None:
    """The page knows no state of its own (paper_out was one): the agent and the page disagreeing shows."""
    page.wait_step("idle")
    expect(page.by("dev-printer")).to_have_text("打印机 正常")  # the catalogue is in
    kiosk_source.update(device={**DEVICE_OK, "printer": "paper_out"})
    expect(page.by("dev-printer")).to_have_text("打印机 paper_out")
    expect(page.by("dev-printer")).to_have_attribute("data-level", "warn")


def refuse(kind: str) -> Callable[[Any], None]:
    def handle(route: Any) -> None:
        if kind == "500":
            route.fulfill(status=500, content_type="application/json", body='{"error": "internal error"}')
        elif kind == "not json":
            route.fulfill(status=200, content_type="application/json", body="<html>")
        elif kind == "not a catalogue":
            route.fulfill(status=200, content_type="application/json", body="[1, 2]")
        else:
            route.abort()
    return handle


@pytest.mark.parametrize("kind", ["500", "not json", "not a catalogue", "no answer"])
def test_without_the_catalogue_the_page_still_renders(open_kiosk: Callable[..., KioskPage], kiosk: KioskServer,
                                                      kiosk_source: ScriptedSource, kind: str) -> None:
    """States as sent, in the neutral level; no clock warning it cannot know; the screen works."""
    kiosk_source.show(OFFLINE)
    kp = open_kiosk("about:blank")
    kp.allow_console(CATALOGUE_MISSING)
    kp.page.route("**/api/catalogue", refuse(kind))
    kp.page.goto(kiosk.url)
    kp.wait_step("round")
    expect(kp.by("prompt")).to_have_text(OFFLINE["prompt"]["zh"])
    expect(kp.by("dev-camera")).to_have_text("相机 stalled")
    expect(kp.by("dev-camera")).to_have_attribute("data-level", "off")
    expect(kp.by("dev-scale")).to_have_text("秤 connected")
    expect(kp.by("clock")).to_have_attribute("data-level", "off")
    expect(kp.by("clock").locator(".sync")).to_have_text("")
    expect(kp.by("online")).to_have_text("○ 离线")
    kiosk_source.show(STORAGE)
    kp.wait_step("storage")
    expect(kp.page.locator('[data-testid="line"][data-status="deviation"] .pill')).to_have_attribute(
        "data-level", "off")
    expect(kp.page.locator('[data-testid="line"][data-status="deviation"]')).to_contain_text("⚠ 偏差")
    kp.page.locator('[data-testid="line"][data-status="deviation"]').scroll_into_view_if_needed()
    assert cat_color(kp, '[data-testid="line"] td[data-category="SHARPS"] .swatch') == "#888888"
    kp.by("lang-toggle").tap()
    expect(kp.by("dev-camera")).to_have_text("Camera ok")
    kp.shot(f"no-catalogue-{kind.replace(' ', '-')}")


def test_the_catalogue_is_loaded_again_after_a_reconnect(open_kiosk: Callable[..., KioskPage], kiosk: KioskServer,
                                                         kiosk_source: ScriptedSource) -> None:
    kp = open_kiosk("about:blank")
    kp.allow_console(rf"{CATALOGUE_MISSING}|net::ERR_CONNECTION_REFUSED|api/events")
    kp.page.route("**/api/catalogue", refuse("500"))
    kp.page.goto(kiosk.url)
    kp.wait_step("idle")
    expect(kp.by("dev-scale")).to_have_text("秤 connected")
    kp.page.unroute("**/api/catalogue")
    port = kiosk.port
    kiosk.stop()
    kp.wait_link("down")
    with KioskServer(kiosk_source, KioskSettings(port=port)):
        kp.wait_link("up", timeout_ms=15000)
        expect(kp.by("dev-scale")).to_have_text("秤 正常")
        expect(kp.by("dev-scale")).to_have_attribute("data-level", "ok")
