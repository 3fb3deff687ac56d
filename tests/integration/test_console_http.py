"""The operator console over HTTP (httpx) against a real gateway: real mosquitto, real SQLite, a
cart that signs its status, uvicorn on a free port.

Who gets in and what they may do: nothing without a login but /healthz (and /metrics, behind its
own token when one is set); wrong passwords are refused and then locked out; every POST needs the
session's CSRF token; a viewer cannot act; a disabled user's session ends.  The live fleet stream
shows a cart's will as offline.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from gateway.app import GatewayApp
from gateway.console.settings import ConsoleConfig
from gateway.errors import GatewayError
from sim_devices.platform import SimPlatform
from tests.browser.console_fixtures import ConsoleRig, csrf_of, login
from tests.integration.test_gateway import SITE, WAIT_S, gateway_config
from wastecart.broker import PrivateBroker


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


@pytest.fixture
def client(rig: ConsoleRig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rig.url, timeout=WAIT_S) as c:
        yield c


def raise_forged_alert(rig: ConsoleRig) -> int:
    """A status signed by the wrong key: quarantined, FORGED alert; its id."""
    body = {"state": "online", "boot_id": wire.uuid7(), "seq_head": 0}
    payload = wire.sign_message(wire.STATUS_KIND, SITE, rig.cart.cart, body, Ed25519PrivateKey.generate())
    rig.pub.client.publish(wire.topic(SITE, rig.cart.cart, wire.STATUS), payload, qos=1).wait_for_publish(WAIT_S)
    rig.wait(alerts=1)
    return int(rig.app.store.alerts(10)[0]["id"])


def test_nothing_but_health_answers_without_a_login(client: httpx.Client) -> None:
    assert client.get("/healthz").status_code == 200
    page = client.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F"
    assert client.get("/alerts").status_code == 303
    assert client.get("/api/fleet").status_code == 401
    assert client.get("/api/fleet/events").status_code == 401
    assert client.post("/alerts/1/ack", data={"csrf": "x"}).status_code == 401
    shown = client.get("/login")
    assert shown.status_code == 200 and "登录" in shown.text  # zh-CN by default
    assert "default-src 'self'" in shown.headers["content-security-policy"]
    assert "Log in" in client.get("/login?lang=en").text and client.cookies.get("lang") == "en"


def test_a_login_opens_the_fleet_and_a_wrong_password_does_not(rig: ConsoleRig, client: httpx.Client) -> None:
    rig.status(scale="ok", printer="paper_out")
    rig.wait(device_updates=1)
    for name, password in (("ops", "wrong-password"), ("nobody", "operator-pass-1")):
        refused = login(client, name, password)
        assert refused.status_code == 401 and "login-error" in refused.text
    assert client.get("/api/fleet").status_code == 401
    ok = login(client, "ops")
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    fleet = client.get("/api/fleet").json()
    row = next(c for c in fleet["carts"] if c["cart"] == rig.cart.cart)
    assert (row["site"], row["state"], row["scale"], row["printer"]) == (SITE, "online", "ok", "paper_out")
    page = client.get("/")
    assert page.status_code == 200 and rig.cart.cart in page.text


def test_wrong_passwords_lock_the_name_and_then_the_address(client: httpx.Client) -> None:
    for _ in range(3):  # TEST_LIMITS: a name is locked after 3
        assert login(client, "ops", "not-the-password").status_code == 401
    locked = login(client, "ops")  # the right password, too late
    assert locked.status_code == 429 and "锁定" in locked.text
    assert client.get("/api/fleet").status_code == 401
    assert login(client, "view").status_code == 303  # another name from the same address still may
    client.cookies.clear()
    for name in ("a1", "a2"):  # TEST_LIMITS: the address is locked after 5 (these 2 + the 3 above)
        assert login(client, name, "guess-guess").status_code == 401
    assert login(client, "view").status_code == 429


def test_every_post_needs_the_csrf_token_and_a_viewer_cannot_act(rig: ConsoleRig, client: httpx.Client) -> None:
    alert = raise_forged_alert(rig)
    assert client.post("/login", data={"user": "ops", "password": "operator-pass-1"}).status_code == 403
    assert login(client, "view").status_code == 303
    token = csrf_of(client.get("/alerts").text)
    assert f'data-testid="ack-{alert}"' not in client.get("/alerts").text  # no button for a viewer
    assert client.post(f"/alerts/{alert}/ack", data={"csrf": token}).status_code == 403
    client.post("/logout", data={"csrf": token})
    assert client.get("/api/fleet").status_code == 401
    assert login(client, "ops").status_code == 303
    token = csrf_of(client.get("/alerts").text)
    assert client.post(f"/alerts/{alert}/ack", data={}).status_code == 403
    assert client.post(f"/alerts/{alert}/ack", data={"csrf": "forged"}).status_code == 403
    assert rig.app.store.alerts(10)[0]["acknowledged_at"] is None
    done = client.post(f"/alerts/{alert}/ack", data={"note": "looked at it"}, headers={"X-CSRF-Token": token})
    assert done.status_code == 303
    acked = rig.app.store.alerts(10)[0]
    assert acked["acknowledged_at"] is not None and acked.get("acknowledged_by", "ops") == "ops"


def test_disabling_a_user_ends_its_session(rig: ConsoleRig, client: httpx.Client) -> None:
    assert login(client, "ops").status_code == 303
    assert client.get("/api/fleet").status_code == 200
    users = rig.users()
    try:
        assert users.set_disabled("ops", True, time.time())
    finally:
        users.close()
    assert client.get("/api/fleet").status_code == 401
    assert login(client, "ops").status_code == 401  # and no new one


def test_the_fleet_stream_shows_the_carts_will(rig: ConsoleRig, client: httpx.Client) -> None:
    boot = rig.status()
    rig.wait(device_updates=1)
    assert login(client, "view").status_code == 303
    states: list[str] = []
    with client.stream("GET", "/api/fleet/events") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        for line in events.iter_lines():
            if not line.startswith("data: "):
                continue
            carts = {c["cart"]: c for c in json.loads(line[6:])["carts"]}
            if rig.cart.cart not in carts:  # a fleet read before the birth's commit: the next one has it
                continue
            states.append(carts[rig.cart.cart]["state"])
            if states == ["online"]:
                rig.status("offline", boot)  # the broker publishes this when the cart's process dies
            if states[-1] == "offline":
                break
    assert states[0] == "online" and states[-1] == "offline"


def test_metrics_take_their_own_token(tmp_path: Path, broker: PrivateBroker, platform: SimPlatform) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text("s3cret-metrics-token-0123\n")
    rig = ConsoleRig(tmp_path, broker, platform, metrics_token_file=token_file)
    try:
        with httpx.Client(base_url=rig.url, timeout=WAIT_S) as c:
            assert c.get("/metrics").status_code == 401
            assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
            ok = c.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token-0123"})
            assert ok.status_code == 200 and "# TYPE" in ok.text
            assert c.get("/healthz").status_code == 200
    finally:
        rig.close()


def test_a_taken_port_stops_the_start_with_one_line(tmp_path: Path, broker: PrivateBroker,
                                                    platform: SimPlatform) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = GatewayApp(gateway_config(tmp_path, broker, platform, console=ConsoleConfig(port=port)))
        with pytest.raises(GatewayError, match=f"console: cannot listen on 127.0.0.1:{port}"):
            app.start()
    assert app.stats() != {} and app.console_url is None  # stopped cleanly: the final counts are kept


def test_live_streams_are_bounded(tmp_path: Path, broker: PrivateBroker, platform: SimPlatform) -> None:
    rig = ConsoleRig(tmp_path, broker, platform, sse_clients=1)
    try:
        with httpx.Client(base_url=rig.url, timeout=WAIT_S) as c:
            assert login(c, "view").status_code == 303
            with c.stream("GET", "/api/fleet/events") as first:
                assert first.status_code == 200
                lines = first.iter_lines()  # kept: a dropped iterator closes the stream
                assert next(lines) == "event: fleet"  # open and registered
                assert c.get("/api/fleet/events").status_code == 503
                assert c.get("/healthz").json()["fleet_streams"] == 1
    finally:
        rig.close()


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run([sys.executable, "-m", "wastecart.cli", *args], input=stdin, capture_output=True, text=True,
                          cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, timeout=60, check=False)


def test_user_commands(tmp_path: Path) -> None:
    data = str(tmp_path / "gw")
    added = _cli("gateway", "user", "add", "alice", "--role", "operator", "--data", data, stdin="long-enough-1\n")
    assert added.returncode == 0, added.stderr
    short = _cli("gateway", "user", "add", "bob", "--role", "viewer", "--data", data, stdin="short\n")
    assert short.returncode == 2 and short.stderr.count("\n") == 1 and "at least 8" in short.stderr
    again = _cli("gateway", "user", "add", "alice", "--role", "viewer", "--data", data, stdin="long-enough-2\n")
    assert again.returncode == 2 and "exists already" in again.stderr
    assert _cli("gateway", "user", "passwd", "alice", "--data", data, stdin="long-enough-3\n").returncode == 0
    assert _cli("gateway", "user", "disable", "alice", "--data", data).returncode == 0
    assert _cli("gateway", "user", "disable", "nobody", "--data", data).returncode == 2
    listed = _cli("gateway", "user", "list", "--data", data).stdout.splitlines()
    assert listed[1].split()[:3] == ["alice", "operator", "disabled"] and len(listed) == 2


def test_a_carts_page_shows_its_state_history_chain_records_and_alerts(rig: ConsoleRig,
                                                                       client: httpx.Client) -> None:
    boot = rig.status(printer="ok")
    rig.telemetry(boot, backlog=3, disk_free_mb=900)
    r1, r3 = rig.cart.record(1), rig.cart.record(3)  # seq 2 lost on the way: a gap, seq 3 pending
    rig.pub.publish(rig.cart.cart, r1)
    rig.pub.publish(rig.cart.cart, r3)
    rig.wait(device_updates=2, stored=2)
    assert client.get(f"/api/carts/{rig.cart.cart}/series").status_code == 401  # no login, no data
    assert login(client, "view").status_code == 303
    page = client.get(f"/carts/{rig.cart.cart}")
    assert page.status_code == 200 and rig.cart.cart in page.text and "在线" in page.text
    assert '<script src="/static/vendor/uPlot.iife.min.js" defer></script>' in page.text
    assert 'data-testid="chain-upto">1<' in page.text and 'data-testid="chain-missing" class="fault">1 (' in page.text
    assert 'data-testid="chain-pending" class="fault">1<' in page.text
    assert 'data-testid="record-3"' in page.text and "1.203" in page.text  # seq 3's one bag: 1,203 g
    assert 'data-testid="summary-backlog">最低 3' in page.text  # the text beside the chart
    series = client.get(f"/api/carts/{rig.cart.cart}/series", params={"range": "7d"}).json()
    assert series["range"] == "7d" and series["until"] - series["since"] == pytest.approx(7 * 86400)
    assert series["series"]["backlog"] == [3] and series["series"]["disk_free_mb"] == [900]
    assert series["series"]["online"] == [100] and len(series["at"]) == 1
    assert client.get(f"/api/carts/{rig.cart.cart}/series", params={"range": "1y"}).json()["range"] == "24h"
    assert client.get("/api/carts/NO-SUCH-CART/series").status_code == 404
    assert client.get("/carts/NO-SUCH-CART").status_code == 404
    fleet = {c["cart"]: c for c in client.get("/api/fleet").json()["carts"]}
    assert (fleet[rig.cart.cart]["handovers_today"], fleet[rig.cart.cart]["kg_today"]) == (2, 2.404)
