"""The kiosk server against hostile clients, over real sockets (issue 13): DNS rebinding (a foreign
Host), cross-site posts (a foreign Origin), slow and many clients (slowloris, a short body, a flood
of event streams), and bodies built to break the parser.

Small limits make each bound quick to reach: ``read_timeout_s`` 0.5, 8 connections, 2 streams,
and a 30 s ping, so anything that ends a stream within a second was not the ping.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edge.kiosk.connections import MAX_HEAD
from edge.kiosk.guard import Guard
from edge.kiosk.handler import MAX_BODY
from edge.kiosk.server import KioskServer
from edge.kiosk.settings import KioskSettings
from tests.browser.screens import STOP, ScriptedSource

TIMEOUT_S = 0.5  # the server's read_timeout_s here
SLACK_S = 0.6  # s a bound may be late on a loaded 2-core machine (scheduling, the accept loop's queue)
SMALL = KioskSettings(port=0, hosts=("Cart-7.ward.example",), read_timeout_s=TIMEOUT_S, max_connections=8,
                      max_streams=2)
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def source() -> ScriptedSource:
    return ScriptedSource(STOP)


@pytest.fixture
def kiosk(source: ScriptedSource) -> Iterator[KioskServer]:
    with KioskServer(source, SMALL, ping_s=30.0) as k:
        yield k


def wait_until(cond: Callable[[], bool], timeout: float, every: float = 0.02) -> bool:
    """Poll ``cond`` every ``every`` s (for what no event announces, e.g. a count inside the server)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not cond():
        if time.monotonic() >= deadline:
            return False
        tick.wait(every)
    return True


