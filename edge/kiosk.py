"""The kiosk: the cart's touch-screen page and the small HTTP server behind it (issue 6).

A Chromium in kiosk mode on the cart's screen (``deploy/systemd/wastecart-kiosk.service``) opens
this server on localhost.  The page (``edge/kiosk_static/``: plain HTML/CSS/JS, no build step, no
CDN, works offline) renders the screen model and posts taps and typed codes back; it never holds
workflow logic.  Standard library only (``http.server``): nothing new to install on the cart.

Kiosk ⇄ workflow contract
=========================

The pure state machine (edge/workflow.py) produces a JSON-able **screen model** with
``workflow.view(state, now) -> dict``; the cart agent (edge/app.py) adds a ``device`` block; the
kiosk server (edge/kiosk.py) serves it to the page and turns taps into ``workflow.Action`` events.

GET /api/state → the screen model (also pushed on every change over SSE: GET /api/events,
``event: state`` / ``data: <json>``; the server also sends a ``: ping`` comment every 15 s)::

    {
      "step": "idle" | "round" | "stop" | "confirm" | "saving" | "storage" | "transfer" | ...,  # machine step
      "title":  {"zh": "…", "en": "…"},        # short name of the current screen, e.g. 科室交接 / Department handover
      "prompt": {"zh": "…", "en": "…"},        # what to do next (big text)
      "error":   {"zh": "…", "en": "…"} | null, # last refusal (red banner) until the next accepted action
      "message": {"zh": "…", "en": "…"} | null, # last confirmation (green), e.g. 已保存交接记录 #12
      "saved_seq": int | null,                 # set ONLY after the ledger commit returned (the "saved" tick)
      "collector": str | null, "department": str | null, "place": str | null,  # place = storage room / vehicle
      "round_started_at": iso str | null, "round_overdue": bool,
      "weight": {"net_g": int | null, "stable": bool, "error": {"zh","en"} | null} | null,
      "lines": [{"package_code": str, "category": "INFECTIOUS", "category_name": {"zh","en"}, "weight_g": int,
                 "editable": bool}],
      "totals": [{"category": str, "category_name": {"zh","en"}, "count": int, "weight_g": int}],
      "pending": {...} | null,                 # a bag being taken (weight captured, waiting for category/label)
      "actions": [{"id": "remove_last", "label": {"zh","en"}, "style": "primary"|"danger"|"normal",
                   "needs": null | "pin" | "text" | "reason"}],  # the buttons valid NOW; ids are opaque
      "categories": [{"id": "INFECTIOUS", "name": {"zh","en"}, "color": "#f5d000"}],  # when a choice is asked
      "voice": {"id": int, "zh": "…", "en": "…"} | null,  # a NEW id = speak it once (main steps only)
      "device": {"online": bool, "unsent": int, "scale": str, "camera": str, "printer": str,
                 "actuator": str, "clock": str}            # added by the agent, not by the machine
    }

POST /api/action ``{"id": "<action id>", "value": "<optional: pin / text / reason>"}``
→ 202 ``{"ok": true}`` (the result shows up in the next state), 400 ``{"error": "..."}`` for an
unknown id.  POST /api/scan ``{"text": "<payload>"}`` — a code typed/entered on the kiosk (same
path as the camera).  The page never decides workflow logic: it renders the model and posts actions.

What the page does where the contract leaves it open (ids stay opaque: posted unchanged):
an action whose id ends in ``:<id of a category shown>`` (``choose:SHARPS``) is that category's
button, one ending in ``:<a line's package_code>`` (``edit:B000101``) is a button on that line —
neither is drawn a second time among the buttons.  A category with no such action posts
``{"id": "choose", "value": "<category id>"}``.  A code typed on the on-screen keyboard, or
"typed" by a USB hand scanner acting as a keyboard (fast keys + Enter), is a POST /api/scan.

What the page also understands (optional, tolerated when absent): ``color`` on a line or a total
(else the colour last seen for that category in ``categories``, else a built-in palette);
``reasons: [{"id", "zh", "en"}]`` on a ``needs: "reason"`` action (else a few common reasons,
posted as their Chinese text); ``pending.package_code`` / ``pending.weight_g`` /
``pending.category_name`` / ``pending.printing`` / ``pending.editing``; ``status`` on a line
(storage: ``waiting`` | ``ok`` | ``deviation`` | ``batch``).

This server
===========

``KioskServer(source)`` serves, on 127.0.0.1 by default:

- ``GET /`` and the files of ``kiosk_static/`` by exact name (a whitelist built at start: no
  directory listing, no path traversal), ``Cache-Control: no-store`` and a Content-Security-Policy
  that allows nothing but this origin (the page cannot silently depend on the internet).
- ``GET /api/state`` — ``source.snapshot()``.
- ``GET /api/events`` — Server-Sent Events: ``retry:``, one ``event: hello`` with the static files'
  hash (a page of an older release reloads itself after an update), then ``event: state`` on every
  change, ``: ping`` (and an ``event: ping`` the page can see) after 15 s of silence.  One pump
  thread waits on the source and serialises each new state once for all connected pages;
  ``stop()`` ends every stream at once, so a page sees the drop immediately and reconnects.
- ``POST /api/action``, ``POST /api/scan`` — JSON (``Content-Type: application/json``, which a
  foreign web page cannot send without a CORS preflight this server never answers); bad JSON,
  missing, wrong-typed or unknown fields → 400 naming what was wrong; a ``ValueError``
  (``KioskError``) from the source → 400 with its message.  PIN values are never logged.
- ``GET /healthz`` — ``{"ok": true, "clients": N, "version": V}`` (the kiosk unit waits for it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

from edge.errors import EdgeError

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "kiosk_static"
KIOSK_PORT = 8088  # the deployed port: deploy/systemd/wastecart-kiosk.service points Chromium at it
PING_S = 15.0  # s of silence on an event stream before a ": ping" comment (keeps proxies and the page sure)
RETRY_MS = 1000  # ms: EventSource's own reconnect delay, sent as "retry:" (the page also reconnects itself)
PUMP_WAIT_S = 0.25  # s: longest single wait on the source (it cannot be woken from here): bounds stop()
PUMP_ERROR_BACKOFF_S = 1.0  # s: after a failing snapshot(), before trying again (no hot loop on a bug)
# The contract's ": ping" comment keeps the stream warm; the "ping" event after it is what the page
# can see (EventSource hides comments), so it can tell a silent cart from a lost one.
PING_FRAME = b": ping\nevent: ping\ndata: {}\n\n"
MAX_BODY = 4096  # bytes: an action or a typed code is tiny; anything bigger is refused (413)
STOP_WAIT_S = 2.0  # s: stop() waits this long for open event streams to close
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".woff2": "font/woff2",
}
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class KioskError(EdgeError, ValueError):
    """An action the screen asked for that the cart refuses (unknown id, bad value); ``str()`` goes to the page."""


class KioskSource(Protocol):
    """What the server needs of the cart agent; the page only ever sees ``snapshot()``.

    ``wait_changed(version, timeout)`` returns the current version (an int ≥ 0) as soon as it
    differs from ``version``, else after ``timeout`` seconds — blocking on a condition, not polling.
    ``Changes`` implements it.
    """

    def snapshot(self) -> dict[str, Any]: ...
    def act(self, id: str, value: str | None) -> None: ...
    def scan(self, text: str) -> None: ...
    def wait_changed(self, version: int, timeout: float) -> int: ...


class Changes:
    """A version counter to wait on: the owner calls ``bump()`` after each change of the model."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    def bump(self) -> int:
        with self._cond:
            self._version += 1
            self._cond.notify_all()
            return self._version

    def wait_changed(self, version: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._version != version, timeout=timeout)
            return self._version


