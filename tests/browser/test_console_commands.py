"""Remote commands in Chromium, on the running demo (its real cart, simulated printer and console):
an operator sends a reprint from the cart's page and sees the cart's answer "done" appear on the
page without a reload, and the simulated printer has printed that bag's label again.  A viewer sees
no forms, and a command posted from the viewer's page anyway is refused (403); nothing is printed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from edge import codes
from gateway.console.auth import Passwords
from gateway.store import DB_NAME
from gateway.store.users import SqliteUsers
from tests.browser.conftest import KioskPage, console_login
from tests.demo_proc import running_demo

CART = "CART-01"  # the demo's scripted cart
ANSWER_MS = 15_000  # ms: sent, signed, run on the cart, printed, answered, polled by the page
VIEWER, VIEWER_PASSWORD = "watcher", "viewer-pass-15"
# a 403 fetch is logged by Chromium as a failed resource load: expected on the viewer's page
REFUSED_LOAD = r"status of 403"


def log_in(open_kiosk: Callable[..., KioskPage], url: str, user: str, password: str) -> KioskPage:
    return console_login(open_kiosk, url, user, password)


def printed(jobs_url: str) -> list[dict[str, Any]]:
    return list(httpx.get(jobs_url, timeout=5.0).json())


def bag_of(job: dict[str, Any]) -> str:
    return codes.decode(job["qr"][0]).ident


def test_send_a_reprint_and_see_the_carts_answer(open_kiosk: Callable[..., KioskPage], tmp_path: Path) -> None:
    with running_demo(tmp_path / "demo") as dash:
        found = re.search(r"jobs (http://\S+/jobs)", dash.said)
        assert found, dash.said
        jobs_url = found.group(1)
        labels = [j for j in printed(jobs_url) if j["qr"]]
        assert labels, "the demo's round printed no label"
        bag = bag_of(labels[0])

        kp = log_in(open_kiosk, dash.url, dash.user, dash.password)
        kp.page.goto(f"{dash.url}carts/{CART}")
        kp.by("cmd-label").fill(bag)
        kp.by("cmd-send-reprint").click()
        kp.page.wait_for_selector('[data-testid="cmd-status"].ok')
        done = kp.page.locator('tr[data-outcome="done"]', has_text=bag)
        done.wait_for(timeout=ANSWER_MS)
        assert "补打标签" in done.inner_text() and dash.user in done.inner_text()
        kp.shot("reprint-done")
        jobs = printed(jobs_url)
        deadline = time.monotonic() + 5.0
        while len(jobs) < len(labels) + 1 and time.monotonic() < deadline:  # recorded as the printer renders it
            time.sleep(0.1)
            jobs = printed(jobs_url)
        assert len(jobs) == len(labels) + 1 and bag_of(jobs[-1]) == bag
        before = len(jobs)

        data = tmp_path / "demo" / "gateway" / DB_NAME
        users = SqliteUsers(data)
        try:
            assert users.add_user(VIEWER, "viewer", Passwords().hash(VIEWER_PASSWORD), time.time())
        finally:
            users.close()
        viewer = log_in(open_kiosk, dash.url, VIEWER, VIEWER_PASSWORD)
        viewer.allow_console(REFUSED_LOAD)
        viewer.page.goto(f"{dash.url}carts/{CART}")
        viewer.by("cmd-viewer").wait_for()
        assert viewer.by("cmd-form-reprint").count() == 0
        status = viewer.page.evaluate("""async ([cart, bag]) => (await fetch(`/carts/${cart}/commands/reprint`, {
            method: "POST", body: new URLSearchParams({label: bag}),
            headers: {"Accept": "application/json", "X-CSRF-Token": document.querySelector("input[name=csrf]").value},
        })).status""", [CART, bag])
        assert status == 403
        viewer.page.locator('tr[data-outcome="done"]', has_text=bag).wait_for()  # the viewer reads the list
        viewer.shot("viewer")
        assert len(printed(jobs_url)) == before
