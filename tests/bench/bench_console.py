"""The operator console (issue 14) at the size of a county: 1,000 carts and 30 days of history.

1. Generation: a fresh gateway store (``SqliteStore`` creates and migrates it) filled by SQL
   ``INSERT … SELECT`` over a recursive CTE (all in SQLite's C loop, not Python tuples: 12 million
   rows in well under the 2–3 min budget) with what the retention (``[history]`` defaults) leaves for
   a report every 30 s: raw rows for the last day (2,880 per cart), per-minute aggregates for days
   1–7 (2 samples each), per-hour aggregates for days 7–30 (120 each), inserted in arrival order
   (time-major, as ``history._roll_raw`` assumes); 1,000 ``devices`` rows with plausible signed-status
   and telemetry JSON (a few offline, a few with a faulty peripheral).  Values are deterministic.
2. A ``GatewayApp`` (PrivateBroker, SimPlatform) on that folder with the console on port 0; a user
   added through ``SqliteUsers`` + ``auth.Passwords`` (as ``wastecart gateway user add``); httpx
   logs in through the form (CSRF token from GET /login).
3. Server time, client wall time over loopback, p50/p95 of ``SAMPLES`` after ``WARM_UP``, through one
   kept-alive httpx client as a browser: GET /healthz on a new connection each (the same-run baseline:
   the stack's floor) and kept alive, GET / (the fleet page), GET /api/fleet, every GET
   route of the console with a ``{cart…}`` parameter (found in the app's routes; none → said so) at
   the console's longest chart range (``detail.RANGES``: 30 days) and the first one at its default,
   and ``store.telemetry_series`` over 30 days directly (what those routes call), each request on
   another cart.
4. Will → offline: a cart PROCESS (the real ``Ledger`` + ``Uplink``, as ``wastecart sim fleet``) is
   SIGKILLed; the broker publishes its signed will; the time until an SSE client of
   ``/api/fleet/events`` sees the cart ``offline`` (and, apart, until the gateway committed it).
5. CPU: ``wastecart gateway run`` as its own process on the same folder, a publisher process sending
   signed telemetry for the 1,000 carts (QoS 0, as carts do; one every 30 ms = each cart every 30 s,
   not compressed); /proc/PID/stat CPU of the gateway in alternating ``CPU_WINDOW_S`` windows with 0
   and with ``SSE_CLIENTS`` fleet streams open (each stream gets the whole fleet at every change).

Run alone: ``python -m tests.bench --only console --out /tmp/console.json``
"""

from __future__ import annotations

import http.client
import importlib
import json
import multiprocessing as mp
import os
import queue
import re
import signal
import socket
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from gateway.app import GatewayApp
from gateway.config import GatewayConfig
from gateway.console.auth import Passwords
from gateway.console.settings import ConsoleConfig
from gateway.store import DB_NAME
from gateway.store.users import SqliteUsers
from sim_devices.platform import SimPlatform
from tests.bench.console_data import (
    BACKLOG_EVERY,
    CARTS,
    HISTORY_DAYS,
    REPORT_S,
    cart_id,
    device_words,
    generate,
    site_of,
)
from tests.procs import spawn, stop
from wastecart.broker import PrivateBroker

SAMPLES = 120  # timed requests per route (≥ 100 as the issue asks)
WARM_UP = 10  # untimed requests per route first (templates compiled, caches filled)
SERIES_POINTS = 500  # points of a 30-day chart (telemetry_series' default)
WILL_REPEATS = 5  # will → offline measured this often
WAIT_S = 30.0  # s: any single wait of the bench beyond this is a failure
SSE_CLIENTS = 10  # open consoles in the CPU comparison
CPU_WINDOW_S = 30.0  # s per CPU window: one whole publishing cycle of the fleet
CPU_ROUNDS = 2  # windows per condition, alternating (0 streams, 10 streams, 0, 10): 60 s each
PUBLISH_WARM_S = 5.0  # s of publishing before the first CPU window (the gateway's first keys loaded)
USER, PASSWORD = "bench", "bench-password-1"
WILL_CART = "BENCH-WILL"


def percentiles(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"n": len(ms), "p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
            "max_ms": round(ordered[-1], 2)}


def add_user(db_path: Path, exists_ok: bool = False) -> None:
    """As ``wastecart gateway user add``: an argon2id hash through the console's ``Passwords``;
    ``exists_ok``: a store kept between runs (the ledger bench's cache) has it from a run before."""
    users = SqliteUsers(db_path)
    try:
        if not users.add_user(USER, "viewer", Passwords().hash(PASSWORD), time.time()) and not exists_ok:
            raise RuntimeError(f"user {USER} exists already")
    finally:
        users.close()