def request(k: KioskServer, method: str, path: str, body: bytes | str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], bytes]:
    """One request by http.client (which sends ``Host: 127.0.0.1:<port>`` unless ``headers`` has one)."""
    conn = http.client.HTTPConnection("127.0.0.1", k.port, timeout=5)
    try:
        conn.request(method, path, body=body.encode() if isinstance(body, str) else body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {n.lower(): v for n, v in resp.getheaders()}, data
    finally:
        conn.close()


def error_of(data: bytes) -> str:
    error = json.loads(data)["error"]
    assert isinstance(error, str)
    return error


def connect(k: KioskServer, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", k.port), timeout=5)
    if data:
        sock.sendall(data)
    return sock


def read_to_end(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection; fails if it does not within ``timeout``."""
    sock.settimeout(timeout)
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def exchange(k: KioskServer, data: bytes, timeout: float) -> bytes:
    """Send ``data`` on a new connection; what the server answers before it closes it."""
    sock = connect(k, data)
    try:
        return read_to_end(sock, timeout)
    finally:
        sock.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


class Stream:
    """A raw event-stream client: reads frames up to the first state, then can tell when it ends."""

    def __init__(self, k: KioskServer, host: str | None = None) -> None:
        self.sock = connect(k, f"GET /api/events HTTP/1.1\r\nHost: {host or f'127.0.0.1:{k.port}'}\r\n\r\n".encode())
        self.seen = b""

    def read_until(self, marker: bytes, timeout: float = 5.0) -> None:
        self.sock.settimeout(timeout)
        while marker not in self.seen:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"stream ended before {marker!r}")
            self.seen += chunk

    def ended_within(self, timeout: float) -> bool:
        """True if the server ends the stream within ``timeout`` (frames before the end are kept)."""
        self.sock.settimeout(timeout)
        try:
            while chunk := self.sock.recv(65536):
                self.seen += chunk
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


# DNS rebinding: the Host allow-list -------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/state", None), ("POST", "/api/scan", '{"text": "WC1.B.X"}'), ("GET", "/", None),
    ("GET", "/kiosk.js", None), ("GET", "/api/events", None), ("GET", "/healthz", None),
    ("POST", "/api/action", '{"id": "remove_last"}'), ("GET", "/nope", None),
])
def test_a_rebinding_host_is_421_on_every_path(kiosk: KioskServer, source: ScriptedSource,
                                               method: str, path: str, body: str | None) -> None:
    status, _, data = request(kiosk, method, path, body, {"Host": f"rebind.evil.example:{kiosk.port}", **JSON})
    assert status == 421
    assert "rebind.evil.example" in error_of(data)
    assert source.scans == [] and source.acts == []
    assert kiosk.guard.counts()["host"] == 1 and kiosk.clients == 0


@pytest.mark.parametrize("host", ["localhost:{port}", "LocalHost:{port}", "127.0.0.1:{port}", "127.0.0.1",
                                  "[::1]:{port}", "cart-7.WARD.example:{port}", "cart-7.ward.example"])
def test_the_allowed_names_are_served(kiosk: KioskServer, source: ScriptedSource, host: str) -> None:
    status, _, data = request(kiosk, "GET", "/api/state", headers={"Host": host.format(port=kiosk.port)})
    assert (status, json.loads(data)["step"]) == (200, "stop")
    origin = f"http://{host.format(port=kiosk.port)}"
    status, _, _ = request(kiosk, "POST", "/api/scan", '{"text": "X"}',
                           {"Host": host.format(port=kiosk.port), "Origin": origin, **JSON})
    assert status == 202 and source.scans == ["X"]
    assert kiosk.guard.counts()["host"] == 0


@pytest.mark.parametrize("head", [b"GET /api/state HTTP/1.0\r\n\r\n", b"GET /api/state HTTP/1.1\r\n\r\n",
                                  b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n"])
def test_no_host_or_two_are_refused(kiosk: KioskServer, head: bytes) -> None:
    answer = exchange(kiosk, head, 2.0)
    assert status_of(answer) == 400
    assert b"Host header" in answer and b'"step"' not in answer


def test_names_follow_the_settings() -> None:
    assert Guard(KioskSettings(host="10.1.2.3", hosts=("[FE80::1]",))).names == {
        "localhost", "127.0.0.1", "::1", "10.1.2.3", "fe80::1"}
    assert "0.0.0.0" not in Guard(KioskSettings(host="0.0.0.0")).names  # a wildcard is no name
    assert "::" not in Guard(KioskSettings(host="::")).names


# cross-site posts: the Origin check ---------------------------------------------------------------

@pytest.mark.parametrize(("headers", "expected"), [
    ({"Origin": "http://evil.example"}, 403),
    ({"Origin": "null"}, 403),
    ({"Origin": "http://127.0.0.1:{other}"}, 403),  # another local service is another origin
    ({"Origin": "http://localhost:{port}"}, 403),  # an allowed name, but not this request's Host
    ({"Origin": "ftp://127.0.0.1:{port}"}, 403),
    ({"Origin": "http://127.0.0.1:{port}"}, 202),  # the page's own fetch
    ({"Origin": "http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}, 202),
    ({}, 202),  # a local tool: neither Origin nor Sec-Fetch-*
    ({"Sec-Fetch-Site": "none"}, 202),
    ({"Sec-Fetch-Site": "cross-site"}, 403),
    ({"Sec-Fetch-Site": "same-site"}, 403),
    ({"Origin": "http://127.0.0.1:{port}", "Sec-Fetch-Site": "cross-site"}, 403),
])
def test_a_post_must_come_from_the_pages_own_origin(kiosk: KioskServer, source: ScriptedSource,
                                                    headers: dict[str, str], expected: int) -> None:
    filled = {k: v.format(port=kiosk.port, other=kiosk.port + 1) for k, v in headers.items()}
    for path, body in (("/api/scan", '{"text": "X"}'), ("/api/action", '{"id": "remove_last"}')):
        status, _, data = request(kiosk, "POST", path, body, {**filled, **JSON})
        assert status == expected, (path, data)
    accepted = expected == 202
    assert (source.scans, source.acts) == ((["X"], [("remove_last", None)]) if accepted else ([], []))
    assert kiosk.guard.counts()["origin"] == (0 if accepted else 2)


def test_a_foreign_origin_may_still_read(kiosk: KioskServer) -> None:
    """Reading is the browser's to refuse (no CORS header is ever sent); only state changes are checked."""
    status, headers, _ = request(kiosk, "GET", "/api/state", headers={"Origin": "http://evil.example"})
    assert status == 200 and "access-control-allow-origin" not in headers


# slow and many clients ------------------------------------------------------------------------------

def test_slowloris_holds_no_thread_and_no_page_out(kiosk: KioskServer) -> None:
    """100 clients that never finish their head: no thread for any of them, at most max_connections
    sockets kept (a newer one takes the place of the slowest, which gets a 503), each closed by the
    deadline; and a page's request is served at once all along."""
    threads_before = threading.active_count()
    partial_head = f"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1:{kiosk.port}\r\nX-Slow: ".encode()
    socks = [connect(kiosk, partial_head) for _ in range(100)]
    try:
        started = time.monotonic()
        refused = 100 - SMALL.max_connections
        assert wait_until(lambda: kiosk.guard.counts()["busy"] == refused, 3.0), kiosk.guard.counts()
        assert kiosk.connections == SMALL.max_connections
        assert threading.active_count() <= threads_before
        t0 = time.monotonic()
        status, _, data = request(kiosk, "GET", "/api/state")  # takes the place of the slowest
        assert (status, json.loads(data)["step"]) == (200, "stop")
        assert time.monotonic() - t0 < 0.3
        answers = [read_to_end(s, TIMEOUT_S + 2 * SLACK_S) for s in socks]  # every one closed by the server
        closed_after = time.monotonic() - started
    finally:
        for s in socks:
            s.close()
    statuses = [status_of(a) for a in answers]
    assert statuses.count(503) == refused + 1 and statuses.count(408) == SMALL.max_connections - 1
    assert b"Retry-After: 1" in answers[0] and b"busy" in answers[0]
    assert closed_after < TIMEOUT_S + 2 * SLACK_S
    assert kiosk.guard.counts()["timeout"] == SMALL.max_connections - 1
    assert wait_until(lambda: kiosk.connections == 0, 1.0)


def test_a_full_house_of_requests_being_answered_is_503() -> None:
    """When every connection is being answered (streams, requests in progress) there is no slow one
    to make room: a newcomer gets a 503 at once; event streams are never the ones cut."""
    class Slow(ScriptedSource):
        gate = threading.Event()

        def scan(self, text: str) -> None:
            assert self.gate.wait(5.0)
            super().scan(text)

    source = Slow(STOP)
    with KioskServer(source, SMALL, ping_s=30.0) as k:
        streams: list[Stream] = []
        posts = [threading.Thread(target=request, args=(k, "POST", "/api/scan", '{"text": "X"}', JSON))
                 for _ in range(SMALL.max_connections - SMALL.max_streams)]
        try:
            for _ in range(SMALL.max_streams):
                streams.append(Stream(k))
                streams[-1].read_until(b"event: state")
            for t in posts:
                t.start()
            assert wait_until(lambda: k.connections == SMALL.max_connections, 2.0)
            t0 = time.monotonic()
            assert request(k, "GET", "/healthz")[0] == 503
            assert time.monotonic() - t0 < 0.3
            assert not any(st.ended_within(0.05) for st in streams)
        finally:
            source.gate.set()
            for t in posts:
                t.join(5.0)
            for st in streams:
                st.close()
        assert source.scans == ["X"] * len(posts)
        assert request(k, "GET", "/healthz")[0] == 200
        assert k.guard.counts()["busy"] == 1


def test_a_slow_request_never_cuts_a_stream(kiosk: KioskServer) -> None:
    streams: list[Stream] = []
    slow: list[socket.socket] = []
    try:
        for _ in range(SMALL.max_streams):
            streams.append(Stream(kiosk))
            streams[-1].read_until(b"event: state")
        for _ in range(SMALL.max_connections):  # more than the room left: the slowest give way
            slow.append(connect(kiosk, b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n"))
        assert wait_until(lambda: kiosk.guard.counts()["busy"] == SMALL.max_streams, 2.0)
        for sock in slow[:SMALL.max_streams]:
            assert status_of(read_to_end(sock, 1.0)) == 503
        assert not any(st.ended_within(0.05) for st in streams)
        assert kiosk.clients == SMALL.max_streams
    finally:
        for sock in slow:
            sock.close()
        for st in streams:
            st.close()


def test_a_client_dribbling_bytes_is_cut_at_the_deadline(kiosk: KioskServer) -> None:
    """One byte every 50 ms never lets a per-recv timeout fire; the request's deadline does."""
    sock = connect(kiosk, f"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1:{kiosk.port}\r\nX-Slow: ".encode())
    started = time.monotonic()
    sock.settimeout(0.05)  # the pace: each wait for the server's answer is one byte's interval
    answer = b""
    try:
        while time.monotonic() - started < 5.0:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                sock.send(b"a")
                continue
            if not chunk:
                break
            answer += chunk
        cut_after = time.monotonic() - started
    finally:
        sock.close()
    assert status_of(answer) == 408
    assert TIMEOUT_S - 0.05 <= cut_after < TIMEOUT_S + SLACK_S
    assert kiosk.guard.counts()["timeout"] == 1


def test_a_silent_connection_is_closed_without_an_answer(kiosk: KioskServer) -> None:
    sock = connect(kiosk)
    started = time.monotonic()
    try:
        assert read_to_end(sock, TIMEOUT_S + 2 * SLACK_S) == b""
    finally:
        sock.close()
    assert TIMEOUT_S - 0.05 <= time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert kiosk.guard.counts()["timeout"] == 1


def test_a_short_body_is_408_and_closed(kiosk: KioskServer, source: ScriptedSource) -> None:
    head = (f"POST /api/scan HTTP/1.1\r\nHost: 127.0.0.1:{kiosk.port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n").encode()
    sock = connect(kiosk, head + b'{"text": "WC1')
    started = time.monotonic()
    try:
        answer = read_to_end(sock, TIMEOUT_S + 2 * SLACK_S)
    finally:
        sock.close()
    assert status_of(answer) == 408 and b"not complete within 0.5 s" in answer
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S
    assert source.scans == [] and kiosk.guard.counts()["timeout"] == 1


def test_stop_does_not_wait_for_slow_clients(source: ScriptedSource) -> None:
    k = KioskServer(source, SMALL.model_copy(update={"read_timeout_s": 30.0})).start()
    socks = [connect(k, b"GET / HTTP/1.1\r\n") for _ in range(SMALL.max_connections)]
    try:
        assert wait_until(lambda: k.connections == SMALL.max_connections, 3.0)
        started = time.monotonic()
        k.stop()
        assert time.monotonic() - started < 1.0
        assert k.connections == 0
        for s in socks:
            assert read_to_end(s, 2.0) == b""
    finally:
        for s in socks:
            s.close()


# event streams --------------------------------------------------------------------------------

def test_a_new_stream_beyond_the_cap_ends_the_oldest_at_once(kiosk: KioskServer) -> None:
    streams: list[Stream] = []
    try:
        for _ in range(SMALL.max_streams):  # one after the other: "oldest" is the order they were served
            streams.append(Stream(kiosk))
            streams[-1].read_until(b"event: state")
        assert kiosk.clients == SMALL.max_streams
        newest = Stream(kiosk)
        streams.append(newest)
        newest.read_until(b"event: state")
        started = time.monotonic()
        assert streams[0].ended_within(1.0)  # the oldest: ended now, not at the 30 s ping
        assert time.monotonic() - started < 1.0
        assert not streams[1].ended_within(0.2) and not newest.ended_within(0.05)
        assert kiosk.clients == SMALL.max_streams
        assert kiosk.guard.counts()["streams_closed"] == 1
    finally:
        for s in streams:
            s.close()


def test_a_flood_of_streams_keeps_the_count_and_the_threads_bounded(kiosk: KioskServer) -> None:
    threads_before = threading.active_count()
    streams: list[Stream] = []
    try:
        for _ in range(30):
            streams.append(Stream(kiosk))
            assert kiosk.clients <= SMALL.max_streams
            assert threading.active_count() <= threads_before + SMALL.max_connections
        assert wait_until(lambda: kiosk.clients == kiosk.connections == SMALL.max_streams, 2.0), kiosk.connections
        page = Stream(kiosk)  # the screen's page still gets its stream
        streams.append(page)
        page.read_until(b"event: state")
        assert kiosk.clients == SMALL.max_streams
    finally:
        for s in streams:
            s.close()
    assert wait_until(lambda: kiosk.clients == 0 and kiosk.connections == 0, 1.0)


def test_a_closed_page_leaves_the_count_within_a_second(kiosk: KioskServer) -> None:
    s = Stream(kiosk)
    s.read_until(b"event: state")
    assert json.loads(request(kiosk, "GET", "/healthz")[2])["clients"] == 1
    s.close()
    started = time.monotonic()
    assert wait_until(lambda: json.loads(request(kiosk, "GET", "/healthz")[2])["clients"] == 0, 1.0)
    assert time.monotonic() - started < 1.0  # the ping (30 s) would have found it much later
    assert kiosk.guard.counts()["streams_closed"] == 0  # a page leaving is no refusal


def test_a_stream_by_a_foreign_name_is_never_opened(kiosk: KioskServer) -> None:
    s = Stream(kiosk, host="rebind.evil.example")
    try:
        assert s.ended_within(2.0)
    finally:
        s.close()
    assert status_of(s.seen) == 421 and b"event:" not in s.seen
    assert kiosk.clients == 0


# bodies -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"[" * 4000, b"{" * 4000, b'{"text": ' + b"[" * 2000 + b"]" * 2000 + b"}",
                                  b'{"id": {"a": {"b": {"c": {"d": "x"}}}}}'])
def test_deep_json_is_400_not_500(kiosk: KioskServer, source: ScriptedSource, body: bytes) -> None:
    for path in ("/api/scan", "/api/action"):
        status, _, data = request(kiosk, "POST", path, body, JSON)
        assert status == 400 and "nested deeper than 4" in error_of(data)
    assert kiosk.errors == 0 and source.scans == [] and source.acts == []


def test_brackets_inside_strings_are_not_nesting(kiosk: KioskServer, source: ScriptedSource) -> None:
    text = '[[[[[{{{{{ \\" [[[[['
    status, _, _ = request(kiosk, "POST", "/api/scan", json.dumps({"text": text}), JSON)
    assert status == 202 and source.scans == [text]


def test_a_huge_content_length_is_413_at_once(kiosk: KioskServer, source: ScriptedSource) -> None:
    head = (f"POST /api/scan HTTP/1.1\r\nHost: 127.0.0.1:{kiosk.port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 99999999999\r\n\r\n").encode()
    sock = connect(kiosk, head)
    started = time.monotonic()
    try:
        answer = read_to_end(sock, 2.0)
    finally:
        sock.close()
    assert status_of(answer) == 413 and str(MAX_BODY).encode() in answer
    assert time.monotonic() - started < TIMEOUT_S  # not waiting for a body it will never read
    assert source.scans == []


def test_a_head_too_large_is_431(kiosk: KioskServer) -> None:
    headers = {f"X-Pad-{i}": "p" * 1000 for i in range(MAX_HEAD // 1000 + 2)}
    status, _, data = request(kiosk, "GET", "/api/state", headers=headers)
    assert status == 431 and str(MAX_HEAD) in error_of(data)
    status, _, _ = request(kiosk, "GET", "/api/state", headers={f"X-Pad-{i}": "p" * 1000 for i in range(8)})
    assert status == 200  # 8 KiB of headers is still a request


# what the cart's operator sees -------------------------------------------------------------------

def test_healthz_counts_every_kind_of_refusal(kiosk: KioskServer) -> None:
    request(kiosk, "GET", "/", headers={"Host": "evil.example"})
    request(kiosk, "POST", "/api/scan", '{"text": "X"}', {"Origin": "null", **JSON})
    exchange(kiosk, b"GET / HTTP/1.1\r\n", TIMEOUT_S + 2 * SLACK_S)
    streams: list[Stream] = []
    try:
        for _ in range(SMALL.max_streams + 1):
            streams.append(Stream(kiosk))
            streams[-1].read_until(b"event: state")
        assert streams[0].ended_within(2.0)
        socks = [connect(kiosk) for _ in range(SMALL.max_connections + 1)]
        try:
            assert wait_until(lambda: kiosk.guard.counts()["busy"] >= 1, 2.0)
        finally:
            for s in socks:
                s.close()
        assert wait_until(lambda: kiosk.connections <= SMALL.max_streams, 2.0)
        status, _, data = request(kiosk, "GET", "/healthz")
    finally:
        for st in streams:
            st.close()
    refused = json.loads(data)["refused"]
    assert status == 200
    assert {k: min(v, 1) for k, v in refused.items()} == {
        "host": 1, "origin": 1, "busy": 1, "timeout": 1, "streams_closed": 1}
    assert refused["host"] == 1 and refused["origin"] == 1 and refused["streams_closed"] == 1


def test_a_flood_of_refusals_is_one_log_line_per_kind(kiosk: KioskServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="edge.kiosk.guard"):
        for _ in range(30):
            assert request(kiosk, "GET", "/api/state", headers={"Host": "evil.example"})[0] == 421
    lines = [r for r in caplog.records if r.name == "edge.kiosk.guard"]
    assert len(lines) == 1 and "evil.example" in lines[0].getMessage()
    assert kiosk.guard.counts()["host"] == 30
