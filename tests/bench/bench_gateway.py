"""Gateway throughput: records validated, stored and acknowledged per second by one gateway process.

Next to a baseline measured in the same run on the same private mosquitto: the same payloads
published the same way (pipelined QoS 1 from a separate process) to a bare paho subscriber.

- 20,000 signed handover records of 10 carts (``wire.unsigned_envelope`` + ``wire.seal``, chained
  per cart, ~1 kB each) are built before anything is timed and handed to a publisher PROCESS
  (its own GIL) that publishes them as fast as paho's pipelining allows (in-flight window 100).
- gateway: ``wastecart gateway run`` as its own process, as deployed, with a simulated platform
  process; the figure is first publish -> last application ack (``wc/v1/+/+/ack``) covering every
  record id.  Every record goes through topic, schema, Ed25519, chain, dedupe, commit, ack.
- baseline: first publish -> last message received by a bare paho QoS 1 subscriber.
- ack signing (issue 11): the same gateway run twice more in a row on fresh carts, once as deployed
  (acks signed: schema check of the body + Ed25519) and once with ``WASTECART_BENCH_UNSIGNED_ACKS=1``
  (+ ``WASTECART_BENCH=1``; benchmark only, the gateway refuses it otherwise): the same messages with
  an empty ``sig``.  ``ack_signing_ratio`` = signed per s / unsigned per s (target >= 0.9).  The
  order alternates (unsigned, signed, unsigned, signed) and the best of each is kept, so neither
  side gets the warmer machine.

- TLS (issue 12): the gateway as deployed (workers 0, forwarding) through a broker from ``wastecart
  broker config`` (TLS, client certificates, per-client ACL, CRL) vs the same through a plaintext
  broker, alternating, best of each: ``tls_ratio`` (the bench's own publisher and ack watcher get
  two bench-only ACL lines: a real cart may publish only its own topics).

``run() -> dict`` is what ``python -m tests.bench`` calls; ``python -m tests.bench.bench_gateway``
runs it alone and prints the JSON.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import pickle
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.mqtt import tcp_nodelay
from tests.procs import spawn, stop
from wastecart import pki
from wastecart.broker import PrivateBroker, free_port
from wastecart.fleet import handover_body

CARTS = 10  # carts publishing at once
PER_CART = 2_000  # records per cart (20,000 in all)
SITE = "H1"
WINDOW = 100  # publisher's in-flight QoS 1 window (DESIGN §3: 20-100 is the sweet spot)
TIMEOUT_S = 300.0  # give up on a phase after this long
WARMUP_EVERY_S = 1.0  # re-publish the warm-up record until the gateway (subscribing) acks it
TLS_GATEWAY, TLS_PUBLISHER, TLS_WATCHER = "BENCH-GW", "BENCH-PUB", "BENCH-ACKS"  # TLS identities


@dataclass(frozen=True)
class Access:
    """How the bench's own clients reach the broker: plaintext, or TLS as a bench identity of ``pki``."""

    url: str
    pki: Path | None = None

    def connect(self, client: mqtt.Client, who: str) -> None:
        host, port, _ = wire.broker_address(self.url)
        if self.pki is not None:
            cert, key = pki.client_files(self.pki, who)
            client.tls_set(ca_certs=str(self.pki / "ca.crt"), certfile=str(cert), keyfile=str(key))
        client.connect(host, port)

    def gateway_toml(self, client_id: str) -> tuple[str, str]:
        """The gateway's broker settings (top-level keys, sections): its URL and, over TLS, its own
        certificate (the broker makes its CN its client id)."""
        if self.pki is None:
            return f'broker = "{self.url}"\nclient_id = "{client_id}"\n', ""
        cert, key = pki.client_files(self.pki, TLS_GATEWAY)
        return (f'broker = "{self.url}"\nclient_id = "{TLS_GATEWAY}"\n',
                f'[tls]\nca = "{self.pki / "ca.crt"}"\ncert = "{cert}"\nkey = "{key}"\n')