def login(url: str) -> httpx.Client:
    """An httpx client with a session: the login form's CSRF token, then POST /login (303)."""
    client = httpx.Client(base_url=url, timeout=WAIT_S)
    page = client.get("/login")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    if page.status_code != 200 or found is None:
        raise RuntimeError(f"GET /login: {page.status_code}, no CSRF field: the console's login form changed")
    done = client.post("/login", data={"csrf": found.group(1), "user": USER, "password": PASSWORD})
    if done.status_code != 303 or client.get("/api/fleet").status_code != 200:
        raise RuntimeError(f"login as {USER} failed: POST /login answered {done.status_code}")
    return client


def session_cookie(client: httpx.Client) -> str:
    return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


# 3. server time -----------------------------------------------------------------------------------

def timed(call: Callable[[int], object]) -> dict[str, float]:
    for n in range(WARM_UP):
        call(n)
    ms = []
    for n in range(WARM_UP, WARM_UP + SAMPLES):
        t0 = time.perf_counter()
        call(n)
        ms.append((time.perf_counter() - t0) * 1000)
    return percentiles(ms)


def getter(client: httpx.Client, path: str, fresh: bool = False) -> Callable[[int], object]:
    """GET ``path`` ({cart}: another cart each call) through the kept-alive client, as a browser, or
    (``fresh``) on a new connection each with the same cookie: no Nagle / delayed-ACK stall there."""
    url, cookie = client.base_url, session_cookie(client)

    def call(n: int) -> object:
        target = path.format(cart=cart_id(1 + n * 7 % CARTS))
        if not fresh:
            status = client.get(target).status_code
        else:
            conn = http.client.HTTPConnection(url.host, url.port, timeout=WAIT_S)
            try:
                conn.request("GET", target, headers={"Cookie": cookie})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            finally:
                conn.close()
        if status != 200:
            raise RuntimeError(f"GET {target}: {status} (route missing or login lost?)")
        return status
    return call


def cart_routes(app: GatewayApp) -> list[str]:
    """The console's GET routes with one cart parameter (``/carts/{cart}`` …), read from the ASGI app
    itself so that a renamed route is still measured."""
    asgi = getattr(getattr(getattr(getattr(app, "_console", None), "_server", None), "config", None), "app", None)
    paths = []
    for route in getattr(asgi, "routes", []):
        path, methods = getattr(route, "path", ""), getattr(route, "methods", None) or {"GET"}
        params = re.findall(r"\{(\w+)(?::\w+)?\}", path)
        if "GET" in methods and len(params) == 1 and "cart" in params[0]:
            paths.append(re.sub(r"\{\w+(?::\w+)?\}", "{cart}", path))
    return paths


def console_constant(module: str, name: str) -> Any:
    """A constant of the console (``detail.RANGES``, ``live.POLL_S``), None if it has none (yet)."""
    try:
        return getattr(importlib.import_module(f"gateway.console.{module}"), name, None)
    except ImportError:
        return None


def server_times(app: GatewayApp, client: httpx.Client) -> dict[str, Any]:
    """Each route through the kept-alive client (as a browser asks); the baseline is /healthz on a new
    connection each (the stack's floor); the cart routes also on new connections (server time alone)."""
    base = timed(getter(client, "/healthz", fresh=True))
    out: dict[str, Any] = {"healthz_new_connection_baseline": base, "healthz_keep_alive": {
        **timed(getter(client, "/healthz")), "note": "about the new-connection figure with TCP_NODELAY on the "
                                                     "console's socket; ~40 ms (a delayed ACK) without it"}}
    for name, path in (("fleet_page", "/"), ("fleet_api", "/api/fleet")):
        out[name] = {"route": f"GET {path}", **timed(getter(client, path))}
        out[name]["ratio_p95_to_baseline"] = round(out[name]["p95_ms"] / base["p95_ms"], 1)
    out["fleet_api"]["bytes"] = len(client.get("/api/fleet").content)
    ranges = console_constant("detail", "RANGES") or {}
    routes, longest = cart_routes(app), f"?range={max(ranges, key=ranges.__getitem__)}" if ranges else ""
    asks = [(p + longest, False) for p in routes] + [(p + longest, True) for p in routes] + \
        [(p, False) for p in routes[:1] if longest]
    for path, fresh in asks:
        key = f"GET {path}" + (" (new connection each)" if fresh else "")
        try:  # a route of the console that fails is reported, the other figures still taken
            out[key] = timed(getter(client, path, fresh))
        except RuntimeError as exc:
            out[key] = {"error": str(exc)}
    if not routes:
        out["cart_detail_route"] = "none in the console: store.telemetry_series measured directly only"
    now, store = time.time(), app.store
    out["store_telemetry_series_30d"] = {
        "what": f"store.telemetry_series(cart, now - {HISTORY_DAYS} d, now, {SERIES_POINTS}) in this process "
                "(2,880 raw + 8,640 minute + 552 hour rows of the cart)",
        **timed(lambda n: store.telemetry_series(cart_id(1 + n * 7 % CARTS), now - HISTORY_DAYS * 86400, now,
                                                 SERIES_POINTS))}
    out["target_p95_ms"] = 200
    return out


