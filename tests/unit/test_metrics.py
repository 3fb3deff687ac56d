"""gateway.metrics without Prometheus: the histogram's buckets, what a scrape says of a gateway and of
its carts, the bearer token, and the shipped rules' thresholds against the console's defaults.

A real GatewayApp (real SQLite; its broker and platform need not exist: paho keeps retrying) gives
the real ``stats()`` keys, so a counter added without a metric name fails here.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.alerts.catalogue import CONDITION_KINDS
from gateway.alerts.settings import AlertsConfig
from gateway.app import GatewayApp
from gateway.config import GatewayConfig
from gateway.errors import GatewayError
from gateway.metrics import MIB, STATS, GatewayCollector, Latency, MetricsApp, cart_families, make_metrics_app
from gateway.store import FleetRow
from wastecart.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "wastecart.rules.yml"
TOKEN = "s3cret-token"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[GatewayApp]:
    """A started gateway whose broker and platform are closed ports: counters, no traffic."""
    cfg = GatewayConfig(broker=f"mqtt://127.0.0.1:{free_port()}", data=tmp_path / "gw",
                        platform=f"http://127.0.0.1:{free_port()}", client_id=f"t-{uuid.uuid4().hex[:8]}")
    gw = GatewayApp(cfg)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


def scrape(app: GatewayApp) -> dict[str, float]:
    """sample name{labels} -> value, as Prometheus would read it."""
    registry = CollectorRegistry()
    registry.register(GatewayCollector(app))
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def get(metrics: MetricsApp, method: str = "GET", token: str | None = None) -> httpx.Response:
    """One request to the ASGI app, in process."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=metrics), base_url="http://gw") as client:
            return await client.request(method, "/metrics", headers=headers)

    return asyncio.run(go())


# ------------------------------------------------------------------------------ the histogram


def test_latency_buckets_are_cumulative_and_inclusive_like_prometheus_le() -> None:
    h = Latency((0.1, 1.0))
    for s in (0.05, 0.1, 0.5, 1.0, 3.0):
        h.observe(s)
    h.observe_since([10.0, 9.5], now=10.2)  # 0.2 s and 0.7 s
    buckets, total = h.snapshot()
    assert buckets == [("0.1", 2), ("1.0", 6), ("+Inf", 7)]
    assert total == pytest.approx(0.05 + 0.1 + 0.5 + 1.0 + 3.0 + 0.2 + 0.7)


# ------------------------------------------------------------------------------ a gateway's scrape


def test_every_stats_key_has_a_metric_and_the_scrape_carries_its_value(app: GatewayApp) -> None:
    stats = app.stats()
    assert set(stats) <= set(STATS), f"stats() keys without a metric name in gateway.metrics.STATS: " \
                                     f"{sorted(set(stats) - set(STATS))}"
    names = [name for name, _, _ in STATS.values()]
    assert len(names) == len(set(names))
    got = scrape(app)
    for key in stats:
        name, kind, _ = STATS[key]
        assert got[f"wastecart_gateway_{name}{'_total' if kind == 'counter' else ''}"] == stats[key], key
    assert got["wastecart_gateway_ingest_latency_seconds_bucket{le=+Inf}"] >= 0
    assert not any(k.startswith("wastecart_gateway_cart_") for k in got)  # no cart heard from


def test_a_stopped_gateway_still_answers_with_its_last_counters(app: GatewayApp) -> None:
    app.stop()
    got = scrape(app)
    assert got["wastecart_gateway_mqtt_connected"] == 0
    assert "wastecart_gateway_ingest_messages_total" in got


def test_two_gateways_in_one_process_do_not_collide(app: GatewayApp) -> None:
    first, second = make_metrics_app(app), make_metrics_app(app)  # the global registry would refuse this
    assert get(first).status_code == get(second).status_code == 200


def test_the_bearer_token_is_required_when_given(app: GatewayApp) -> None:
    metrics = make_metrics_app(app, TOKEN)
    refused = get(metrics)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert get(metrics, token="wrong").status_code == 401
    ok = get(metrics, token=TOKEN)
    assert ok.status_code == 200 and "wastecart_gateway_ingest_messages_total" in ok.text
    assert get(metrics, "POST", TOKEN).status_code == 405
    with pytest.raises(GatewayError, match="empty"):
        make_metrics_app(app, "  ")


# ------------------------------------------------------------------------------ per-cart gauges


def samples(rows: list[FleetRow]) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.name, tuple(s.labels.values())): s.value for f in cart_families(rows) for s in f.samples}