def tls_broker(root: Path) -> PrivateBroker:
    """A broker from ``wastecart broker config`` for a fresh site PKI (not started), plus the bench's
    own ACL lines: its publisher writes every cart's records, its watcher reads every ack."""
    pki_dir = root / "pki"
    pki.init(pki_dir, SITE)
    pki.issue(pki_dir, TLS_GATEWAY, "gateway")
    for who in (TLS_PUBLISHER, TLS_WATCHER):
        pki.issue(pki_dir, who, "operator")
    broker = PrivateBroker.for_pki(pki_dir, root / "broker-tls")
    with (root / "broker-tls" / "acl").open("a", encoding="utf-8") as acl:
        acl.write(f"\n# bench only\nuser {TLS_PUBLISHER}\ntopic write {wire.TOPIC_ROOT}/{SITE}/+/{wire.RECORD}\n"
                  f"user {TLS_WATCHER}\ntopic read {wire.TOPIC_ROOT}/{SITE}/+/{wire.ACK}\n")
    return broker


def tls_vs_plain(plain: PrivateBroker, root: Path, keys_dir: Path, rounds: int = 2) -> dict[str, Any]:
    """The deployed gateway through a TLS broker vs a plaintext one, alternating, fresh carts, best of each."""
    best: dict[bool, dict[str, Any]] = {}
    with tls_broker(root) as secure:
        for n in range(rounds):
            for tls in (False, True):
                access = Access(secure.url, root / "pki") if tls else Access(plain.url)
                messages, ids = build_records(keys_dir, prefix=f"BENCH-{'T' if tls else 'P'}{n}")
                got = gateway(access, messages, ids, root, keys_dir, tag=f"-{'tls' if tls else 'plain'}{n}")
                if tls not in best or got["per_s"] > best[tls]["per_s"]:
                    best[tls] = got
    return {"tls": best[True], "plain": best[False], "tls_ratio": round(best[True]["per_s"] / best[False]["per_s"], 3)}


def build_records(keys_dir: Path, prefix: str = "BENCH-") -> tuple[list[tuple[str, bytes]], set[str]]:
    """(topic, payload) interleaved across carts (each cart in seq order), and every record id."""
    per_cart: list[list[tuple[str, bytes]]] = []
    ids: set[str] = set()
    for c in range(CARTS):
        cart = f"{prefix}{c:02d}"
        key = Ed25519PrivateKey.generate()
        (keys_dir / f"{cart}.pub").write_text(wire.public_key_text(key.public_key()))
        prev, out = wire.GENESIS_HASH, []
        for seq in range(1, PER_CART + 1):
            env = wire.seal(wire.unsigned_envelope(
                record_id=wire.uuid7(), cart=cart, seq=seq, created_at=datetime.now(UTC).isoformat(),
                clock=wire.Clock("ntp", seq), rtype="handover", body=handover_body(cart, SITE, seq, datetime.now(UTC)),
                prev_hash=prev), key)
            prev = env["hash"]
            ids.add(env["id"])
            out.append((wire.topic(SITE, cart, wire.RECORD), wire.encode(env)))
        per_cart.append(out)
    return [item for row in zip(*per_cart, strict=True) for item in row], ids


def _publisher(access: Access, path: str, topic_override: str | None, started: Any, go: Any) -> None:
    """Child process: publish every (topic, payload) in ``path`` pipelined; put the start time."""
    messages: list[tuple[str, bytes]] = pickle.loads(Path(path).read_bytes())
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{time.time_ns()}")
    client.on_socket_open = tcp_nodelay
    client.on_connect = lambda *_: connected.set()
    client.max_inflight_messages_set(WINDOW)
    client.max_queued_messages_set(0)  # unbounded: paho queues, its loop sends within the window
    access.connect(client, TLS_PUBLISHER)
    client.loop_start()
    connected.wait(30)
    go.wait(TIMEOUT_S)
    t0 = time.monotonic()
    started.put(t0)
    last = None
    for topic, payload in messages:
        last = client.publish(topic_override or topic, payload, qos=1)
    if last is not None:
        last.wait_for_publish(TIMEOUT_S)
    client.disconnect()
    client.loop_stop()


def _start_publisher(access: Access, messages: list[tuple[str, bytes]], tmp: Path,
                     topic: str | None) -> tuple[Any, Any, Any]:
    path = tmp / "messages.pickle"
    path.write_bytes(pickle.dumps(messages))
    ctx = mp.get_context("spawn")
    started, go = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_publisher, args=(access, str(path), topic, started, go), daemon=True)
    proc.start()
    return proc, started, go