# 4. will -> offline -------------------------------------------------------------------------------

class FleetStream:
    """One SSE client of /api/fleet/events (raw HTTP/1.0: no chunking); ``events`` gets
    (monotonic time, {cart: (state, boot)}) for the carts in ``watch``, or counts only if None."""

    def __init__(self, url: str, cookie: str, watch: set[str] | None = None) -> None:
        host, port = httpx.URL(url).host, httpx.URL(url).port
        self.sock = socket.create_connection((host, port or 80), timeout=WAIT_S)
        self.sock.sendall(f"GET /api/fleet/events HTTP/1.0\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
        self.sock.settimeout(0.5)  # recv wakes up this often to see stop
        self.watch = watch
        self.events: queue.Queue[tuple[float, dict[str, tuple[str, str | None]]]] = queue.Queue()
        self.count = 0
        self.first = threading.Event()
        self.head = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sse", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            if not self.head:
                if b"\r\n\r\n" not in buf:
                    continue
                self.head, buf = buf.split(b"\r\n\r\n", 1)
                if not self.head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
                    self.first.set()
                    return
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                if not event.startswith(b"event: fleet\ndata: "):
                    continue
                at = time.monotonic()
                self.count += 1
                self.first.set()
                if self.watch is not None:
                    carts = json.loads(event.split(b"data: ", 1)[1])["carts"]
                    self.events.put((at, {c["cart"]: (c["state"], c["boot"]) for c in carts
                                          if c["cart"] in self.watch}))

    def wait_first(self) -> None:
        if not self.first.wait(WAIT_S) or not self.head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
            raise RuntimeError(f"GET /api/fleet/events: {self.head[:60]!r}: no live fleet stream")

    def until(self, cart: str, pred: Callable[[str, str | None], bool]) -> float:
        """Monotonic time of the first event in which ``pred(state, boot)`` holds for ``cart``."""
        deadline = time.monotonic() + WAIT_S
        while True:
            at, carts = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if cart in carts and pred(*carts[cart]):
                return at

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def _cart_process(broker: str, folder: str, gateway_key: str) -> None:
    """Child: one cart as a cart agent runs it below the workflow (Ledger + Uplink), until killed."""
    from edge import keys
    from edge.ledger.settings import UplinkSettings
    from edge.ledger.store import Ledger
    from edge.ledger.uplink import Uplink

    ledger = Ledger(Path(folder), WILL_CART, keys.load_or_create(Path(folder)))
    Uplink(ledger, site=site_of(0), broker=broker, settings=UplinkSettings(gateway_keys=(gateway_key,))).start()
    threading.Event().wait()


def will_to_offline(app: GatewayApp, broker: PrivateBroker, stream: FleetStream, folder: Path) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    seen, committed = [], []
    boot: str | None = None
    db = sqlite3.connect(f"file:{app.config.db_path}?mode=ro", uri=True)
    try:
        for _ in range(WILL_REPEATS):
            proc = ctx.Process(target=_cart_process, args=(broker.url, str(folder), app.public_key), daemon=True)
            proc.start()
            def born(state: str, b: str | None, old: str | None = boot) -> bool:
                return state == "online" and b not in (None, old)
            stream.until(WILL_CART, born)
            boot = db.execute("SELECT boot_id FROM devices WHERE cart = ?", (WILL_CART,)).fetchone()[0]
            t0, wall0 = time.monotonic(), time.time()
            os.kill(proc.pid or 0, signal.SIGKILL)  # the process dies: the broker publishes its will
            seen.append(stream.until(WILL_CART, lambda state, _b: state == "offline") - t0)
            since = db.execute("SELECT online, online_since FROM devices WHERE cart = ?", (WILL_CART,)).fetchone()
            committed.append(since[1] - wall0 if since[0] == 0 else float("nan"))
            proc.join(5)
    finally:
        db.close()
    return {"what": "cart process (Ledger + Uplink) SIGKILLed -> its signed will -> gateway -> an SSE client of "
                    "/api/fleet/events sees the cart offline",
            "seconds": [round(s, 3) for s in seen], "max_s": round(max(seen), 3),
            "gateway_committed_after_s": [round(s, 3) for s in committed],
            "console_poll_s": console_constant("live", "POLL_S"), "target_max_s": 2.0}


def phase_in_process(data: Path, keys_dir: Path, broker: PrivateBroker, platform: SimPlatform,
                     root: Path) -> dict[str, Any]:
    config = GatewayConfig(data=data, platform=platform.url, broker=broker.url, client_id="bench-console-gw",
                           cart_keys_dir=keys_dir, console=ConsoleConfig(port=0))
    app = GatewayApp(config)
    # the will cart's key, before its first status: the gateway reads <cart>.pub on first use
    from edge import keys
    key = keys.load_or_create(root / "will-cart")
    (keys_dir / f"{WILL_CART}.pub").write_text(wire.public_key_text(key.public_key()))
    app.start()
    with ExitStack() as done:
        done.callback(app.stop)
        if app.console_url is None or not app.wait_until(lambda s: s.get("subscribed", 0) >= 1, WAIT_S):
            raise RuntimeError("the gateway serves no console or did not subscribe")
        client = login(app.console_url)
        done.callback(client.close)
        times = server_times(app, client)
        stream = FleetStream(app.console_url, session_cookie(client), {WILL_CART})
        done.callback(stream.close)
        stream.wait_first()
        will = will_to_offline(app, broker, stream, root / "will-cart")
    return {"server_time": times, "will_to_offline": will}


# 5. CPU of the gateway process with 0 vs SSE_CLIENTS consoles open ----------------------------------

def make_keys(keys_dir: Path) -> list[bytes]:
    """One Ed25519 key per cart: public in ``keys_dir/<cart>.pub`` (the gateway's cart_keys_dir), the
    raw private bytes returned for the publisher process."""
    raw = []
    for i in range(1, CARTS + 1):
        key = Ed25519PrivateKey.generate()
        (keys_dir / f"{cart_id(i)}.pub").write_text(wire.public_key_text(key.public_key()))
        raw.append(key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption()))
    return raw