def static_files(root: Path = STATIC_DIR) -> dict[str, Path]:
    """URL path → file, for every servable file under ``root`` (the whitelist; nothing else is served)."""
    files = {"/" + p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
             if p.is_file() and p.suffix in CONTENT_TYPES and not p.name.startswith(".")}
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


def assets_hash(files: dict[str, Path]) -> str:
    """A short hash of the page's files: a page that sees another one after a reconnect reloads itself."""
    h = hashlib.sha256()
    for name, path in sorted(files.items()):
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


class BadRequest(Exception):
    """A request the page should not have sent: the status and the reason it gets back."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class KioskServer:
    """The kiosk's HTTP server over a ``KioskSource``; ``start()``/``stop()`` or a ``with`` block."""

    def __init__(self, source: KioskSource, host: str = "127.0.0.1", port: int = 0,
                 static_dir: Path = STATIC_DIR, ping_s: float = PING_S) -> None:
        self.source = source
        self.ping_s = ping_s
        self.host = host
        self._files = static_files(static_dir)
        if "/" not in self._files:  # an install without the package data: say so now, not as a 404 on the cart
            raise EdgeError(f"kiosk page missing: no index.html in {static_dir}")
        self.assets = assets_hash(self._files)
        self._cond = threading.Condition()  # guards the fields below; notified on a new state or stop
        self._latest: tuple[int, bytes] | None = None  # (version, "event: state" frame) last pumped
        self._clients = 0
        self._stopping = False
        self._stop = threading.Event()
        self.errors = 0  # requests and pump rounds that failed on a bug (logged with the traceback)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server_cls = type("_KioskHTTPServer", (ThreadingHTTPServer,), {"address_family": family})
        self._httpd: ThreadingHTTPServer = server_cls((host, port), _handler(self), bind_and_activate=False)
        self._serve_thread: threading.Thread | None = None
        self._pump_thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Where a browser on this machine opens the page (a wildcard bind is reached on loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    @property
    def clients(self) -> int:
        """Open event streams (pages connected now)."""
        with self._cond:
            return self._clients

    def start(self) -> KioskServer:
        try:
            self._httpd.server_bind()
            self._httpd.server_activate()
        except OSError as exc:
            self._httpd.server_close()
            raise EdgeError(f"kiosk cannot listen on {self.host}:{self._httpd.server_address[1]}: {exc}") from exc
        self._pump_thread = threading.Thread(target=self._pump, name="kiosk-pump", daemon=True)
        self._pump_thread.start()
        self._serve_thread = threading.Thread(target=self._serve, name="kiosk-http", daemon=True)
        self._serve_thread.start()
        log.info("kiosk on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop accepting, end every event stream now (pages see the drop at once), release the port."""
        self._stop.set()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._serve_thread is not None:
            self._wake_accept()
            self._serve_thread.join()
        self._httpd.server_close()
        with self._cond:
            self._cond.wait_for(lambda: self._clients == 0, timeout=STOP_WAIT_S)
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=PUMP_WAIT_S + 1.0)

    def _serve(self) -> None:
        """Accept until stopped; blocks in accept (no poll interval), ``stop()`` wakes it by connecting."""
        while not self._stop.is_set():
            self._httpd.handle_request()

    def _wake_accept(self) -> None:
        host = self.url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
        try:
            socket.create_connection((host, self.port), timeout=1.0).close()
        except OSError as exc:  # the listener is gone already: nothing to wake
            log.debug("kiosk: waking the accept loop: %s", exc)

    def __enter__(self) -> KioskServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # the pump: one thread waits on the source and frames each new state once --------------------

    def _pump(self) -> None:
        seen = -1
        while not self._stop.is_set():
            try:
                version = self.source.wait_changed(seen, PUMP_WAIT_S)
                if version == seen:
                    continue
                frame = b"event: state\ndata: " + _json(self.source.snapshot()) + b"\n\n"
            except Exception:  # the thread's one guard: a bug in the source must not freeze the screen
                self._count_error()
                log.exception("kiosk: reading the screen model failed")
                self._stop.wait(PUMP_ERROR_BACKOFF_S)
                continue
            seen = version
            with self._cond:
                self._latest = (version, frame)
                self._cond.notify_all()

    def _stream(self, write: Callable[[bytes], None]) -> None:
        """One page's event stream, until the page goes away or the server stops."""
        hello = _json({"assets": self.assets})
        write(f"retry: {RETRY_MS}\n\n".encode() + b"event: hello\ndata: " + hello + b"\n\n")
        sent = -1
        with self._cond:
            self._clients += 1
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(partial(self._news_for, sent), timeout=self.ping_s)
                    if self._stopping:
                        return
                    latest = self._latest
                if latest is not None and latest[0] != sent:
                    sent = latest[0]
                    write(latest[1])
                else:
                    write(PING_FRAME)
        finally:
            with self._cond:
                self._clients -= 1
                self._cond.notify_all()

    def _news_for(self, sent: int) -> bool:
        """Wake a stream: the server stops, or a state it has not sent yet (call with ``_cond`` held)."""
        return self._stopping or (self._latest is not None and self._latest[0] != sent)

    def _count_error(self) -> None:
        with self._cond:
            self.errors += 1

    def _health(self) -> dict[str, Any]:
        with self._cond:
            return {"ok": True, "clients": self._clients, "version": self._latest[0] if self._latest else None,
                    "assets": self.assets}


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _fields(body: dict[str, Any], required: dict[str, bool], optional: tuple[str, ...] = ()) -> None:
    """Unknown fields and missing or non-string ones are refused by name (required: name → may be empty)."""
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise BadRequest(400, f"unknown field {unknown[0]!r}")
    for name, may_be_empty in required.items():
        if name not in body:
            raise BadRequest(400, f"missing field {name!r}")
        if not isinstance(body[name], str) or (not may_be_empty and not body[name].strip()):
            raise BadRequest(400, f"{name!r} must be a non-empty string")
    for name in optional:
        if body.get(name) is not None and not isinstance(body[name], str):
            raise BadRequest(400, f"{name!r} must be a string or null")


def _handler(kiosk: KioskServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "wastecart-kiosk"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("kiosk %s: " + format, self.address_string(), *args)

        def do_GET(self) -> None:
            self._guarded(self._get)

        def do_POST(self) -> None:
            self._guarded(self._post)

        def _guarded(self, serve: Callable[[str], None]) -> None:
            path = urlsplit(self.path).path
            try:
                serve(path)
            except BadRequest as exc:
                self._send_json(exc.status, {"error": str(exc)})
            except (BrokenPipeError, ConnectionResetError):
                log.debug("kiosk: %s went away during %s", self.address_string(), path)
            except Exception:  # the request's one guard: log the bug with its traceback, answer 500
                kiosk._count_error()
                log.exception("kiosk: %s %s failed", self.command, path)
                self._send_json(500, {"error": "internal error in the cart agent (logged)"})

        # GET -----------------------------------------------------------------------------------

        def _get(self, path: str) -> None:
            if path == "/api/state":
                self._send_json(200, kiosk.source.snapshot())
            elif path == "/api/events":
                self._events()
            elif path == "/healthz":
                self._send_json(200, kiosk._health())
            elif path in ("/api/action", "/api/scan"):
                self._send_json(405, {"error": f"{path} takes POST"}, allow="POST")
            elif path in kiosk._files:
                file = kiosk._files[path]
                self._send(200, file.read_bytes(), CONTENT_TYPES[file.suffix])
            else:
                self._send_json(404, {"error": f"no such page: {path}"})

        def _events(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Accel-Buffering", "no")
            self.end_headers()

            def write(data: bytes) -> None:
                self.wfile.write(data)
                self.wfile.flush()

            kiosk._stream(write)
            self.close_connection = True

        # POST ----------------------------------------------------------------------------------

        def _post(self, path: str) -> None:
            if path not in ("/api/action", "/api/scan"):
                if path in kiosk._files or path in ("/api/state", "/api/events", "/healthz"):
                    raise BadRequest(405, f"{path} takes GET")
                raise BadRequest(404, f"no such endpoint: {path}")
            body = self._read_json()
            if path == "/api/action":
                _fields(body, {"id": False}, optional=("value",))
                action, value = body["id"], body.get("value")
                log.info("kiosk action %s%s", action, " (with a value)" if value is not None else "")
                try:
                    kiosk.source.act(action, value)
                except ValueError as exc:
                    raise BadRequest(400, str(exc)) from exc
            else:
                _fields(body, {"text": False})
                log.info("kiosk typed code %r", body["text"][:64])
                try:
                    kiosk.source.scan(body["text"])
                except ValueError as exc:
                    raise BadRequest(400, str(exc)) from exc
            self._send_json(202, {"ok": True})

        def _read_json(self) -> dict[str, Any]:
            ctype = self.headers.get("Content-Type", "")
            if ctype.split(";")[0].strip().lower() != "application/json":
                raise BadRequest(415, f"expected Content-Type application/json, got {ctype or 'none'!r}")
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                raise BadRequest(411, "missing or bad Content-Length")
            if int(length) > MAX_BODY:
                raise BadRequest(413, f"body of {length} bytes is larger than {MAX_BODY}")
            raw = self.rfile.read(int(length))
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadRequest(400, f"request body is not JSON: {exc}") from exc
            if not isinstance(body, dict):
                raise BadRequest(400, f"expected a JSON object, got {type(body).__name__}")
            return body

        # responses -----------------------------------------------------------------------------

        def _send_json(self, status: int, obj: Any, allow: str | None = None) -> None:
            self._send(status, _json(obj), "application/json; charset=utf-8", allow=allow)

        def _send(self, status: int, data: bytes, ctype: str, allow: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Referrer-Policy", "no-referrer")
            if allow:
                self.send_header("Allow", allow)
            self.end_headers()
            self.wfile.write(data)

    return Handler