def test_cart_gauges_follow_what_the_rules_read_and_leave_out_what_was_not_reported() -> None:
    tele = {"backlog": 3, "oldest_unsent_s": None, "disk_free_mb": 10, "clock": "gateway", "clock_offset_ms": 2500,
            "printer": "error", "actuator": "extending", "camera": "none", "scale": "connected"}
    got = samples([FleetRow("C1", "H1", True, 100.0, 130.0, tele, 120.0, {"printer": 90.0, "actuator": 95.0}),
                   FleetRow("C2", "H1", False, 50.0, 60.0, None, None)])
    c1, c2 = ("C1", "H1"), ("C2", "H1")
    assert (got[("wastecart_gateway_cart_online", c1)], got[("wastecart_gateway_cart_online", c2)]) == (1, 0)
    assert got[("wastecart_gateway_cart_online_since_timestamp_seconds", c2)] == 50
    assert got[("wastecart_gateway_cart_last_seen_timestamp_seconds", c1)] == 130
    assert got[("wastecart_gateway_cart_telemetry_timestamp_seconds", c1)] == 120
    assert got[("wastecart_gateway_cart_backlog_records", c1)] == 3
    assert got[("wastecart_gateway_cart_oldest_unsent_seconds", c1)] == 0  # None: nothing unsent
    assert got[("wastecart_gateway_cart_disk_free_bytes", c1)] == 10 * MIB
    assert got[("wastecart_gateway_cart_clock_offset_seconds", c1)] == 2.5
    assert got[("wastecart_gateway_cart_clock_synced", c1)] == 1
    assert {p[-1]: v for (n, p), v in got.items() if n == "wastecart_gateway_cart_peripheral_ok"} \
        == {"scale": 1, "camera": 1, "printer": 0, "actuator": 0}  # "busy" for long is a fault too
    assert {p[-1]: v for (n, p), v in got.items()
            if n == "wastecart_gateway_cart_peripheral_faulty_since_timestamp_seconds"} == {"printer": 90,
                                                                                            "actuator": 95}
    assert not [k for k in got if k[1] == c2 and "online" not in k[0] and "last_seen" not in k[0]]  # no telemetry


def test_an_unsynced_clock_reads_zero() -> None:
    tele = {"backlog": 0, "oldest_unsent_s": None, "disk_free_mb": 10, "clock": "unsynced"}
    got = samples([FleetRow("C1", "H1", None, None, 1.0, tele, 1.0)])
    assert got[("wastecart_gateway_cart_clock_synced", ("C1", "H1"))] == 0
    assert ("wastecart_gateway_cart_online", ("C1", "H1")) not in got  # no verified status yet


# ------------------------------------------------------------------------------ the shipped rules


def test_the_shipped_rules_use_the_consoles_default_thresholds() -> None:
    """deploy/prometheus/rules says what gateway.alerts.rules says with AlertsConfig's defaults
    (promtool's unit tests then check each alert at its threshold and past it)."""
    cfg = AlertsConfig()
    text = RULES.read_text("utf-8")
    expected = {
        "WastecartCartOffline": [f"online_since_timestamp_seconds > {cfg.offline_min:g} * 60",
                                 f"last_seen_timestamp_seconds > {cfg.silence_min:g} * 60"],
        "WastecartCartBacklog": [f"wastecart_gateway_cart_backlog_records > {cfg.backlog_max}"],
        "WastecartCartOldestUnsent": [f"wastecart_gateway_cart_oldest_unsent_seconds > {cfg.oldest_unsent_min:g} * 60"],
        "WastecartCartClock": ["wastecart_gateway_cart_clock_synced == 0",
                               f"abs(wastecart_gateway_cart_clock_offset_seconds) > {cfg.clock_offset_s:g}"],
        "WastecartCartDiskLow": [f"wastecart_gateway_cart_disk_free_bytes < {cfg.disk_free_mb} * {MIB}"],
        "WastecartCartPeripheralFaulty": [f"faulty_since_timestamp_seconds > {cfg.peripheral_faulty_min:g} * 60"],
    }
    rules = dict(re.findall(r"- alert: (\w+)\n(.*?)(?=\n\s*- alert: |\n  - name: |\Z)", text, re.S))
    kinds = dict(re.findall(r"- alert: (\w+)\n.*?kind: (\w+)", text, re.S))
    assert set(expected) == {a for a in rules if a.startswith("WastecartCart")}
    assert {kinds[a] for a in expected} == set(CONDITION_KINDS)  # one alert per console kind
    for alert, fragments in expected.items():
        for fragment in fragments:
            assert fragment in rules[alert], f"{alert}: {fragment!r} not in {rules[alert]!r}"