def _publisher(broker: str, raw_keys: list[bytes], boots: list[str], ready: Any, stop_at: Any,
               published: Any) -> None:
    """Child: signed telemetry of every cart once per REPORT_S, evenly spread, QoS 0 (as carts send it)."""
    keys = [Ed25519PrivateKey.from_private_bytes(k) for k in raw_keys]
    host, port, _ = wire.broker_address(broker)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-console-telemetry")
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect(host, port)
    client.loop_start()
    connected.wait(WAIT_S)
    ready.set()
    period = REPORT_S / CARTS
    t0, n = time.monotonic(), 0
    while not stop_at.is_set():
        i = n % CARTS + 1
        words = device_words(i)
        body = {**words, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "boot_id": boots[i - 1],
                "seq_head": 400 + i, "backlog": (n // CARTS) % 3 if i % BACKLOG_EVERY == 0 else 0,
                "oldest_unsent_s": None, "disk_free_mb": 20_000 + (i * 131) % 9_000 - n // CARTS,
                "refused": {"ack": 0, "reject": 0, "cmd": 0}, "rejected": 0}
        body["clock_offset_ms"] = (n * 7) % 41 - 20
        payload = wire.sign_message(wire.TELEMETRY_KIND, site_of(i), cart_id(i), body, keys[i - 1])
        client.publish(wire.topic(site_of(i), cart_id(i), wire.TELEMETRY), payload, qos=wire.QOS[wire.TELEMETRY])
        n += 1
        published.value = n
        stop_at.wait(max(0.0, t0 + n * period - time.monotonic()))
    client.disconnect()
    client.loop_stop()


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads) from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_window(pid: int) -> float:
    """CPU seconds of ``pid`` per wall second over CPU_WINDOW_S."""
    cpu0, wall0 = cpu_seconds(pid), time.monotonic()
    threading.Event().wait(CPU_WINDOW_S)
    return (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)


