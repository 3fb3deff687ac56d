"""The operator console as the demo serves it, in Chromium: the printed demo login works and the
fleet page shows the demo's carts (the scripted one and `--carts 2` simulated ones), online."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.browser.conftest import KioskPage, console_login
from tests.demo_proc import running_demo

SEEN_MS = 20_000  # ms: every cart's birth reaches the page (live, no reload)


def test_log_in_to_the_demos_console_and_see_its_carts(open_kiosk: Callable[..., KioskPage], tmp_path: Path) -> None:
    with running_demo(tmp_path / "demo", "--carts", "2") as dash:
        kp = console_login(open_kiosk, dash.url, dash.user, dash.password)
        for cart in ("CART-01", "FLEET-001", "FLEET-002"):
            kp.page.wait_for_selector(f'tr[data-testid="cart-{cart}"][data-state="online"]', timeout=SEEN_MS)
        kp.shot("demo-fleet")
