"""Prometheus metrics of one gateway: ``make_metrics_app(app)`` is an ASGI app serving ``/metrics``.

Every scrape reads the gateway afresh (a custom collector, nothing cached between scrapes):
- ``app.stats()``: the store's counts and the threads' counters, each under the name ``STATS`` gives
  it (a unit test checks that every key of ``stats()`` has one, so a new counter is not forgotten);
- the fleet as the console's alert rules read it (``Alerting.fleet_state``: one row per cart that
  sent a verified message, so the ``cart`` label is bounded by the enrolled keys): online and since
  when, last seen, backlog, oldest unsent age, disk free, clock, peripherals and since when faulty;
- two latency histograms fed by hooks on the hot path: ``INGEST_LATENCY`` (a message handed over
  by paho -> its batch committed, ``gateway.ingest.worker``) and ``FORWARD_LATENCY`` (one platform
  request, ``gateway.forwarder``).  They are process-wide (one gateway per process when deployed)
  and cost a bisect and an uncontended lock per observation, stdlib only.

Each app has a registry of its own, never prometheus_client's global one: several gateways in one
process (the tests) do not collide.  A scrape runs in a worker thread (it reads SQLite), so the
console's event loop keeps serving while it does.  ``token``: the scraper must send
``Authorization: Bearer <token>`` (compared in constant time) or gets 401.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from edge.catalogue import CLOCK_SYNCED
from gateway.alerts.catalogue import PERIPHERALS, faulty
from gateway.errors import GatewayError
from gateway.store import Alerting, FleetRow

log = logging.getLogger(__name__)

PREFIX = "wastecart_gateway"
# Upper bounds of the ingest latency buckets (s): a batch commits in linger_ms (5) plus an fsync,
# a few ms; tens of ms to seconds mean a queue behind a slow disk or a flood.
INGEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Upper bounds of the forward latency buckets (s): a platform answers in ms to a second; the
# request timeout (forward.timeout_s, 10 s by default, at most 600) ends the tail.
FORWARD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
MIB = 2**20  # the cart reports disk_free_mb in MiB (free // 2**20)

# stats() key -> (metric name without the prefix, "counter" | "gauge", help).  Counters of the
# store survive restarts; the threads' counters start at 0 with the process (Prometheus sees a reset).
STATS: dict[str, tuple[str, str, str]] = {
    "received": ("ingest_messages", "counter", "Record messages received and checked (stored, duplicate or "
                                               "quarantined)"),
    "stored": ("ingest_stored_records", "counter", "Records stored (rows of the records table)"),
    "duplicates": ("ingest_duplicate_records", "counter", "Records received again and not stored twice"),
    "quarantined": ("quarantine_rows", "gauge", "Payloads held in quarantine"),
    "quarantine_bytes": ("quarantine_bytes", "gauge", "Bytes the quarantine holds (budget: quarantine.budget_bytes)"),
    "quarantine_dropped": ("quarantine_dropped_rows", "counter", "Quarantine rows dropped beyond the byte budget"),
    "pending": ("outbox_pending_records", "gauge", "Records stored and not yet forwarded (held ones included)"),
    "held": ("outbox_held_records", "gauge", "Stored records not forwardable: chain pending or broken"),
    "forwarding": ("outbox_forwarding_records", "gauge", "Records with a platform request under way"),
    "accepted": ("forward_accepted_records", "counter", "Records the platform accepted"),
    "dead": ("dead_letter_records", "gauge", "Records dead-lettered (refused by the platform for good)"),
    "redeliveries": ("forward_redeliveries", "counter", "Records sent again after an unknown outcome"),
    "alerts": ("alert_rows", "gauge", "Alert rows (repeats collapse into one row's count)"),
    "alert_events": ("alert_events", "counter", "Alert events (every repeat counted)"),
    "status_stale": ("status_stale", "counter", "Statuses or telemetry of an earlier boot, ignored"),
    "status_ahead": ("status_ahead", "counter", "Statuses claiming seqs not verified yet"),
    "ingest_batches": ("ingest_batches", "counter", "Batches committed"),
    "ingest_errors": ("ingest_errors", "counter", "Failed commits and ingest passes that raised"),
    "poison": ("ingest_poison_messages", "counter", "Messages whose own commit failed, quarantined alone"),
    "quarantine_logged": ("ingest_quarantined_messages", "counter", "Payloads quarantined by ingest"),
    "device_updates": ("device_updates", "counter", "Verified status, telemetry and command results applied"),
    "device_errors": ("device_errors", "counter", "Status, telemetry or command results that failed their checks"),
    "device_ignored": ("device_ignored", "counter", "Verified device messages that changed nothing"),
    "acks_published": ("acks_published", "counter", "Signed acks published"),
    "ack_failures": ("ack_failures", "counter", "Acks that could not be published"),
    "rejects_sent": ("rejects_sent", "counter", "Signed rejects published"),
    "reject_failures": ("reject_failures", "counter", "Rejects that could not be published"),
    "resends_sent": ("resend_commands", "counter", "Resend commands sent for a gap"),
    "time_offers": ("time_offers", "counter", "Time offers sent to a cart's verified birth"),
    "cmd_failures": ("command_failures", "counter", "Commands that could not be published"),
    "cmd_no_boot": ("command_no_boot", "counter", "Commands not sent: no verified boot known"),
    "mqtt_connected": ("mqtt_connected", "gauge", "1 while connected to the broker"),
    "subscribed": ("mqtt_subscribed", "gauge", "1 while subscribed to the carts' topics"),
    "forward_attempts": ("forward_attempts", "counter", "Platform requests made"),
    "forward_retries": ("forward_retries", "counter", "Failed platform requests scheduled for a retry"),
    "forward_errors": ("forward_errors", "counter", "Forwarding passes that raised (a store error)"),
    "recovered": ("forward_recovered_records", "gauge", "Records found mid-forwarding at start (sent again)"),
    "breaker_opened": ("forward_breaker_opened", "counter", "Times the outbox paused for a platform that looked "
                                                            "down"),
    "platform_down": ("platform_down", "gauge", "1 while the outbox waits for a platform that looked down"),
    "alerts_active": ("alerts_active", "gauge", "Alerts not resolved"),
    "alerts_opened": ("alerts_opened", "counter", "Condition alerts opened by the rules"),
    "alerts_resolved": ("alerts_resolved", "counter", "Condition alerts resolved by the rules"),
    "alert_rule_errors": ("alert_rule_errors", "counter", "Rules or history passes that raised"),
    "webhook_queued": ("webhook_queued_notifications", "gauge", "Alert notifications waiting for the webhook"),
    "webhook_sent": ("webhook_sent_notifications", "counter", "Alert notifications the webhook accepted"),
    "webhook_failures": ("webhook_failed_attempts", "counter", "Webhook attempts that failed (retried)"),
    "webhook_dropped": ("webhook_dropped_notifications", "counter", "Notifications dropped beyond the queue's cap"),
    "webhook_posts_ok": ("webhook_posts_ok", "counter", "Webhook POSTs answered 2xx since start"),
    "webhook_posts_failed": ("webhook_posts_failed", "counter", "Webhook POSTs that failed since start"),
    "webhook_errors": ("webhook_errors", "counter", "Webhook passes that raised"),
}


class Latency:
    """A fixed-bucket histogram of seconds that the hot path can afford: a bisect, one lock."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        i = bisect_left(self.bounds, seconds)  # first bound >= seconds: Prometheus's "le"
        with self._lock:
            self._counts[i] += 1
            self._sum += seconds

    def observe_since(self, starts: Iterable[float], now: float) -> None:
        """Every ``now - start`` (time.monotonic() values) under one lock: one call per batch."""
        spans = [now - s for s in starts]
        slots = [bisect_left(self.bounds, s) for s in spans]
        with self._lock:
            for i in slots:
                self._counts[i] += 1
            self._sum += sum(spans)

    def snapshot(self) -> tuple[list[tuple[str, float]], float]:
        """(cumulative [(le, count)] ending with +Inf, sum), consistent with each other."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip([*map(str, self.bounds), "+Inf"], counts, strict=True):
            running += n
            buckets.append((bound, running))
        return buckets, total


INGEST_LATENCY = Latency(INGEST_BUCKETS)
FORWARD_LATENCY = Latency(FORWARD_BUCKETS)


class MetricsSource(Protocol):
    """What the collector reads of a ``GatewayApp`` (a Protocol: this module may not import the app,
    whose ingest and forwarder import the latency hooks from here)."""

    def stats(self) -> dict[str, int]: ...

    @property
    def store(self) -> Alerting: ...


class GatewayCollector:
    """Reads one gateway at every scrape (see the module's docstring for what)."""

    def __init__(self, app: MetricsSource) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        yield from stat_families(self._app.stats())
        yield latency_family("ingest_latency_seconds", "Message received -> its batch committed", INGEST_LATENCY)
        yield latency_family("forward_latency_seconds", "One platform request, any outcome", FORWARD_LATENCY)
        try:
            store = self._app.store
        except GatewayError:  # not started, or stopped: counters only
            return
        yield from cart_families(store.fleet_state())


def stat_families(stats: dict[str, int]) -> Iterator[Metric]:
    for key, (name, kind, text) in STATS.items():
        if key not in stats:
            continue
        family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        yield family(f"{PREFIX}_{name}", text, value=stats[key])
    if "quarantined" in stats and "quarantine_dropped" in stats:
        yield CounterMetricFamily(f"{PREFIX}_quarantined", "Payloads quarantined (held + dropped beyond the budget)",
                                  value=stats["quarantined"] + stats["quarantine_dropped"])


def latency_family(name: str, text: str, latency: Latency) -> HistogramMetricFamily:
    buckets, total = latency.snapshot()
    return HistogramMetricFamily(f"{PREFIX}_{name}", text, buckets=buckets, sum_value=total)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def cart_families(rows: list[FleetRow]) -> Iterator[Metric]:
    """Per-cart gauges, labelled cart and site, from what the console's rules read (``fleet_state``,
    ``gateway.alerts.rules``); a value the cart did not report is left out."""
    def gauge(name: str, text: str, labels: tuple[str, ...] = ("cart", "site")) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{PREFIX}_cart_{name}", text, labels=list(labels))

    online = gauge("online", "1 online, 0 offline (the cart's signed birth / will); absent while unknown")
    since = gauge("online_since_timestamp_seconds", "When the online flag took its current value")
    seen = gauge("last_seen_timestamp_seconds", "When a verified message of the cart last arrived")
    tele_at = gauge("telemetry_timestamp_seconds", "When the cart's latest telemetry arrived")
    backlog = gauge("backlog_records", "Records on the cart not yet acked by the gateway")
    oldest = gauge("oldest_unsent_seconds", "Age of the cart's oldest unsent record (0: nothing unsent)")
    disk = gauge("disk_free_bytes", "Free space on the cart's data disk")
    offset = gauge("clock_offset_seconds", "The cart's clock offset from the gateway's time")
    synced = gauge("clock_synced", "1 when the cart's clock source is trusted (ntp, gateway, rtc)")
    ok = gauge("peripheral_ok", "1 when the peripheral works or is not fitted, 0 when faulty or stuck busy",
               ("cart", "site", "peripheral"))
    faulty_at = gauge("peripheral_faulty_since_timestamp_seconds", "Since when a faulty peripheral is not ok",
                      ("cart", "site", "peripheral"))
    for row in rows:
        ids = [row.cart, row.site]
        if row.online is not None:
            online.add_metric(ids, float(row.online))
        if row.online_since is not None:
            since.add_metric(ids, row.online_since)
        seen.add_metric(ids, row.last_seen)
        for name, at in sorted(row.faulty_since.items()):
            faulty_at.add_metric([*ids, name], at)
        tele = row.telemetry
        if tele is None:
            continue
        if row.telemetry_at is not None:
            tele_at.add_metric(ids, row.telemetry_at)
        if (n := _number(tele.get("backlog"))) is not None:
            backlog.add_metric(ids, n)
        oldest.add_metric(ids, _number(tele.get("oldest_unsent_s")) or 0.0)
        if (n := _number(tele.get("disk_free_mb"))) is not None:
            disk.add_metric(ids, n * MIB)
        if (n := _number(tele.get("clock_offset_ms"))) is not None:
            offset.add_metric(ids, n / 1000)
        if isinstance(tele.get("clock"), str):
            synced.add_metric(ids, float(tele["clock"] in CLOCK_SYNCED))
        for name in PERIPHERALS:
            if isinstance(tele.get(name), str):
                ok.add_metric([*ids, name], float(not faulty(tele[name])))
    yield from (online, since, seen, tele_at, backlog, oldest, disk, offset, synced, ok, faulty_at)


# ------------------------------------------------------------------------------------------- ASGI

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class MetricsApp:
    """The ASGI app (a class, so that Starlette's ``Route`` treats it as an app, not an endpoint)."""

    def __init__(self, registry: CollectorRegistry, token: str | None) -> None:
        self._registry = registry
        self._token = None if token is None else token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # served alone by uvicorn (tests); nothing to set up
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        if scope["method"] != "GET":
            await _answer(send, 405, b"GET only\n", [(b"allow", b"GET")])
            return
        if self._token is not None and not hmac.compare_digest(headers.get("authorization", b""),
                                                               b"Bearer " + self._token):
            await _answer(send, 401, b"bearer token required\n", [(b"www-authenticate", b'Bearer realm="metrics"')])
            return
        encoder, content_type = choose_encoder(headers.get("accept", b"").decode("latin-1"))
        try:
            body = await asyncio.to_thread(encoder, self._registry)
        except GatewayError as exc:  # the store failed mid-scrape (a full disk, a stop)
            log.warning("metrics: scrape failed: %s", exc)
            await _answer(send, 503, f"gateway unavailable: {exc}\n".encode(), [])
            return
        await _answer(send, 200, body, [(b"content-type", content_type.encode())])


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    if not any(k == b"content-type" for k, _ in headers):
        headers = [*headers, (b"content-type", b"text/plain; charset=utf-8")]
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def make_metrics_app(app: MetricsSource, token: str | None = None) -> MetricsApp:
    """``/metrics`` of ``app`` (a ``GatewayApp``); ``token``: a bearer token the scraper must send."""
    if token is not None and not token.strip():
        raise GatewayError("metrics token is empty: give a token, or none to serve /metrics without one")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GatewayCollector(app))
    return MetricsApp(registry, token)