def phase_cpu(data: Path, keys_dir: Path, broker: PrivateBroker, platform: SimPlatform, root: Path,
              raw_keys: list[bytes]) -> dict[str, Any]:
    config = root / "gateway.toml"
    config.write_text(f'data = "{data}"\nplatform = "{platform.url}"\nbroker = "{broker.url}"\n'
                      f'client_id = "bench-console-cpu"\ncart_keys_dir = "{keys_dir}"\n')
    with sqlite3.connect(f"file:{data / DB_NAME}?mode=ro", uri=True) as db:
        boots = [db.execute("SELECT boot_id FROM devices WHERE cart = ?", (cart_id(i),)).fetchone()[0]
                 for i in range(1, CARTS + 1)]
        rows_before = db.execute("SELECT MAX(rowid) FROM telemetry_raw").fetchone()[0]
    db.close()
    gw = spawn("gateway", "run", "--config", str(config), "--port", "0")
    ctx = mp.get_context("spawn")
    ready, stop_at, published = ctx.Event(), ctx.Event(), ctx.Value("q", 0)
    pub = ctx.Process(target=_publisher, args=(broker.url, raw_keys, boots, ready, stop_at, published), daemon=True)
    try:
        url = console_url_of(gw)
        client = login(url)
        cookie = session_cookie(client)
        client.close()
        pub.start()
        if not ready.wait(WAIT_S):
            raise RuntimeError("the telemetry publisher did not connect")
        threading.Event().wait(PUBLISH_WARM_S)
        windows: dict[int, list[float]] = {0: [], SSE_CLIENTS: []}
        events: list[int] = []
        for _ in range(CPU_ROUNDS):
            windows[0].append(cpu_window(gw.pid))
            streams = [FleetStream(url, cookie) for _ in range(SSE_CLIENTS)]
            try:
                for s in streams:
                    s.wait_first()
                windows[SSE_CLIENTS].append(cpu_window(gw.pid))
            finally:
                for s in streams:
                    s.close()
            events.extend(s.count for s in streams)
        sent = published.value
    finally:
        stop_at.set()
        pub.join(10)
        stop(gw)
    with sqlite3.connect(f"file:{data / DB_NAME}?mode=ro", uri=True) as db:
        stored = db.execute("SELECT COUNT(*) FROM telemetry_raw WHERE rowid > ?", (rows_before,)).fetchone()[0]
    db.close()
    idle, watched = (statistics.mean(windows[k]) for k in (0, SSE_CLIENTS))
    return {
        "what": f"`wastecart gateway run` process CPU (/proc/PID/stat) while a publisher process sends signed "
                f"telemetry for {CARTS} carts every {REPORT_S} s (one every {REPORT_S / CARTS * 1000:.0f} ms, QoS 0); "
                f"{CPU_ROUNDS} alternating windows of {CPU_WINDOW_S:g} s with 0 and {SSE_CLIENTS} SSE clients",
        "telemetry_published": sent, "telemetry_stored_in_history": stored,
        "cpu_core_share_0_streams": [round(w, 4) for w in windows[0]],
        f"cpu_core_share_{SSE_CLIENTS}_streams": [round(w, 4) for w in windows[SSE_CLIENTS]],
        "sse_events_per_client": [min(events), max(events)] if events else [],
        "difference_pct_of_a_core": round(100 * (watched - idle), 2),
        "target_pct": 10,
    }


def console_url_of(gw: Any) -> str:
    """The ``console  URL`` line ``gateway run`` prints (a clear error if it never does)."""
    assert gw.stdout is not None
    for line in gw.stdout:
        if line.startswith("console "):
            return str(line.split()[-1])
    raise RuntimeError(f"`wastecart gateway run` ended (code {gw.poll()}) without printing its console URL")


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wc-bench-console-") as tmp, PrivateBroker() as broker, \
            SimPlatform() as platform:
        root = Path(tmp)
        data, keys_dir = root / "gw", root / "keys"
        keys_dir.mkdir()
        raw_keys = make_keys(keys_dir)
        generated = generate(data / DB_NAME, time.time())
        add_user(data / DB_NAME)
        console = phase_in_process(data, keys_dir, broker, platform, root)
        cpu = phase_cpu(data, keys_dir, broker, platform, root, raw_keys)
    return {"generated": {"what": f"{CARTS} carts, {HISTORY_DAYS} days of history for a report every {REPORT_S} s "
                                  "(raw 1 d, minute aggregates to 7 d, hour aggregates to 30 d), by SQL; no scaling",
                          **generated},
            **console, "cpu": cpu}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
