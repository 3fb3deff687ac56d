"""`wastecart demo --carts N` as a newcomer meets it: the operator console it prints answers, the
demo login it prints works, and the fleet shows the scripted cart and the N simulated ones."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

STARTUP_S = 60.0  # s: the demo starts every part and scripts its round before it says it is still running
FLEET_S = 20.0  # s: every simulated cart's birth message reaches the console's fleet


def test_demo_prints_a_console_whose_login_and_fleet_work(tmp_path: Path) -> None:
    demo = subprocess.Popen([sys.executable, "-m", "wastecart.cli", "demo", "--rounds", "1", "--carts", "2",
                             "--port", "0", "--console-port", "0", "--data", str(tmp_path / "demo")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert demo.stdout is not None
        said = []
        deadline = time.monotonic() + STARTUP_S
        for line in demo.stdout:
            said.append(line)
            if "demo still running" in line or time.monotonic() > deadline:
                break
        found = re.search(r"^dashboard\s+(http://\S+/)\s.*log in as (\S+) / (\S+)", "".join(said), re.M)
        assert found, "".join(said)
        url, user, password = found.groups()
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/api/fleet").status_code == 401  # nothing without a login
            page = client.get("/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page)
            assert csrf
            answer = client.post("/login", data={"csrf": csrf[1], "next": "/", "user": user, "password": password})
            assert answer.status_code in (200, 303), answer.text
            carts: dict[str, bool] = {}
            deadline = time.monotonic() + FLEET_S
            while time.monotonic() < deadline:
                fleet = client.get("/api/fleet").json()
                rows = fleet["carts"] if isinstance(fleet, dict) else fleet
                carts = {r["cart"]: r["state"] == "online" for r in rows}
                if carts == {"CART-01": True, "FLEET-001": True, "FLEET-002": True}:
                    break
                time.sleep(0.2)  # the births arrive over the broker; the console gives no signal to wait on
            assert carts == {"CART-01": True, "FLEET-001": True, "FLEET-002": True}
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=30)
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
            for pipe in (demo.stdin, demo.stdout):
                if pipe is not None:
                    pipe.close()
