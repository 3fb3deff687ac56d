"""The kiosk server under attack (issue 13), at its deployed limits (32 connections, 4 streams,
10 s read timeout):

- a legit ``GET /api/state`` (a new connection each, as the page's fetches): p50/p95 with no attack,
  then while another process keeps ``SLOW_SOCKETS`` slowloris sockets (a partial head, a byte a
  second) and ``STREAM_ATTEMPTS`` event-stream sockets against it, in two manners:
  ``slowloris`` reopens what the server closed once a second (as slowloris.py does, each cycle),
  ``hammer`` reopens it at once (tens of thousands of connections a second on loopback).  Per
  attack: the share answered 200 (else 503), p50/p95 of the answers and their ratio to the
  baseline, and the time to a 200 when a 503 is retried at once (as the page's next tap would);
- the server process's threads at most (sampled), its CPU during each attack (``ATTACK_CPU_S``
  before the legit requests, which run in this process too), and the refusals;
- at rest with ``max_streams`` pages connected for ``IDLE_S``: process CPU seconds per wall second
  and threads; and the RSS the server costs to start.

Run alone: ``python -m tests.bench --only kiosk_hostile --out /tmp/kiosk.json``
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import selectors
import socket
import statistics
import threading
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from edge.kiosk.guard import REFUSED_KINDS
from edge.kiosk.server import KioskServer
from edge.kiosk.settings import KioskSettings
from tests.browser.screens import STOP, ScriptedSource

SAMPLES = 200  # legit requests per phase
SLOW_SOCKETS = 300  # slowloris sockets the attacker keeps open
STREAM_ATTEMPTS = 300  # event-stream sockets the attacker keeps open
DRIBBLE_S = 1.0  # s between the bytes a slowloris socket sends
WARM_UP_S = 2.0  # s of attack before the legit requests start (every socket tried at least once)
RETRY_CAP_S = 2.0  # s a "page" retries a 503 at once before giving up
RETRIES = 10  # page-like sequences (retry until 200) measured per attack (at most RETRIES × RETRY_CAP_S)
MANNERS = {"slowloris": DRIBBLE_S, "hammer": 0.0}  # s an attacker waits before reopening what was closed
IDLE_S = 5.0  # s of rest measured with max_streams pages connected
QUIET_S = 0.3  # s without any change that tells the attack is over
ATTACK_CPU_S = 2.0  # s of attack measured with no legit request (the server's CPU alone)
SETTINGS = KioskSettings(port=0)  # the deployed limits on a free port


def percentiles(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {"n": 0}
    ordered = sorted(ms)
    return {"n": len(ms), "p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)}


def get_state(port: int) -> tuple[int, float]:
    """One legit request on a new connection: (status, ms); status 0 if the connection failed."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", "/api/state")
        resp = conn.getresponse()
        resp.read()
        status = resp.status
    except OSError:
        status = 0
    finally:
        conn.close()
    return status, (time.perf_counter() - t0) * 1000


def legit(port: int, n: int) -> dict[str, Any]:
    answers = [get_state(port) for _ in range(n)]
    ok = [ms for status, ms in answers if status == 200]
    return {**percentiles([ms for _, ms in answers]), "ok_share": round(len(ok) / n, 3), "ok": percentiles(ok),
            "statuses": {str(s): sum(1 for a, _ in answers if a == s) for s in sorted({a for a, _ in answers})}}


def time_to_ok(port: int, n: int) -> dict[str, Any]:
    """Retry a 503 at once until a 200 (at most ``RETRY_CAP_S``): how long the page waits for an answer."""
    waits: list[float] = []
    gave_up = 0
    for _ in range(n):
        t0 = time.perf_counter()
        while (status := get_state(port)[0]) != 200 and time.perf_counter() - t0 < RETRY_CAP_S:
            pass
        if status == 200:
            waits.append((time.perf_counter() - t0) * 1000)
        else:
            gave_up += 1
    return {**percentiles(waits), "gave_up": gave_up}


# the attacker (its own process: its work is not the server's CPU) ---------------------------------

