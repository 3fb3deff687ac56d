"""`wastecart demo --carts N` as a newcomer meets it: the operator console it prints answers, the
demo login it prints works, and the fleet shows the scripted cart and the N simulated ones."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx

from edge.version import software_version
from tests.demo_proc import running_demo

FLEET_S = 20.0  # s: every simulated cart's birth message reaches the console's fleet
EXPECTED = {"CART-01": True, "FLEET-001": True, "FLEET-002": True}


def test_demo_prints_a_console_whose_login_and_fleet_work(tmp_path: Path) -> None:
    with running_demo(tmp_path / "demo", "--carts", "2") as dash, \
            httpx.Client(base_url=dash.url, timeout=10) as client:
        assert client.get("/api/fleet").status_code == 401  # nothing without a login
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert csrf
        answer = client.post("/login", data={"csrf": csrf[1], "next": "/", "user": dash.user,
                                             "password": dash.password})
        assert answer.status_code in (200, 303), answer.text
        carts: dict[str, bool] = {}
        rows: list[dict[str, Any]] = []
        deadline = time.monotonic() + FLEET_S
        while time.monotonic() < deadline and carts != EXPECTED:
            fleet = client.get("/api/fleet").json()
            rows = fleet["carts"] if isinstance(fleet, dict) else fleet
            carts = {r["cart"]: r["state"] == "online" for r in rows}
            time.sleep(0.2)  # the births arrive over the broker; the console gives no signal to wait on
        assert carts == EXPECTED
        assert {r["version"] for r in rows} == {software_version()}  # each cart says what it runs