def _client(access: Access, name: str, subscription: str, inbox: queue.Queue[bytes]) -> mqtt.Client:
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name)
    client.on_socket_open = tcp_nodelay
    client.on_connect = lambda c, *_: c.subscribe(subscription, qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda _c, _u, msg: inbox.put(bytes(msg.payload))
    access.connect(client, TLS_WATCHER)
    client.loop_start()
    if not subscribed.wait(30):
        raise RuntimeError(f"{name}: no SUBACK")
    return client


def baseline(broker: PrivateBroker, messages: list[tuple[str, bytes]], tmp: Path) -> dict[str, Any]:
    """Bare paho: the same payloads, pipelined QoS 1, to one subscriber; messages/s."""
    inbox: queue.Queue[bytes] = queue.Queue()
    sub = _client(Access(broker.url), "bench-base-sub", "bench/base", inbox)
    proc, started, go = _start_publisher(Access(broker.url), messages, tmp, "bench/base")
    try:
        go.set()
        t0 = started.get(timeout=60)
        for _ in range(len(messages)):
            inbox.get(timeout=TIMEOUT_S)
        seconds = time.monotonic() - t0
    finally:
        proc.join(60)
        sub.disconnect()
        sub.loop_stop()
    return {"messages": len(messages), "seconds": round(seconds, 2), "per_s": round(len(messages) / seconds)}


def _ack_ids(payload: bytes) -> list[str]:
    """The ids of an ack (signed or, in the unsigned comparison, not); [] for a reject.  Not verified:
    the tests verify acks; here the subscriber must not be the bottleneck."""
    msg = wire.peek_message(payload)
    return list(msg["body"]["ids"]) if msg["kind"] == wire.ACK_KIND else []


def _warm_up(access: Access, keys_dir: Path, acks: queue.Queue[bytes]) -> None:
    """Publish one record of a warm-up cart until the gateway has subscribed and acks it."""
    key = Ed25519PrivateKey.generate()
    (keys_dir / "BENCH-WARM.pub").write_text(wire.public_key_text(key.public_key()))
    env = wire.seal(wire.unsigned_envelope(
        record_id=wire.uuid7(), cart="BENCH-WARM", seq=1, created_at=datetime.now(UTC).isoformat(),
        clock=wire.Clock("ntp", 1), rtype="handover", body=handover_body("BENCH-WARM", SITE, 1, datetime.now(UTC)),
        prev_hash=wire.GENESIS_HASH), key)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-warm")
    access.connect(pub, TLS_PUBLISHER)
    pub.loop_start()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            pub.publish(wire.topic(SITE, "BENCH-WARM", wire.RECORD), wire.encode(env), qos=1)
            try:
                while True:
                    if env["id"] in _ack_ids(acks.get(timeout=WARMUP_EVERY_S)):
                        return
            except queue.Empty:
                continue
        raise RuntimeError("the gateway did not come up")
    finally:
        pub.disconnect()
        pub.loop_stop()


def gateway(access: Access, messages: list[tuple[str, bytes]], ids: set[str], root: Path,
            keys_dir: Path, profile: bool = False, workers: int = 0, forward: bool = True,
            signed: bool = True, tag: str = "") -> dict[str, Any]:
    """``wastecart gateway run`` as its own process: first publish -> every id acked.

    ``forward=False`` points the gateway at a closed port: its circuit breaker then keeps the
    forwarder idle, which shows what forwarding in the same process costs the ingest rate.
    ``signed=False``: acks go out unsigned (benchmark-only environment switch)."""
    platform = spawn("sim", "platform", "--port", "0")
    assert platform.stdout is not None
    platform_url = platform.stdout.readline().split()[-1] if forward else f"http://127.0.0.1:{free_port()}"
    name = f"{workers}-{'fwd' if forward else 'nofwd'}{'' if signed else '-unsigned'}{tag}"
    config = root / f"gateway-{name}.toml"
    top, sections = access.gateway_toml(f"bench-gw-{name}")
    config.write_text(f'data = "{root / f"gw-{name}"}"\nplatform = "{platform_url}"\n'
                      f'cart_keys_dir = "{keys_dir}"\n{top}[ingest]\nworkers = {workers}\n{sections}')
    env = dict(os.environ)
    if not signed:
        env.update({"WASTECART_BENCH": "1", "WASTECART_BENCH_UNSIGNED_ACKS": "1"})
    gw = spawn("gateway", "run", "--config", str(config), env=env)
    acks: queue.Queue[bytes] = queue.Queue()
    sub = _client(access, "bench-acks", f"{wire.TOPIC_ROOT}/+/+/{wire.ACK}", acks)
    spy = None
    try:
        _warm_up(access, keys_dir, acks)
        if profile:
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(gw.pid),
                                    "-o", str(root / "gateway-profile.txt"), "-f", "raw", "-r", "200"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proc, started, go = _start_publisher(access, messages, root, None)
        go.set()
        t0 = started.get(timeout=60)
        missing = set(ids)
        while missing:
            missing.difference_update(_ack_ids(acks.get(timeout=TIMEOUT_S)))
        seconds = time.monotonic() - t0
        proc.join(60)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        sub.disconnect()
        sub.loop_stop()
        stop(gw)
        stop(platform)
    return {"records": len(ids), "workers": workers, "forwarding": forward, "signed_acks": signed,
            "seconds": round(seconds, 2), "per_s": round(len(ids) / seconds)}


def ack_signing(access: Access, root: Path, keys_dir: Path, rounds: int = 2) -> dict[str, Any]:
    """Signed vs unsigned acks, same settings, alternating, fresh carts each run; best of each."""
    best: dict[bool, dict[str, Any]] = {}
    for n in range(rounds):
        for signed in (False, True):
            messages, ids = build_records(keys_dir, prefix=f"BENCH-{'S' if signed else 'U'}{n}")
            got = gateway(access, messages, ids, root, keys_dir, signed=signed, tag=f"-{n}")
            if signed not in best or got["per_s"] > best[signed]["per_s"]:
                best[signed] = got
    return {"signed": best[True], "unsigned": best[False],
            "ack_signing_ratio": round(best[True]["per_s"] / best[False]["per_s"], 3), "target_ratio": 0.9}


def run(profile: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wc-bench-gw-") as tmp, PrivateBroker() as broker:
        root = Path(tmp)
        root.chmod(0o755)  # the TLS broker (mosquitto, as its own user when we are root) reads its folder
        plain = Access(broker.url)
        keys_dir = root / "keys"
        keys_dir.mkdir()
        messages, ids = build_records(keys_dir)
        size = sum(len(p) for _, p in messages) // len(messages)
        base = baseline(broker, messages, root)
        gw = gateway(plain, messages, ids, root, keys_dir, profile)
        # A fresh set of carts for the second run: the first gateway's store already holds these.
        messages2, ids2 = build_records(keys_dir, prefix="BENCH-W")
        cores = os.cpu_count() or 1
        pooled = gateway(plain, messages2, ids2, root, keys_dir, workers=cores)
        messages3, ids3 = build_records(keys_dir, prefix="BENCH-N")
        ingest_only = gateway(plain, messages3, ids3, root, keys_dir, workers=cores, forward=False)
        signing = ack_signing(plain, root, keys_dir)
        tls = tls_vs_plain(broker, root, keys_dir)
        if profile:
            out = Path("gateway-profile.txt")
            out.write_text((root / "gateway-profile.txt").read_text())
    return {
        "what": f"{len(ids)} signed records of {CARTS} carts (~{size} B), pipelined QoS 1 from another process: "
                "gateway (own process) validated+stored+acked per s vs bare paho subscriber messages/s",
        "gateway": gw,
        "gateway_with_workers": pooled,
        "ingest_only_with_workers": ingest_only,
        "baseline_paho_subscriber": base,
        "ratio": round(gw["per_s"] / base["per_s"], 2),
        "ratio_with_workers": round(pooled["per_s"] / base["per_s"], 2),
        "ratio_ingest_only": round(ingest_only["per_s"] / base["per_s"], 2),
        "ack_signing": signing,
        "ack_signing_ratio": signing["ack_signing_ratio"],
        "tls": {"what": "the gateway (workers 0, forwarding) through a TLS broker with client certificates, "
                        "per-client ACL and CRL vs through a plaintext broker; best of 2 each, alternating",
                **tls},
        "tls_ratio": tls["tls_ratio"],
        "goal_per_s": 5_000,
    }


if __name__ == "__main__":
    print(json.dumps(run(profile="--profile" in sys.argv), indent=2))
