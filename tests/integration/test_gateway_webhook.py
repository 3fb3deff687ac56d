"""Alerts end to end against a real mosquitto and a real HTTP receiver: a cart's signed will opens
OFFLINE within seconds of ``offline_min``, its return resolves it, and the webhook receives every
change in order — also those queued while the receiver was down."""

from __future__ import annotations

import json
import queue
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gateway.alerts.settings import AlertsConfig, WebhookConfig
from gateway.config import IngestConfig
from sim_devices.platform import SimPlatform
from tests.integration.test_gateway import WAIT_S
from tests.integration.test_gateway_integrity import Rig
from wastecart.broker import PrivateBroker


class Receiver:
    """A webhook receiver on a fixed loopback port; started and stopped by the test."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.got: queue.Queue[dict[str, Any]] = queue.Queue()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                got.put({"path": self.path, "type": self.headers["content-type"], **json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def next(self) -> dict[str, Any]:
        return self.got.get(timeout=WAIT_S)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def platform() -> Iterator[SimPlatform]:
    with SimPlatform(seed=14) as p:
        yield p


@pytest.fixture
def rig(tmp_path: Path, broker: PrivateBroker, platform: SimPlatform, receiver: Receiver) -> Iterator[Rig]:
    r = Rig(tmp_path, broker, platform, ingest=IngestConfig(batch_max=50, linger_ms=5),
            alerts=AlertsConfig(offline_min=0.001),  # 60 ms: the test waits for the rules pass, not the minutes
            webhook=WebhookConfig(url=receiver.url, backoff_base_s=0.05, backoff_max_s=0.2))
    try:
        yield r
    finally:
        r.close()


def test_a_carts_will_opens_offline_its_return_resolves_it_and_the_webhook_hears_both(
        rig: Rig, receiver: Receiver) -> None:
    boot = rig.birth()
    rig.wait(device_updates=1)
    rig.birth(boot_id=boot, state="offline")  # what the broker publishes when the cart's process dies
    assert rig.app.wait_until(lambda s: s["alerts_active"] == 1, WAIT_S)
    (alert,) = rig.app.store.alerts(state="active")
    assert (alert["kind"], alert["cart"]) == ("OFFLINE", rig.cart.cart)
    assert rig.app.wait_until(lambda s: s["webhook_failures"] >= 2, WAIT_S)  # the receiver is down: retried
    assert rig.app.store.acknowledge_alert(alert["id"], "alice", "ward called", 0.0 + alert["raised_at"] + 1)
    receiver.start()
    opened, acked = receiver.next(), receiver.next()
    assert (opened["event"], opened["alert"]["kind"], opened["alert"]["cart"]) == ("opened", "OFFLINE", rig.cart.cart)
    assert opened["path"] == "/hook" and opened["type"] == "application/json"
    assert (acked["event"], acked["alert"]["acknowledged_by"], acked["alert"]["resolved_at"]) == (
        "acknowledged", "alice", None)  # a condition stays active until it clears
    rig.birth(boot_id=boot, state="online")  # the cart is back
    assert rig.app.wait_until(lambda s: s["alerts_active"] == 0, WAIT_S)
    resolved = receiver.next()
    assert (resolved["event"], resolved["alert"]["id"]) == ("resolved", alert["id"])
    assert resolved["alert"]["resolved_at"] is not None
    assert rig.app.wait_until(lambda s: s["webhook_sent"] == 3 and s["webhook_queued"] == 0, WAIT_S)
