"""End-to-end latency: cart commit → platform 2xx, next to a bare paho publish → subscribe.

Both on the same private mosquitto in the same run.  The cart side is the real ledger (WAL,
synchronous=FULL, Ed25519) and uplink in this process; the gateway (`wastecart gateway run`) and
the simulated platform (`wastecart sim platform`) run as their own processes, as deployed.
Records are committed one at a time at a steady pace (not as a backlog), so each figure is the
latency a collector's handover sees, not a drain rate.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge import keys, wire
from edge.ledger.export import open_read_only
from edge.ledger.settings import UplinkSettings
from edge.ledger.store import Ledger
from edge.ledger.uplink import Uplink
from gateway.identity import load_or_create, public_text
from tests.procs import spawn, stop
from wastecart.broker import PrivateBroker
from wastecart.fleet import handover_body

N = 200  # records (and baseline messages)
PACE_S = 0.02  # one commit every 20 ms: well below capacity, so queueing does not dominate

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
    pad = b"x" * 1300  # the size of a signed 3-bag handover envelope
    for i in range(N):
        t0 = time.perf_counter_ns()
        pub.publish("bench/rtt", f"{i}:".encode() + pad, qos=1)
        with arrived:
            if not arrived.wait_for(partial(got.__contains__, i), timeout=5):
                raise RuntimeError(f"baseline message {i} did not arrive")
        rtts.append((got[i] - t0) / 1e6)
        time.sleep(PACE_S)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return percentiles(rtts)


def commit_to_platform(broker: PrivateBroker, root: Path) -> dict[str, float]:
    """The cart in this process; the platform and the gateway as their own processes."""
    key = keys.load_or_create(root / "cart")
    ledger = Ledger(root / "cart", "BENCH-01", key)
    (root / "keys").mkdir()
    (root / "keys" / "BENCH-01.pub").write_text(wire.public_key_text(key.public_key()))
    platform = spawn("sim", "platform", "--port", "0")
    assert platform.stdout is not None
    platform_url = platform.stdout.readline().split()[-1]
    config = root / "gateway.toml"
    config.write_text(f'data = "{root / "gw"}"\nplatform = "{platform_url}"\n'
                      f'cart_keys_dir = "{root / "keys"}"\nclient_id = "bench-gw"\n')
    gateway_key = public_text(load_or_create(root / "gw"))  # what `gateway keygen` prints; the gateway uses it
    gateway = spawn("gateway", "run", "--config", str(config), "--broker", broker.url)
    # resend_after_s=1: the warm-up record may be published before the gateway has subscribed
    uplink = Uplink(ledger, site="H1", broker=broker.url,
                    settings=UplinkSettings(resend_after_s=1.0, gateway_keys=(gateway_key,)))
    uplink.start()
    try:
        if not uplink.connected.wait(10):
            raise RuntimeError("cart uplink did not connect")
        clock = wire.Clock("ntp", 0)
        # Warm-up record (not measured): acked only once the gateway is up and subscribed.
        ledger.commit("handover", handover_body("BENCH-01", "H1", ledger.head() + 1, datetime.now().astimezone()),
                          now=datetime.now().astimezone(), clock=clock)
        uplink.wake()
        if not uplink.wait_synced(60):
            raise RuntimeError("the gateway did not come up")
        for _ in range(N):
            ledger.commit("handover", handover_body("BENCH-01", "H1", ledger.head() + 1, datetime.now().astimezone()),
                          now=datetime.now().astimezone(), clock=clock)
            uplink.wake()
            time.sleep(PACE_S)
        if not uplink.wait_synced(60):
            raise RuntimeError(f"the gateway acknowledged only {uplink.acked} of {N} records")
        deadline = time.monotonic() + 60
        while True:  # the platform is another process: ask it until all are there (bounded)
            received = {r["id"]: r["first_received_at"] for r in httpx.get(f"{platform_url}/records").json()}
            if len(received) >= N + 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        committed = _commit_ns(ledger)
        if committed.keys() != received.keys():
            raise RuntimeError(f"the platform has {len(received)} records, the cart committed {len(committed)}")
        warm_up = min(committed, key=committed.__getitem__)
        return percentiles([(received[rid] * 1e9 - ns) / 1e6 for rid, ns in committed.items() if rid != warm_up])
    finally:
        uplink.stop()
        ledger.close()
        stop(gateway)
        stop(platform)


def _commit_ns(ledger: Ledger) -> dict[str, int]:
    with open_read_only(ledger.path.parent) as db:
        return {r["id"]: r["committed_ns"] for r in db.table("records").rows_where(select="id, committed_ns")}


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
