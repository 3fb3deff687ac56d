"""Cart-side delivery figures, each next to its baseline measured in the same run:

- durable commits/s of the ledger (WAL, synchronous=FULL, seq + chain + Ed25519 in one
  transaction) vs the disk's fsync rate (write + fsync of a small block, same folder);
- drain rate of a 100,000-record backlog through the real uplink (read, publish QoS 1, mark synced
  on the gateway's ack) vs a bare paho client publishing the same payloads pipelined at QoS 1 to
  the same broker.  The "gateway" here is a bare responder that acks every record at once (signed
  with a key of its own, which the uplink is given as its gateway key), so the figure is the cart's
  drain machinery with its ack checks, not the gateway's verification (see bench_gateway);
- the same drain over TLS with client certificates (issue 12): a site PKI (``wastecart.pki``), the
  broker from ``wastecart broker config`` (TLS listener, client certificates, per-client ACL, CRL),
  the cart and the responder each with its own certificate; vs the plaintext drain above (target
  ≥ 0.8);
- what believing one ack costs the cart (µs): ``wire.open_message`` (size, JSON, schema bounds,
  Ed25519 verify) + the ledger's hash check (``hash_at`` on the 100,000-record ledger and
  ``trust.decide_ack``) vs the canonical encoding of the same ack message.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.ledger import trust
from edge.ledger.export import open_read_only
from edge.ledger.settings import UplinkSettings
from edge.ledger.store import Ledger
from edge.ledger.uplink import Uplink
from edge.mqtt import tcp_nodelay
from edge.tls import TlsSettings
from wastecart import pki
from wastecart.broker import PrivateBroker
from wastecart.fleet import handover_body

COMMITS = 2_000  # single-record transactions timed
FSYNCS = 2_000
BACKLOG = 100_000  # records drained
WINDOW = 100  # QoS 1 messages in flight, for both the bare client and the uplink (DESIGN: 20-100 best)
ACK_EVERY_S = 0.005  # the responder acks what it has seen every 5 ms (a gateway batches like this)
ACKS = 5_000  # acks verified for the per-ack cost


def fsync_rate(folder: Path) -> float:
    path = folder / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        t0 = time.perf_counter()
        for i in range(FSYNCS):
            os.pwrite(fd, b"x" * 512, (i % 8) * 512)
            os.fsync(fd)
        return FSYNCS / (time.perf_counter() - t0)
    finally:
        os.close(fd)
        path.unlink()


def commit_rate(folder: Path) -> float:
    ledger = Ledger(folder / "commits", "BENCH-C", Ed25519PrivateKey.generate())
    clock = wire.Clock("ntp", 0)
    bodies = [handover_body("BENCH-C", "H1", n, datetime.now().astimezone()) for n in range(COMMITS)]
    try:
        t0 = time.perf_counter()
        for body in bodies:
            ledger.commit("handover", body, now=datetime.now().astimezone(), clock=clock)
        return COMMITS / (time.perf_counter() - t0)
    finally:
        ledger.close()


def fill_backlog(folder: Path, n: int) -> Ledger:
    """Commit ``n`` real records fast.  Filling is setup, not measured: the ledger's connection is
    switched to synchronous=OFF for it (private access, bench only), then back to FULL."""
    ledger = Ledger(folder, "BENCH-D", Ed25519PrivateKey.generate())
    clock = wire.Clock("ntp", 0)
    ledger._db.execute("PRAGMA synchronous=OFF")
    for i in range(n):
        ledger.commit("handover", handover_body("BENCH-D", "H1", i, datetime.now().astimezone()),
                      now=datetime.now().astimezone(), clock=clock)
    ledger._db.execute("PRAGMA synchronous=FULL")
    return ledger


def _client(broker: PrivateBroker, name: str) -> mqtt.Client:
    host, port, _ = wire.broker_address(broker.url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name)
    c.on_socket_open = tcp_nodelay
    c.max_inflight_messages_set(100)
    c.connect(host, port)
    c.loop_start()
    return c


def bare_paho_rate(broker: PrivateBroker, payloads: list[bytes]) -> float:
    """Pipelined QoS 1 publishing by a bare client, at most ``WINDOW`` awaiting their PUBACK (more
    fails: 16-bit message ids, and paho rescans its queue per PUBACK); done at the last PUBACK."""
    c = _client(broker, "bench-bare")
    done = threading.Event()
    window = threading.Semaphore(WINDOW)
    left = [len(payloads)]

    def on_publish(*_: Any) -> None:
        window.release()
        left[0] -= 1
        if left[0] == 0:
            done.set()

    c.on_publish = on_publish
    try:
        t0 = time.perf_counter()
        for p in payloads:
            window.acquire()
            c.publish("wc/v1/H1/BENCH-BARE/record", p, qos=1)
        if not done.wait(300):
            raise RuntimeError(f"bare paho: {left[0]} PUBACKs missing")
        return len(payloads) / (time.perf_counter() - t0)
    finally:
        c.disconnect()
        c.loop_stop()


def _responder(broker_url: str, cart: str, key_raw: bytes, ready: Any, stop: Any,
               tls: tuple[str, str, str] | None) -> None:
    """Child process standing in for the gateway: acks every record it sees (upto_seq with that
    record's hash), batched and signed with the gateway key ``key_raw``; ``tls``: (CA, its
    certificate, its key) for a TLS broker."""
    key = Ed25519PrivateKey.from_private_bytes(key_raw)
    seen: queue.Queue[tuple[int, str]] = queue.Queue()
    host, port, _ = wire.broker_address(broker_url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-acker")
    c.on_socket_open = tcp_nodelay
    c.on_subscribe = lambda *_: ready.set()

    def on_message(_c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        env = json.loads(m.payload)
        seen.put((env["seq"], env["hash"]))

    c.on_message = on_message
    if tls is not None:
        c.tls_set(ca_certs=tls[0], certfile=tls[1], keyfile=tls[2])
    c.connect(host, port)
    c.subscribe(f"wc/v1/H1/{cart}/record", qos=1)
    c.loop_start()
    upto = (0, wire.GENESIS_HASH)
    while not stop.wait(ACK_EVERY_S):
        got = []
        while True:
            try:
                got.append(seen.get_nowait())
            except queue.Empty:
                break
        if got:
            upto = max(upto, *got)
            body = wire.ack_body(upto[0], upto[1], [])
            c.publish(f"wc/v1/H1/{cart}/ack", wire.sign_message(wire.ACK_KIND, "H1", cart, body, key), qos=1)
    c.disconnect()
    c.loop_stop()


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def drain_rate(broker: PrivateBroker, ledger: Ledger, tls: BenchTls | None = None) -> float:
    """The real uplink drains the backlog; a responder process acks every seq it has seen.  With
    ``tls`` both connect with their own client certificates (the cart's CN is its cart id)."""
    gateway = Ed25519PrivateKey.generate()
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    responder_tls = None if tls is None else tls.files(tls.gateway)
    responder = ctx.Process(target=_responder, args=(broker.url, ledger.cart, _raw(gateway), ready, stop,
                                                     responder_tls), daemon=True)
    responder.start()
    if not ready.wait(30):
        raise RuntimeError("responder not subscribed")
    # drain_rate=0: the machinery's own rate (a cart paces a backlog to 500/s by default)
    settings = UplinkSettings(window=WINDOW, drain_rate=0, gateway_keys=(wire.public_key_text(gateway.public_key()),),
                              tls=None if tls is None else tls.settings(ledger.cart))
    uplink = Uplink(ledger, site="H1", broker=broker.url, settings=settings)
    try:
        t0 = time.perf_counter()
        uplink.start()
        if not uplink.wait_synced(600):
            raise RuntimeError(f"drain incomplete: {ledger.unsynced_count()} unsynced")
        return ledger.head() / (time.perf_counter() - t0)
    finally:
        uplink.stop()
        stop.set()
        responder.join(30)


class BenchTls:
    """A site PKI for the TLS drain: the cart (CN = its cart id) and the responder (a gateway)."""

    gateway = "BENCH-GW"

    def __init__(self, root: Path, cart: str) -> None:
        self.dir = root / "pki"
        pki.init(self.dir, "H1")
        pki.issue(self.dir, cart, "cart")
        pki.issue(self.dir, self.gateway, "gateway")

    def files(self, client: str) -> tuple[str, str, str]:
        cert, key = pki.client_files(self.dir, client)
        return str(self.dir / "ca.crt"), str(cert), str(key)

    def settings(self, client: str) -> TlsSettings:
        return pki.tls_settings(self.dir, client)


def ack_cost(ledger: Ledger) -> tuple[float, float]:
    """(µs to believe one ack, µs to canonically encode the same ack message): ``ACKS`` acks for
    seqs spread over the whole ledger, each opened, its seq's hash read and the decision made."""
    gateway = Ed25519PrivateKey.generate()
    keys = [gateway.public_key()]
    head = ledger.head()
    step = max(1, head // ACKS)
    acks = []
    for n in range(ACKS):
        seq = 1 + (n * step) % head
        upto_hash = ledger.hash_at(seq)
        assert upto_hash is not None
        acks.append(wire.sign_message(wire.ACK_KIND, "H1", ledger.cart, wire.ack_body(seq, upto_hash, []), gateway))
    messages = [json.loads(a) for a in acks]
    t0 = time.perf_counter()
    for payload in acks:
        _kind, body = wire.open_message(payload, kinds=(wire.ACK_KIND, wire.REJECT_KIND), site="H1",
                                        cart=ledger.cart, keys=keys)
        decision = trust.decide_ack(body, own_hash=ledger.hash_at(body["upto_seq"]), high_water=head, id_seqs={})
        if decision.refused:
            raise RuntimeError(decision.refused)
    verify = (time.perf_counter() - t0) / ACKS * 1e6
    t0 = time.perf_counter()
    for msg in messages:
        wire.canonical(msg)
    encode = (time.perf_counter() - t0) / ACKS * 1e6
    return verify, encode


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wc-bench-cart-", dir=os.environ.get("WASTECART_BENCH_DIR")) as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the TLS broker (mosquitto, as its own user when we are root) reads its folder
        fsyncs = fsync_rate(root)
        commits = commit_rate(root)
        ledger = fill_backlog(root / "drain", BACKLOG)
        verify_us, encode_us = ack_cost(ledger)
        with open_read_only(ledger.path.parent) as db:
            payloads = [r["envelope"].encode() for r in db.table("records").rows_where(select="envelope",
                                                                                        order_by="seq")]
        with PrivateBroker() as broker:
            bare = bare_paho_rate(broker, payloads)
            drain = drain_rate(broker, ledger)
        ledger.close()
        tls_ledger = fill_backlog(root / "drain-tls", BACKLOG)
        tls = BenchTls(root, tls_ledger.cart)
        with PrivateBroker.for_pki(tls.dir, root / "broker-tls") as broker:
            tls_drain = drain_rate(broker, tls_ledger, tls)
        tls_ledger.close()
    return {
        "commits": {"what": "durable single-record commits/s (WAL, synchronous=FULL, chain + Ed25519) vs "
                            "write+fsync/s of the same disk", "commits_per_s": round(commits),
                    "fsyncs_per_s": round(fsyncs), "ratio": round(commits / fsyncs, 2)},
        "drain": {"what": f"{BACKLOG:,} record backlog drained by the uplink (acked by a bare responder) vs "
                          "bare paho pipelined QoS 1 publish of the same payloads, same broker",
                  "records": BACKLOG, "drain_per_s": round(drain), "bare_paho_per_s": round(bare),
                  "ratio": round(drain / bare, 2), "goal_ratio": 0.9},
        "drain_tls": {"what": f"the same {BACKLOG:,} record drain over TLS with client certificates (generated "
                              "broker config: client certificates, per-client ACL, CRL) vs the plaintext drain "
                              "above", "records": BACKLOG, "tls_drain_per_s": round(tls_drain),
                      "plain_drain_per_s": round(drain), "ratio": round(tls_drain / drain, 2), "goal_ratio": 0.8},
        "ack_verification": {"what": "µs for the cart to believe one signed ack (wire.open_message: bounds + "
                                     "Ed25519 verify; the hash of its record at upto_seq from the "
                                     f"{BACKLOG:,}-record ledger; trust.decide_ack) vs µs to canonically encode "
                                     "the same ack message", "acks": ACKS, "verify_us_per_ack": round(verify_us, 1),
                             "canonical_encode_us_per_ack": round(encode_us, 1),
                             "ratio": round(verify_us / encode_us, 1)},
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
