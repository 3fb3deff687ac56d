"""End-to-end latency: cart commit → platform 2xx, next to a bare paho publish → subscribe.

Both on the same private mosquitto in the same run.  The cart side is the real ledger (WAL,
synchronous=FULL, Ed25519) and uplink; the gateway and the simulated platform are the real ones.
Records are committed one at a time at a steady pace (not as a backlog), so each figure is the
latency a collector's handover sees, not a drain rate.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge import keys, wire
from edge.store import Ledger
from edge.uplink import Uplink
from gateway.app import GatewayApp
from gateway.config import GatewayConfig
from sim_devices.platform import SimPlatform
from wastecart.broker import PrivateBroker

N = 200  # records (and baseline messages)
PACE_S = 0.02  # one commit every 20 ms: well below capacity, so queueing does not dominate
BODY = {"org": "H1", "note": "x" * 200}  # ~300-byte payloads, like a 3-line handover


def percentiles(values_ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values_ms, n=100, method="inclusive")
    return {"p50_ms": round(q[49], 2), "p99_ms": round(q[98], 2), "n": len(values_ms)}


def bare_paho_rtt(broker: PrivateBroker) -> dict[str, float]:
    """Publish one QoS 1 message at a time and time its arrival at a subscriber."""
    host, port, _ = wire.broker_address(broker.url)
    got: dict[int, int] = {}
    arrived = threading.Condition()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with arrived:
            got[int(msg.payload.split(b":")[0])] = time.perf_counter_ns()
            arrived.notify_all()

    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.connect(host, port)
    sub.subscribe("bench/rtt", qos=1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub")
    pub.connect(host, port)
    pub.loop_start()
    if not subscribed.wait(10):
        raise RuntimeError("baseline subscriber got no SUBACK")
    rtts: list[float] = []
    pad = b"x" * 290
    for i in range(N):
        t0 = time.perf_counter_ns()
        pub.publish("bench/rtt", f"{i}:".encode() + pad, qos=1)
        with arrived:
            if not arrived.wait_for(lambda i=i: i in got, timeout=5):
                raise RuntimeError(f"baseline message {i} did not arrive")
        rtts.append((got[i] - t0) / 1e6)
        time.sleep(PACE_S)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return percentiles(rtts)


def commit_to_platform(broker: PrivateBroker, root: Path) -> dict[str, float]:
    platform = SimPlatform()
    platform.start()
    key = keys.load_or_create(root / "cart")
    ledger = Ledger(root / "cart", "BENCH-01", key)
    gateway = GatewayApp(GatewayConfig(broker=broker.url, client_id="bench-gw", data=root / "gw",
                                       platform=platform.url,
                                       cart_keys={"BENCH-01": wire.public_key_text(key.public_key())}))
    gateway.start()
    uplink = Uplink(ledger, site="H1", broker=broker.url, window=100)
    uplink.start()
    try:
        if not uplink.connected.wait(10):
            raise RuntimeError("cart uplink did not connect")
        clock = wire.Clock("ntp", 0)
        for _ in range(N):
            ledger.commit("handover", BODY, now=datetime.now().astimezone(), clock=clock)
            uplink.wake()
            time.sleep(PACE_S)
        if not gateway.wait_until(lambda st: st.get("accepted", 0) >= N, 60):
            raise RuntimeError(f"only {gateway.stats()} accepted")
        received = {r["id"]: r["first_received_at"] for r in platform.records()}
        committed = _commit_ns(ledger)
        if committed.keys() != received.keys():
            raise RuntimeError("the platform's records differ from the cart's")
        return percentiles([(received[rid] * 1e9 - ns) / 1e6 for rid, ns in committed.items()])
    finally:
        uplink.stop()
        gateway.stop()
        platform.stop()
        ledger.close()


def _commit_ns(ledger: Ledger) -> dict[str, int]:
    import sqlite3

    db = sqlite3.connect(ledger.path)
    try:
        return dict(db.execute("SELECT id, committed_ns FROM records"))
    finally:
        db.close()


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wc-bench-") as tmp, PrivateBroker() as broker:
        baseline = bare_paho_rtt(broker)
        e2e = commit_to_platform(broker, Path(tmp))
    return {
        "what": "cart commit -> platform 2xx latency over 200 records, vs bare paho QoS 1 publish->subscribe",
        "commit_to_platform": e2e,
        "baseline_paho_pub_sub": baseline,
        "ratio_p50": round(e2e["p50_ms"] / baseline["p50_ms"], 1),
        "ratio_p99": round(e2e["p99_ms"] / baseline["p99_ms"], 1),
    }
