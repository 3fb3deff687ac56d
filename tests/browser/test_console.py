"""The operator console in Debian's Chromium (Playwright), against a real gateway: log in, see the
cart that published its signed status, see it turn offline live when its will arrives, switch to
English, and acknowledge an alert — which a viewer cannot.  A screenshot of each screen is kept in
``tests/browser/artifacts/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from gateway.alerts.settings import AlertsConfig, WebhookConfig
from sim_devices.platform import SimPlatform
from tests.browser.conftest import KioskPage, console_login
from tests.browser.console_fixtures import PASSWORDS, CartProcess, ConsoleRig, seed_history
from tests.integration.test_gateway import SITE, WAIT_S
from tests.integration.test_gateway_webhook import Receiver
from wastecart.broker import PrivateBroker

LIVE_MS = 5000  # ms: the will must show within seconds (the watcher looks every second)


@pytest.fixture
def platform() -> Iterator[SimPlatform]:
    with SimPlatform(seed=14) as p:
        yield p


@pytest.fixture
def rig(tmp_path: Path, broker: PrivateBroker, platform: SimPlatform) -> Iterator[ConsoleRig]:
    r = ConsoleRig(tmp_path, broker, platform)
    try:
        yield r
    finally:
        r.close()


def log_in(open_kiosk: Callable[..., KioskPage], rig: ConsoleRig, name: str, shot: str | None = None) -> KioskPage:
    """A fresh browser context on the console: the login page, filled in and sent."""
    return console_login(open_kiosk, rig.url, name, PASSWORDS[name], shot=shot)


def row(kp: KioskPage, rig: ConsoleRig) -> Any:
    return kp.page.locator(f'tr[data-testid="cart-{rig.cart.cart}"]')


def test_log_in_see_the_cart_and_its_will_turn_it_red_live(open_kiosk: Callable[..., KioskPage],
                                                           rig: ConsoleRig) -> None:
    boot = rig.status(scale="ok", camera="ok", printer="paper_out", actuator="retracted", clock="ntp")
    rig.telemetry(boot, backlog=7, oldest_unsent_s=600, disk_free_mb=1500, clock="ntp", clock_offset_ms=12,
                  scale="ok", camera="ok", printer="paper_out", actuator="retracted")
    rig.wait(device_updates=2)
    kp = log_in(open_kiosk, rig, "view", shot="login")
    kp.page.wait_for_selector('body[data-live="up"]')
    cart = row(kp, rig)
    assert cart.get_attribute("data-state") == "online"
    kp.page.wait_for_selector(f'tr[data-testid="cart-{rig.cart.cart}"] td[data-col="backlog"]:text-is("7")')
    assert cart.locator('td[data-col="state"]').inner_text() == "在线"
    assert cart.locator('td[data-col="printer"]').get_attribute("class") == "fault"
    assert "12 ms" in cart.locator('td[data-col="clock"]').inner_text()
    kp.shot("fleet-online")
    kp.page.evaluate("window.__same_page = 1")  # a reload would lose it
    rig.status("offline", boot)  # what the broker publishes when the cart's process dies
    kp.page.wait_for_selector(f'tr[data-testid="cart-{rig.cart.cart}"][data-state="offline"]', timeout=LIVE_MS)
    assert kp.page.evaluate("window.__same_page") == 1
    assert cart.locator('td[data-col="state"]').inner_text() == "离线"
    assert "253" in cart.evaluate("el => getComputedStyle(el).backgroundColor")  # #fde2e2: the row is red
    kp.shot("fleet-offline")
    kp.by("filter-state").select_option("online")  # filtered away, then back
    assert row(kp, rig).count() == 0
    kp.by("filter-state").select_option("offline")
    assert row(kp, rig).count() == 1
    row(kp, rig).locator("a").click()  # the cart's own page: state, last day's history, alerts
    kp.page.wait_for_selector('body[data-page="cart"]')
    assert kp.by("cart-state-value").inner_text() == "离线"
    kp.page.wait_for_selector('body[data-charts="6"]')  # uPlot drew every series (a canvas each)
    assert kp.page.locator('[data-testid="chart-backlog"] canvas').count() == 1
    assert "7" in kp.by("summary-backlog").inner_text()  # the text beside the chart: low / high / last
    kp.shot("cart-detail")


def test_english_switch_and_sorting(open_kiosk: Callable[..., KioskPage], rig: ConsoleRig) -> None:
    rig.status()
    rig.wait(device_updates=1)
    kp = log_in(open_kiosk, rig, "ops")
    kp.by("lang-en").click()
    kp.page.wait_for_selector('h1:text-is("Fleet")')
    kp.page.wait_for_selector(f'tr[data-testid="cart-{rig.cart.cart}"] td[data-col="state"]:text-is("online")')
    kp.by("sort-cart").click()
    kp.by("sort-cart").click()
    assert row(kp, rig).count() == 1
    kp.shot("fleet-en")
    kp.page.reload()  # the choice is kept in a cookie
    kp.page.wait_for_selector('h1:text-is("Fleet")')


def test_a_viewer_cannot_acknowledge_and_an_operator_can(open_kiosk: Callable[..., KioskPage],
                                                         rig: ConsoleRig) -> None:
    forged = wire.sign_message(wire.STATUS_KIND, SITE, rig.cart.cart,
                               {"state": "online", "boot_id": wire.uuid7(), "seq_head": 0},
                               Ed25519PrivateKey.generate())
    rig.pub.client.publish(wire.topic(SITE, rig.cart.cart, wire.STATUS), forged, qos=1).wait_for_publish(WAIT_S)
    rig.wait(alerts=1)
    alert = int(rig.app.store.alerts(1)[0]["id"])

    viewer = log_in(open_kiosk, rig, "view")
    viewer.by("nav-alerts").click()
    viewer.page.wait_for_selector(f'[data-testid="alert-{alert}"]')
    assert viewer.by(f"ack-{alert}").count() == 0  # no button for a viewer
    viewer.allow_console("403")
    status = viewer.page.evaluate(
        """async (id) => {
            const csrf = document.querySelector('input[name="csrf"]').value;
            const r = await fetch(`/alerts/${id}/ack`, {method: "POST", headers: {"X-CSRF-Token": csrf}});
            return r.status;
        }""", alert)
    assert status == 403
    assert rig.app.store.alerts(1)[0]["acknowledged_at"] is None
    viewer.shot("alerts-viewer")

    operator = log_in(open_kiosk, rig, "ops")
    operator.by("nav-alerts").click()
    operator.by(f"note-{alert}").fill("checked the cart's key")
    operator.by(f"ack-{alert}").click()
    operator.page.wait_for_selector(f'[data-testid="alert-{alert}"].acked')
    assert operator.by(f"ack-{alert}").count() == 0
    assert rig.app.store.alerts(1)[0]["acknowledged_at"] is not None
    operator.shot("alerts-acknowledged")
    operator.by("logout").click()
    operator.page.wait_for_selector('body[data-page="login"]')


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.close()


def test_a_killed_cart_process_goes_offline_alerts_is_acknowledged_and_resolves_when_restarted(
        open_kiosk: Callable[..., KioskPage], tmp_path: Path, broker: PrivateBroker, platform: SimPlatform,
        receiver: Receiver) -> None:
    """The issue's operator story, end to end: a real cart process online on the fleet page, SIGKILL
    (the broker's will) turns it red live and opens OFFLINE (page and webhook), an operator
    acknowledges it with a note, the restarted process resolves it by itself."""
    fleet_dir = tmp_path / "fleet"
    fleet_dir.mkdir()
    (fleet_dir / "keys").mkdir()
    rig = ConsoleRig(tmp_path, broker, platform, gateway={
        "cart_keys_dir": fleet_dir / "keys",
        "alerts": AlertsConfig(offline_min=0.001),  # 60 ms: the rules pass (every 2 s) decides, not minutes
        "webhook": WebhookConfig(url=receiver.url, backoff_base_s=0.05, backoff_max_s=0.2)})
    cart = CartProcess(fleet_dir, broker.url, rig.app.public_key, SITE)
    try:
        cart.start()
        assert rig.app.wait_until(lambda s: s["accepted"] >= 2, WAIT_S), rig.app.stats()  # handovers flow
        assert seed_history(rig.data, cart.CART) > 100  # a day behind it, for the charts
        kp = log_in(open_kiosk, rig, "ops")
        kp.by("lang-en").click()
        line = f'tr[data-testid="cart-{cart.CART}"]'
        kp.page.wait_for_selector(f'{line}[data-state="online"]')
        kp.page.wait_for_selector(f'{line} td[data-col="handovers_today"]:not(:text-is("0"))')
        assert float(kp.page.locator(f'{line} td[data-col="kg_today"]').inner_text()) > 0  # 3 bags of ~1.2 kg each
        kp.shot("fleet-real-cart-online")

        kp.page.locator(f'{line} a').click()  # its page: charts over the seeded day, the chain, the records
        kp.page.wait_for_selector('body[data-charts="6"]')
        assert kp.page.locator('[data-testid="chart-disk_free_mb"] canvas').count() == 1
        assert int(kp.by("chain-upto").inner_text()) >= 2
        assert kp.page.locator('[data-testid^="record-"] td[data-col="kg"]').first.inner_text() != "-"
        kp.shot("cart-detail-24h")
        kp.by("range-7d").click()  # the range switch: new data, no reload
        kp.page.wait_for_selector('body[data-range="7d"]')
        assert kp.by("range-7d").get_attribute("aria-current") == "true"
        kp.shot("cart-detail-7d")
        kp.page.go_back()
        kp.page.wait_for_selector(f'{line}[data-state="online"]')

        kp.page.evaluate("window.__same_page = 1")
        cart.kill()
        kp.page.wait_for_selector(f'{line}[data-state="offline"]', timeout=LIVE_MS)  # live, no reload
        assert kp.page.evaluate("window.__same_page") == 1
        kp.shot("fleet-real-cart-killed")
        opened = receiver.next()
        assert (opened["event"], opened["alert"]["kind"], opened["alert"]["cart"]) == ("opened", "OFFLINE", cart.CART)
        alert = int(opened["alert"]["id"])

        kp.by("nav-alerts").click()
        kp.page.wait_for_selector(f'[data-testid="alert-{alert}"][data-kind="OFFLINE"][data-state="active"]')
        kp.by(f"note-{alert}").fill("ward 3 called: the cart's battery")
        kp.by(f"ack-{alert}").click()
        kp.page.wait_for_selector(f'[data-testid="alert-{alert}"].acked')
        assert "ward 3 called" in kp.by(f"alert-{alert}").inner_text()
        kp.shot("alerts-offline-acknowledged")
        acked = receiver.next()
        assert (acked["event"], acked["alert"]["acknowledged_by"]) == ("acknowledged", "ops")

        cart.start()  # the same cart, freshly booted: online again, the condition clears
        resolved = receiver.next()
        assert (resolved["event"], resolved["alert"]["id"]) == ("resolved", alert)
        kp.page.reload()
        kp.page.wait_for_selector(f'[data-testid="alert-{alert}"][data-state="resolved"]')
        assert "resolved" in kp.by(f"alert-{alert}").inner_text()
        kp.shot("alerts-offline-resolved")
    finally:
        cart.kill()
        rig.close()