def _attack(port: int, reopen_after_s: float, ready: Event, stop: Event) -> None:
    """Keep SLOW_SOCKETS dribbling partial heads and STREAM_ATTEMPTS streams open; reopen what the
    server closed after ``reopen_after_s`` (0: at once)."""
    sel = selectors.DefaultSelector()
    slow_head = f"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode()
    stream_head = f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    heads: dict[socket.socket, bytes] = {}  # every open socket → the head it sends
    dribbling: set[socket.socket] = set()  # slowloris sockets connected, their head sent
    closed: list[bytes] = []  # heads of the sockets the server closed, to open again

    def open_one(head: bytes) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        heads[sock] = head
        sel.register(sock, selectors.EVENT_WRITE)

    def reopen(sock: socket.socket) -> None:
        sel.unregister(sock)
        dribbling.discard(sock)
        sock.close()
        if reopen_after_s:
            closed.append(heads.pop(sock))
        else:
            open_one(heads.pop(sock))

    for _ in range(SLOW_SOCKETS):
        open_one(slow_head)
    for _ in range(STREAM_ATTEMPTS):
        open_one(stream_head)
    ready_at = time.monotonic() + WARM_UP_S
    next_dribble = time.monotonic() + DRIBBLE_S
    while not stop.is_set():
        for key, events in sel.select(timeout=0.1):
            sock = next(s for s in (key.fileobj,) if isinstance(s, socket.socket))
            try:
                if events & selectors.EVENT_WRITE:  # connected: send the head, then read what comes
                    sock.send(heads[sock])
                    sel.modify(sock, selectors.EVENT_READ)
                    if heads[sock] is slow_head:
                        dribbling.add(sock)
                    continue
                if sock.recv(65536):
                    continue
            except OSError:
                pass
            reopen(sock)  # the server closed it (503, 408, cut, stream ended): again
        now = time.monotonic()
        if now >= next_dribble:
            next_dribble = now + DRIBBLE_S
            for sock in list(dribbling):
                try:
                    sock.send(b"a")
                except OSError:
                    reopen(sock)
            while closed:
                open_one(closed.pop())
        if now >= ready_at:
            ready.set()
    for sock in heads:
        sock.close()


# the server process's own figures ------------------------------------------------------------------

def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class ThreadPeak:
    """The most threads this process had, sampled every 20 ms while running (the sampler not counted)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, threading.active_count() - 1)

    def __enter__(self) -> ThreadPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def idle_with_pages(k: KioskServer) -> dict[str, Any]:
    pages = []
    for _ in range(SETTINGS.max_streams):
        sock = socket.create_connection(("127.0.0.1", k.port), timeout=5)
        sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{k.port}\r\n\r\n".encode())
        seen = b""
        while b"event: state" not in seen:
            seen += sock.recv(65536)
        pages.append(sock)
    try:
        cpu0, wall0 = time.process_time(), time.monotonic()
        threading.Event().wait(IDLE_S)
        cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
        return {"pages": k.clients, "cpu_s_per_s": round(cpu, 5), "threads": threading.active_count()}
    finally:
        for sock in pages:
            sock.close()


def under_attack(k: KioskServer, reopen_after_s: float, baseline: dict[str, Any]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    attacker = ctx.Process(target=_attack, args=(k.port, reopen_after_s, ready, stop), daemon=True)
    refused_before = k.guard.counts()
    attacker.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the attacker did not start")
        with ThreadPeak() as peak:
            cpu0, wall0 = time.process_time(), time.monotonic()
            threading.Event().wait(ATTACK_CPU_S)  # the server alone (the legit client runs in this process)
            cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
            attacked = legit(k.port, SAMPLES)
            page = time_to_ok(k.port, RETRIES)
        refused = k.guard.counts()
    finally:
        stop.set()
        attacker.join(10)
    if not wait_quiet(k, 5.0):
        raise RuntimeError(f"{k.connections} connections still open after the attack")
    return {
        **attacked,
        "ratio_p50": round(attacked["p50_ms"] / baseline["p50_ms"], 1),
        "ratio_p95": round(attacked["p95_ms"] / baseline["p95_ms"], 1),
        "page_retrying_503_until_200": page,
        "threads_peak": peak.peak,
        "server_cpu_s_per_s": round(cpu, 3),
        "refused": {kind: refused[kind] - refused_before[kind] for kind in REFUSED_KINDS},
    }


def wait_quiet(k: KioskServer, timeout: float) -> bool:
    """Until the attacker's connections are gone, those still queued in the listen backlog included
    (nothing open, and nothing refused or ended for ``QUIET_S``)."""
    deadline = time.monotonic() + timeout
    last: tuple[object, ...] = ()
    while time.monotonic() < deadline:
        now = (k.connections, k.clients, k.guard.counts())
        if now == last and k.connections == 0:
            return True
        last = now
        threading.Event().wait(QUIET_S)
    return False


def run() -> dict[str, Any]:
    source = ScriptedSource(STOP)
    threads_before = threading.active_count()
    rss0 = rss_kib()
    k = KioskServer(source, SETTINGS).start()
    try:
        get_state(k.port)  # the first answer's lazy imports and buffers count in the start
        rss_start_kib = rss_kib() - rss0
        threads_serving = threading.active_count()
        baseline = legit(k.port, SAMPLES)
        attacks = {name: under_attack(k, after, baseline) for name, after in MANNERS.items()}
        idle = idle_with_pages(k)
    finally:
        k.stop()
    return {
        "what": (f"legit GET /api/state (new connection each) with no attack vs {SLOW_SOCKETS} slowloris + "
                 f"{STREAM_ATTEMPTS} stream sockets from another process; limits {SETTINGS.max_connections} "
                 f"connections, {SETTINGS.max_streams} streams, {SETTINGS.read_timeout_s} s"),
        "baseline": baseline,
        **attacks,
        "threads_before_start": threads_before,
        "threads_serving_idle": threads_serving,  # + the accept loop and the pump
        "threads_bound": threads_serving + SETTINGS.max_connections,
        "idle": idle,
        "rss_start_kib": rss_start_kib,
    }
