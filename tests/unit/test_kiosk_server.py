"""The kiosk's HTTP server against a real socket: static files, the JSON API and its refusals, the
event stream (push on change, ping, end on stop), and the systemd units that start it all."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from edge import catalogue
from edge.errors import EdgeError
from edge.kiosk.connections import body_size, head_size
from edge.kiosk.contract import Changes
from edge.kiosk.guard import Guard, json_too_deep, split_host
from edge.kiosk.handler import CSP, MAX_BODY, assets_hash, static_files
from edge.kiosk.server import KIOSK_PORT, ROUTES, KioskServer
from edge.kiosk.settings import KioskSettings
from tests.browser.screens import IDLE, STOP, ScriptedSource

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def source() -> ScriptedSource:
    return ScriptedSource(STOP)


@pytest.fixture
def kiosk(source: ScriptedSource) -> Iterator[KioskServer]:
    with KioskServer(source, ping_s=0.3) as k:
        yield k


def request(k: KioskServer, method: str, path: str, body: bytes | str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", k.port, timeout=5)
    try:
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def post(k: KioskServer, path: str, obj: Any) -> tuple[int, Any]:
    status, _, data = request(k, "POST", path, json.dumps(obj), {"Content-Type": "application/json"})
    return status, json.loads(data)


# static files ---------------------------------------------------------------------------------

def test_serves_the_page_with_types_and_no_cache(kiosk: KioskServer) -> None:
    status, headers, body = request(kiosk, "GET", "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert headers["content-security-policy"] == CSP
    assert "kiosk.js" in body.decode()
    for path, ctype in (("/index.html", "text/html"), ("/kiosk.css", "text/css"), ("/kiosk.js", "text/javascript"),
                        ("/icon.svg", "image/svg+xml")):
        status, headers, _ = request(kiosk, "GET", path)
        assert (status, headers["content-type"].split(";")[0]) == (200, ctype), path


@pytest.mark.parametrize("path", ["/../kiosk.py", "/%2e%2e/kiosk.py", "/..%2fkiosk.py", "//etc/passwd",
                                  "/kiosk_static/index.html", "/.hidden", "/nope.html", "/static/"])
def test_nothing_outside_the_whitelist(kiosk: KioskServer, path: str) -> None:
    status, _, body = request(kiosk, "GET", path)
    assert status == 404
    assert b"def " not in body and b"root:" not in body


def test_no_directory_listing(tmp_path: Path) -> None:
    (tmp_path / "icons").mkdir()
    (tmp_path / "icons" / "a.svg").write_text("<svg/>")
    (tmp_path / "index.html").write_text("<p>hi</p>")
    (tmp_path / "notes.txt").write_text("secret")
    (tmp_path / ".kiosk.js").write_text("x")
    files = static_files(tmp_path)
    assert sorted(files) == ["/", "/icons/a.svg", "/index.html"]
    with KioskServer(ScriptedSource(), static_dir=tmp_path) as k:
        assert request(k, "GET", "/icons/a.svg")[0] == 200
        assert request(k, "GET", "/icons/")[0] == 404
        assert request(k, "GET", "/icons")[0] == 404
        assert request(k, "GET", "/notes.txt")[0] == 404


def test_assets_hash_follows_the_files(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("one")
    before = assets_hash(static_files(tmp_path))
    (tmp_path / "index.html").write_text("two")
    assert assets_hash(static_files(tmp_path)) != before


# the JSON API ---------------------------------------------------------------------------------

def test_state_is_the_sources_snapshot(kiosk: KioskServer) -> None:
    status, headers, body = request(kiosk, "GET", "/api/state")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(body) == STOP
    assert "心内科三病区".encode() in body  # UTF-8, not \\u escapes


def test_action_is_handed_to_the_source(kiosk: KioskServer, source: ScriptedSource) -> None:
    assert post(kiosk, "/api/action", {"id": "remove_last"}) == (202, {"ok": True})
    assert post(kiosk, "/api/action", {"id": "manifest", "value": "HW2025-0001"}) == (202, {"ok": True})
    assert post(kiosk, "/api/action", {"id": "finish_stop", "value": None}) == (202, {"ok": True})
    assert source.acts == [("remove_last", None), ("manifest", "HW2025-0001"), ("finish_stop", None)]


def test_unknown_action_is_400_with_the_sources_message(kiosk: KioskServer, source: ScriptedSource) -> None:
    status, body = post(kiosk, "/api/action", {"id": "launch_rocket"})
    assert status == 400
    assert "launch_rocket" in body["error"]
    assert source.acts == []


def test_scan_is_handed_to_the_source(kiosk: KioskServer, source: ScriptedSource) -> None:
    assert post(kiosk, "/api/scan", {"text": "WC1.B.H330100001.B000104.I.3F"}) == (202, {"ok": True})
    assert source.scans == ["WC1.B.H330100001.B000104.I.3F"]


@pytest.mark.parametrize(("path", "body", "says"), [
    ("/api/action", "{not json", "not JSON"),
    ("/api/action", "[1, 2]", "expected a JSON object"),
    ("/api/action", "{}", "missing field 'id'"),
    ("/api/action", '{"id": ""}', "'id' must be a non-empty string"),
    ("/api/action", '{"id": 7}', "'id' must be a non-empty string"),
    ("/api/action", '{"id": "remove_last", "value": 1234}', "'value' must be a string or null"),
    ("/api/action", '{"id": "remove_last", "pin": "1234"}', "unknown field 'pin'"),
    ("/api/scan", "{}", "missing field 'text'"),
    ("/api/scan", '{"text": "  "}', "'text' must be a non-empty string"),
    ("/api/scan", b'{"text": "\xff"}', "not JSON"),
])
def test_bad_requests_say_what_was_wrong(kiosk: KioskServer, source: ScriptedSource,
                                         path: str, body: str | bytes, says: str) -> None:
    status, _, data = request(kiosk, "POST", path, body, {"Content-Type": "application/json"})
    assert status == 400
    assert says in json.loads(data)["error"]
    assert source.acts == [] and source.scans == []


def test_only_json_posts_of_a_sane_size(kiosk: KioskServer, source: ScriptedSource) -> None:
    status, _, data = request(kiosk, "POST", "/api/action", '{"id": "remove_last"}', {"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in json.loads(data)["error"]
    big = json.dumps({"text": "X" * MAX_BODY})
    status, _, _ = request(kiosk, "POST", "/api/scan", big, {"Content-Type": "application/json"})
    assert status == 413
    assert source.acts == [] and source.scans == []


def test_wrong_method(kiosk: KioskServer) -> None:
    status, headers, _ = request(kiosk, "GET", "/api/action")
    assert status == 405 and headers["allow"] == "POST"
    assert request(kiosk, "POST", "/api/state", "{}", {"Content-Type": "application/json"})[0] == 405
    assert request(kiosk, "POST", "/nope", "{}", {"Content-Type": "application/json"})[0] == 404
    status, headers, data = request(kiosk, "POST", "/api/catalogue", "{}", {"Content-Type": "application/json"})
    assert (status, headers["allow"], json.loads(data)) == (405, "GET", {"error": "/api/catalogue takes GET"})
    status, _, data = request(kiosk, "GET", "/api/nope")
    assert (status, json.loads(data)) == (404, {"error": "no such page: /api/nope"})


def test_the_route_table_serves_the_api_and_each_static_file(kiosk: KioskServer) -> None:
    assert set(ROUTES) <= set(kiosk.routes)
    assert {p for m, p in kiosk.routes if m == "GET"} >= {"/", "/index.html", "/kiosk.js", "/kiosk.css"}
    assert {m for m, _ in kiosk.routes} == {"GET", "POST"}


def test_catalogue_is_edge_catalogue(kiosk: KioskServer) -> None:
    """The page draws states, levels and colours from this: the one catalogue, as Python has it."""
    status, headers, body = request(kiosk, "GET", "/api/catalogue")
    assert status == 200 and headers["content-type"] == "application/json; charset=utf-8"
    assert headers["cache-control"] == "no-store"
    assert json.loads(body) == catalogue.as_json()
    assert "感染性废物".encode() in body  # UTF-8, not \\u escapes


def test_a_failing_source_is_a_500_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(ScriptedSource):
        def scan(self, text: str) -> None:
            raise RuntimeError("bug")

    with KioskServer(Broken()) as k:
        status, body = post(k, "/api/scan", {"text": "X"})
        assert status == 500 and "logged" in body["error"]
        assert k.errors == 1
    assert "RuntimeError: bug" in caplog.text


def test_healthz(kiosk: KioskServer) -> None:
    status, _, data = request(kiosk, "GET", "/healthz")
    assert status == 200
    health = json.loads(data)
    assert health["ok"] is True and health["assets"] == kiosk.assets
    assert health["refused"] == {"host": 0, "origin": 0, "busy": 0, "timeout": 0, "streams_closed": 0}


# who may ask, and what a request may be (edge.kiosk.guard, edge.kiosk.connections; over sockets in
# tests/integration/test_kiosk_hostile.py) -------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("localhost:8088", ("localhost", 8088)), ("LOCALHOST", ("localhost", None)), ("[::1]:8088", ("::1", 8088)),
    ("[::1]", ("::1", None)), ("::1", ("::1", None)), ("cart.local:x", ("cart.local", None)), ("", ("", None)),
])
def test_split_host(value: str, expected: tuple[str, int | None]) -> None:
    assert split_host(value) == expected


@pytest.mark.parametrize(("raw", "deep"), [
    (b'{"id": "a"}', False), (b"[[[[1]]]]", False), (b"[[[[[1]]]]]", True), (b"[" * 4000, True),
    (b'{"t": "[[[[[[[[ {{{{{ \\" [[[["}', False), (b'{"t": "\\"}', False), ("{\"t\": \"【【【\"}".encode(), False),
])
def test_json_depth_is_counted_outside_strings(raw: bytes, deep: bool) -> None:
    assert json_too_deep(raw) is deep


def message(**headers: str) -> Message:
    m = Message()
    for name, value in headers.items():
        m[name.replace("_", "-")] = value
    return m


@pytest.mark.parametrize(("headers", "refused"), [
    ({"Host": "127.0.0.1:8088", "Origin": "http://127.0.0.1:8088"}, False),
    ({"Host": "localhost", "Origin": "http://localhost:80"}, False),  # the default port, said or not
    ({"Host": "localhost:443", "Origin": "https://localhost"}, False),  # behind a TLS proxy
    ({"Host": "[::1]:8088", "Origin": "http://[::1]:8088"}, False),
    ({"Host": "127.0.0.1:8088", "Origin": "http://127.0.0.1:8088/path"}, True),
    ({"Host": "127.0.0.1:8088", "Origin": "http://127.0.0.1:99999"}, True),  # malformed
    ({"Host": "127.0.0.1:8088", "Origin": "http://127.0.0.1.evil.example:8088"}, True),
    ({"Host": "evil.example:8088", "Origin": "http://evil.example:8088"}, True),  # same origin, not ours
    ({"Host": "127.0.0.1:8088", "Sec_Fetch_Site": "same-origin"}, False),
    ({"Host": "127.0.0.1:8088", "Sec_Fetch_Site": "cross-site"}, True),
])
def test_origin_rules(headers: dict[str, str], refused: bool) -> None:
    assert (Guard(KioskSettings()).origin_refusal(message(**headers)) is not None) is refused


def test_a_request_is_whole_when_its_head_and_declared_body_are_in() -> None:
    head = b"POST /api/scan HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n"
    assert head_size(head[:-2]) is None
    assert head_size(head) == len(head)
    assert head_size(b"GET / HTTP/1.0\nHost: x\n\n") == 24  # bare LF, as the stdlib parser takes it
    assert body_size(head, MAX_BODY) == 12
    too_big = head.replace(b"12", str(MAX_BODY + 1).encode())
    assert body_size(too_big, MAX_BODY) == 0  # handed on unread: the handler answers 413
    for odd in (b"-1", b"1e3", b"\xd9\xa1"):
        assert body_size(head.replace(b"12", odd), MAX_BODY) == 0  # the handler answers 411
    assert body_size(head.replace(b"\r\n\r\n", b"\r\nContent-Length: 12\r\n\r\n"), MAX_BODY) == 0


@pytest.mark.parametrize(("fields", "says"), [
    ({"hosts": ("http://cart.local",)}, "not a host name"),
    ({"hosts": ("cart.local:8088",)}, "not a host name"),
    ({"hosts": ("*",)}, "not a host name"),
    ({"max_connections": 8, "max_streams": 8}, "must be below max_connections"),
])
def test_settings_refuse_what_cannot_work(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        KioskSettings(**fields)


def test_host_names_are_compared_in_lower_case() -> None:
    assert KioskSettings(hosts=("Cart-7.Ward.example", "[FE80::1]")).hosts == ("cart-7.ward.example", "fe80::1")


# the event stream -----------------------------------------------------------------------------

class Stream:
    """A raw SSE reader: frames as {"event", "data", "comments"}."""

    def __init__(self, k: KioskServer) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", k.port, timeout=5)
        self.conn.request("GET", "/api/events")
        self.resp = self.conn.getresponse()

    def frame(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": None, "data": None, "comments": [], "retry": None}
        while True:
            raw = self.resp.fp.readline()
            if not raw:
                raise EOFError("stream ended")
            text = raw.decode("utf-8").rstrip("\n")
            if text == "":
                if out["event"] or out["data"] or out["comments"] or out["retry"]:
                    return out
                continue
            name, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                out["comments"].append(value)
            else:
                out[name] = value

    def next_event(self, name: str) -> dict[str, Any]:
        while (f := self.frame())["event"] != name:
            pass
        return f

    def close(self) -> None:
        self.conn.close()


def test_events_push_every_change_and_ping(kiosk: KioskServer, source: ScriptedSource) -> None:
    s = Stream(kiosk)
    try:
        assert s.resp.status == 200
        assert s.resp.getheader("Content-Type") == "text/event-stream; charset=utf-8"
        assert s.frame()["retry"] == "1000"
        assert json.loads(s.next_event("hello")["data"]) == {"assets": kiosk.assets}
        assert json.loads(s.next_event("state")["data"]) == STOP
        source.show(IDLE)
        assert json.loads(s.next_event("state")["data"])["step"] == "idle"
        source.update(saved_seq=3)
        assert json.loads(s.next_event("state")["data"])["saved_seq"] == 3
        ping = s.frame()  # nothing changes: the 0.3 s ping
        assert ping["comments"] == ["ping"] and ping["event"] == "ping"
        assert kiosk.clients == 1
    finally:
        s.close()


def test_stop_ends_every_stream_at_once_and_frees_the_port(source: ScriptedSource) -> None:
    k = KioskServer(source).start()  # the default 15 s ping: stop must not wait for it
    streams = [Stream(k), Stream(k)]
    for s in streams:
        s.next_event("state")
    started = time.monotonic()
    k.stop()
    for s in streams:
        with pytest.raises(EOFError):
            s.next_event("never")  # reads to the end of the stream
        s.close()
    assert time.monotonic() - started < 3.0
    assert k.clients == 0
    with KioskServer(source, KioskSettings(port=k.port)) as again:  # the same port at once (a restarted agent)
        assert request(again, "GET", "/healthz")[0] == 200


def test_a_failing_snapshot_does_not_kill_the_pump(caplog: pytest.LogCaptureFixture) -> None:
    class Flaky(ScriptedSource):
        fail = True

        def snapshot(self) -> dict[str, Any]:
            if self.fail:
                self.fail = False
                raise RuntimeError("half-built model")
            return super().snapshot()

    source = Flaky(STOP)
    with KioskServer(source) as k:
        s = Stream(k)
        try:
            assert json.loads(s.next_event("state")["data"])["step"] == "stop"  # after the backoff
        finally:
            s.close()
        assert k.errors == 1
    assert "half-built model" in caplog.text


# binding --------------------------------------------------------------------------------------

def test_localhost_by_default_and_a_port_in_use_is_an_edge_error() -> None:
    with KioskServer(ScriptedSource()) as k:
        assert k.url == f"http://127.0.0.1:{k.port}/"
        with pytest.raises(EdgeError, match="cannot listen"):
            KioskServer(ScriptedSource(), KioskSettings(port=k.port)).start()


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        k = KioskServer(ScriptedSource(), KioskSettings(host="::1", port=0)).start()
    except EdgeError as exc:
        pytest.skip(f"::1 not usable here: {exc}")
    try:
        assert k.url == f"http://[::1]:{k.port}/"
        conn = http.client.HTTPConnection("::1", k.port, timeout=5)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        k.stop()


# Changes --------------------------------------------------------------------------------------

def test_changes_wake_a_waiter_without_polling() -> None:
    c = Changes()
    assert c.wait_changed(-1, 5.0) == 0  # differs already: at once
    started = time.monotonic()
    assert c.wait_changed(0, 0.05) == 0  # nothing new: after the timeout
    assert time.monotonic() - started >= 0.04
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(c.wait_changed(0, 5.0)))
    waiter.start()
    c.bump()
    waiter.join(2.0)
    assert got == [1]


# the systemd units ----------------------------------------------------------------------------

def unit(name: str) -> dict[str, list[str]]:
    """key → values of a unit file (keys may repeat; continuation lines joined)."""
    text = (ROOT / "deploy" / "systemd" / name).read_text("utf-8").replace("\\\n", " ")
    out: dict[str, list[str]] = {}
    for raw in text.splitlines():
        ln = raw.strip()
        if not ln or ln.startswith(("#", ";", "[")):
            continue
        key, _, value = ln.partition("=")
        out.setdefault(key.strip(), []).append(re.sub(r"\s+", " ", value.strip()))
    return out


def test_agent_and_gateway_units() -> None:
    edge = unit("wastecart-edge.service")
    assert edge["ExecStart"][0].endswith("wastecart edge run --config /etc/wastecart/edge.toml")
    assert edge["Restart"] == ["always"]
    assert edge["StandardOutput"] == ["journal"]
    gateway = unit("wastecart-gateway.service")
    assert gateway["ExecStart"][0].endswith("wastecart gateway run --config /etc/wastecart/gateway.toml")
    assert gateway["Restart"] == ["always"]


def test_kiosk_unit_opens_the_agents_page() -> None:
    kiosk = unit("wastecart-kiosk.service")
    assert "wastecart-edge.service" in " ".join(kiosk["After"])
    assert kiosk["Restart"] == ["always"]
    start = kiosk["ExecStart"][0]
    for flag in ("--kiosk", "--noerrdialogs", "--disable-translate", "--incognito"):
        assert flag in start
    assert f"KIOSK_URL=http://127.0.0.1:{KIOSK_PORT}/" in kiosk["Environment"]
    assert "${KIOSK_URL}" in start
    # Chromium waits for the agent: never a "site can't be reached" page at boot.
    assert any("${KIOSK_URL}healthz" in pre for pre in kiosk["ExecStartPre"])
