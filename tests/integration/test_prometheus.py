"""The gateway's /metrics scraped by a real Prometheus (Debian's package), and deploy/prometheus/ and
deploy/grafana/ checked against it.

One gateway (real mosquitto, SimPlatform) serves ``make_metrics_app(app, token)`` with uvicorn on a
free port; a ``prometheus`` process scrapes it every second with the shipped ``prometheus.yml``
(target, intervals and the rule path rewritten, its bearer-token lines uncommented).  The test waits
on scrapes it sees arrive (a Condition), never on sleeps, then checks that Prometheus holds what
``app.stats()`` says, that the per-cart gauges are the cart's signed telemetry, and that every
Grafana panel's query returns data.  ``promtool`` checks the config and the rules and runs their
unit tests.  Nothing is skipped: without Debian's prometheus the tests fail, naming the package.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from edge import wire
from gateway.config import IngestConfig
from gateway.metrics import FORWARD_LATENCY, INGEST_LATENCY, MIB, STATS, Latency, MetricsApp, make_metrics_app
from sim_devices.platform import SimPlatform
from tests.integration.test_gateway import SITE, WAIT_S
from tests.integration.test_gateway_integrity import Rig
from wastecart.broker import PrivateBroker, free_port

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "wastecart-dashboard.json"
TOKEN = "test-metrics-token-1f2e"
RECORDS = 5  # records the cart sends
# What the dashboard's template variables become in the test: every site and cart; a rate window
# that holds many 1 s scrapes.
VARIABLES = {"$__rate_interval": "1m", "$site": ".*", "$cart": ".*"}
# The shipped scrape config's optional bearer-token lines, exactly as shipped (uncommented here).
TOKEN_LINES = ("    # authorization:\n    #   type: Bearer\n"
               "    #   credentials_file: /etc/prometheus/wastecart-metrics.token\n")


def tool(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if found is None:
        pytest.fail(f"{name} is not installed: run `sudo apt-get install -y prometheus` (deploy/bootstrap.sh does)")
    return found


def promtool(*args: str) -> str:
    proc = subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=60, check=False,
                          cwd=PROM_DIR)
    assert proc.returncode == 0, f"promtool {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc.stdout + proc.stderr


# ------------------------------------------------------------------------------ promtool alone


def test_the_shipped_scrape_config_is_valid() -> None:
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")


def test_the_shipped_rules_are_valid_and_pass_their_unit_tests() -> None:
    out = promtool("check", "rules", *sorted(str(p) for p in (PROM_DIR / "rules").glob("*.yml")))
    assert "SUCCESS: 8 rules found" in out
    assert "SUCCESS" in promtool("test", "rules", "tests/rules_test.yml")


# ------------------------------------------------------------------------------ a real scrape


class Scrapes:
    """Wraps the metrics app: counts the scrapes answered (status per scrape) under a Condition."""

    def __init__(self, app: MetricsApp) -> None:
        self._app = app
        self.statuses: list[int] = []
        self._changed = threading.Condition()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        status = 0

        async def spy(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self._app(scope, receive, spy)
        if scope["type"] == "http":
            with self._changed:
                self.statuses.append(status)
                self._changed.notify_all()

    def wait(self, count: int) -> None:
        """Until ``count`` scrapes were answered in all."""
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.statuses) >= count, WAIT_S), \
                f"prometheus scraped {len(self.statuses)} times, expected {count}"


@pytest.fixture
def platform() -> Iterator[SimPlatform]:
    with SimPlatform(seed=14) as p:
        yield p


@pytest.fixture
def rig(tmp_path: Path, broker: PrivateBroker, platform: SimPlatform) -> Iterator[Rig]:
    r = Rig(tmp_path, broker, platform, ingest=IngestConfig(batch_max=50, linger_ms=5))
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def served(rig: Rig) -> Iterator[tuple[Scrapes, int]]:
    """The gateway's /metrics (with a bearer token) on a free port: (the scrape counter, the port)."""
    scrapes = Scrapes(make_metrics_app(rig.app, TOKEN))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # listening before uvicorn runs: nothing to wait for
    server = uvicorn.Server(uvicorn.Config(scrapes, log_level="warning", lifespan="on", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield scrapes, int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        sock.close()


@pytest.fixture
def prometheus(served: tuple[Scrapes, int], tmp_path: Path) -> Iterator[str]:
    """A Prometheus scraping the gateway every second with the shipped config; its base URL."""
    _, port = served
    token = tmp_path / "metrics.token"
    token.write_text(TOKEN + "\n")
    text = (PROM_DIR / "prometheus.yml").read_text()
    assert TOKEN_LINES in text and '"127.0.0.1:8090"' in text and "rules/wastecart.rules.yml" in text
    text = (text.replace(TOKEN_LINES, TOKEN_LINES.replace("# ", "").replace("/etc/prometheus/wastecart-metrics.token",
                                                                         str(token)))
            .replace('"127.0.0.1:8090"', f'"127.0.0.1:{port}"')
            .replace("rules/wastecart.rules.yml", str(PROM_DIR / "rules" / "wastecart.rules.yml")))
    text = re.sub(r"(scrape|evaluation)_interval: 15s", r"\1_interval: 1s", text)
    config = tmp_path / "prometheus.yml"
    config.write_text(text)
    web = free_port()
    proc = subprocess.Popen([tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{web}", "--log.level=warn"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield f"http://127.0.0.1:{web}"
    finally:
        proc.terminate()
        try:
            proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def query(base: str, expr: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=WAIT_S)
    assert resp.status_code == 200, f"{expr}: {resp.text}"
    result: list[dict[str, Any]] = resp.json()["data"]["result"]
    return result


def value(base: str, expr: str) -> float:
    result = query(base, expr)
    assert len(result) == 1, f"{expr}: {result}"
    return float(result[0]["value"][1])


def count(latency: Latency) -> float:
    return latency.snapshot()[0][-1][1]


def test_prometheus_scrapes_what_the_gateway_counts(rig: Rig, served: tuple[Scrapes, int],
                                                   prometheus: str) -> None:
    scrapes, port = served
    scrapes.wait(1)  # Prometheus is up and scraping
    assert set(scrapes.statuses) == {200}, f"scrapes answered {scrapes.statuses}: the token did not reach us"
    before = (count(INGEST_LATENCY), count(FORWARD_LATENCY))  # process-wide: earlier tests' gateways too

    cart = rig.cart.cart
    boot = rig.birth()
    telemetry = {"at": "2026-01-01T00:00:00Z", "boot_id": boot, "seq_head": RECORDS, "backlog": 7,
                 "oldest_unsent_s": 95, "disk_free_mb": 1234, "clock": "ntp", "clock_offset_ms": -1500,
                 "scale": "connected", "camera": "none", "printer": "error", "actuator": "retracted"}
    rig.pub.client.publish(wire.topic(SITE, cart, wire.TELEMETRY),
                           wire.sign_message(wire.TELEMETRY_KIND, SITE, cart, telemetry, rig.cart.key),
                           qos=1).wait_for_publish(WAIT_S)
    envs = [rig.cart.record(seq) for seq in range(1, RECORDS + 1)]
    for env in envs:
        rig.pub.publish(cart, env)
    assert rig.pub.acked(cart, {e["id"] for e in envs}) == RECORDS
    stats = rig.wait(accepted=RECORDS, device_updates=2)
    assert count(INGEST_LATENCY) - before[0] == RECORDS + 2  # every message: records, birth, telemetry
    assert count(FORWARD_LATENCY) - before[1] == stats["forward_attempts"] == RECORDS

    seen = len(scrapes.statuses)
    scrapes.wait(seen + 2)  # a whole scrape after the one that may have begun before the state settled
    assert rig.app.stats() == stats  # nothing moved since: Prometheus holds this state

    for key in stats:
        name, kind, _ = STATS[key]
        suffix = "_total" if kind == "counter" else ""
        assert value(prometheus, f"wastecart_gateway_{name}{suffix}") == stats[key], key
    assert value(prometheus, "wastecart_gateway_quarantined_total") == stats["quarantined"] + stats[
        "quarantine_dropped"]
    assert value(prometheus, "wastecart_gateway_ingest_latency_seconds_count") == count(INGEST_LATENCY)
    assert value(prometheus, "wastecart_gateway_forward_latency_seconds_count") == count(FORWARD_LATENCY)

    device = rig.app.store.device(cart)
    assert device is not None
    sel = f'{{cart="{cart}",site="{SITE}"}}'
    assert value(prometheus, f"wastecart_gateway_cart_online{sel}") == 1
    assert value(prometheus, f"wastecart_gateway_cart_online_since_timestamp_seconds{sel}") == pytest.approx(
        device["online_since"])
    assert value(prometheus, f"wastecart_gateway_cart_last_seen_timestamp_seconds{sel}") == pytest.approx(
        device["last_seen"])
    assert value(prometheus, f"wastecart_gateway_cart_backlog_records{sel}") == 7
    assert value(prometheus, f"wastecart_gateway_cart_oldest_unsent_seconds{sel}") == 95
    assert value(prometheus, f"wastecart_gateway_cart_disk_free_bytes{sel}") == 1234 * MIB
    assert value(prometheus, f"wastecart_gateway_cart_clock_offset_seconds{sel}") == -1.5
    assert value(prometheus, f"wastecart_gateway_cart_clock_synced{sel}") == 1
    peripherals = {r["metric"]["peripheral"]: float(r["value"][1])
                   for r in query(prometheus, f"wastecart_gateway_cart_peripheral_ok{sel}")}
    assert peripherals == {"scale": 1, "camera": 1, "printer": 0, "actuator": 1}
    faulty = query(prometheus, f"wastecart_gateway_cart_peripheral_faulty_since_timestamp_seconds{sel}")
    assert [r["metric"]["peripheral"] for r in faulty] == ["printer"]

    # The shipped rules are loaded, and nothing of this healthy cart fires.
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=WAIT_S).json()["data"]["groups"]
    assert {r["name"] for g in rules for r in g["rules"]} >= {
        "WastecartCartOffline", "WastecartCartBacklog", "WastecartCartOldestUnsent", "WastecartCartClock",
        "WastecartCartDiskLow", "WastecartCartPeripheralFaulty"}
    assert all(r["health"] != "err" for g in rules for r in g["rules"]), rules

    # Without the token: refused.
    assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=WAIT_S).status_code == 401

    # Every Grafana panel's query returns data; latency quantiles are numbers (records went through
    # while Prometheus watched).
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    exprs = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 15
    for title, expr in exprs:
        for var, text in VARIABLES.items():
            expr = expr.replace(var, text)
        assert "$" not in expr, f"{title}: a template variable the test does not know: {expr}"
        result = query(prometheus, expr)
        assert result, f"panel {title!r}: no data for {expr}"
        if "histogram_quantile" in expr:
            assert all(not math.isnan(float(r["value"][1])) for r in result), f"{title}: {result}"
