"""One HTTP request to the kiosk: read and check its body, answer it, or hold an event stream open.

The server (``edge.kiosk.server``) decides *what* a request gets (its route table); this module
knows *how* to speak HTTP to the page: the static-file whitelist and the headers every answer
carries (no caching, a Content-Security-Policy allowing nothing but this origin), the JSON bodies
checked against the contract's shapes (size, depth, fields), the Server-Sent Events framing, and
the one guard that turns a bug into a logged 500 instead of a dropped connection.  A handler
runs only once its whole request has arrived (``edge.kiosk.connections`` reads it, within
``read_timeout_s``): it parses the request from those bytes and never waits on the client to
send.  Standard library only.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import select
import socket
from collections.abc import Callable, Generator
from contextlib import closing
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit

from edge.kiosk.connections import Listener
from edge.kiosk.guard import MAX_JSON_DEPTH, json_too_deep

log = logging.getLogger(__name__)

MAX_BODY = 4096  # bytes: an action or a typed code is tiny; anything bigger is refused (413)
RETRY_MS = 1000  # ms: EventSource's own reconnect delay, sent as "retry:" (the page also reconnects itself)
# The contract's ": ping" comment keeps the stream warm; the "ping" event after it is what the page
# can see (EventSource hides comments), so it can tell a silent cart from a lost one.
PING_FRAME = b": ping\nevent: ping\ndata: {}\n\n"
JSON_TYPE = "application/json; charset=utf-8"
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

T = TypeVar("T")


def static_files(root: Path) -> dict[str, Path]:
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


def to_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON (Chinese as itself, not ``\\u`` escapes)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def event_frame(event: str, data: bytes) -> bytes:
    """One Server-Sent Event (``data`` is one line of JSON)."""
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def hello_frame(assets: str) -> bytes:
    """What a stream starts with: the reconnect delay, and the page files' hash."""
    return f"retry: {RETRY_MS}\n\n".encode() + event_frame("hello", to_json({"assets": assets}))


class BadRequest(Exception):
    """A request the page should not have sent: the status and the reason it gets back."""

    def __init__(self, status: int, reason: str, allow: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.allow = allow  # the methods a 405's path takes


def check_fields(body: dict[str, Any], shape: type) -> None:
    """Refuse, by name, a field ``shape`` (a body TypedDict of ``edge.kiosk.contract``) does not have,
    a missing required one, and one that is not a string (required: non-empty; optional: or null)."""
    required: frozenset[str] = vars(shape)["__required_keys__"]
    optional: frozenset[str] = vars(shape)["__optional_keys__"]
    unknown = sorted(set(body) - required - optional)
    if unknown:
        raise BadRequest(400, f"unknown field {unknown[0]!r}")
    for name in sorted(required):
        if name not in body:
            raise BadRequest(400, f"missing field {name!r}")
        if not isinstance(body[name], str) or not body[name].strip():
            raise BadRequest(400, f"{name!r} must be a non-empty string")
    for name in sorted(optional):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise BadRequest(400, f"{name!r} must be a string or null")


class Site(Protocol):
    """What a request needs of the server: where it goes, and where a bug in answering it is counted."""

    def dispatch(self, method: str, path: str, request: KioskHandler) -> None: ...
    def count_error(self) -> None: ...


class KioskHandler(BaseHTTPRequestHandler):
    """One connection's requests, each dispatched to ``site``; build with ``partial(KioskHandler, site)``."""

    server_version = "wastecart-kiosk"
    sys_version = ""

    def __init__(self, site: Site, *args: Any) -> None:
        self.site = site  # before super().__init__(), which handles the request
        super().__init__(*args)

    def setup(self) -> None:
        super().setup()
        assert isinstance(self.server, Listener), "KioskHandler answers a Listener's connections"
        self.rfile.close()  # the socket's reader, replaced by the request as it arrived (closed: frees the socket)
        self.rfile = io.BytesIO(self.server.take_request(self.connection))

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("kiosk %s: " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._guarded()

    def do_POST(self) -> None:
        self._guarded()

    def _guarded(self) -> None:
        path = urlsplit(self.path).path
        try:
            self.site.dispatch(self.command, path, self)
        except BadRequest as exc:
            self.send_json(exc.status, {"error": str(exc)}, allow=exc.allow)
        except (ConnectionError, TimeoutError) as exc:  # gone, or not taking the answer
            self.close_connection = True
            log.debug("kiosk: %s went away during %s: %r", self.address_string(), path, exc)
        except Exception:  # the request's one guard: log the bug with its traceback, answer 500
            self.site.count_error()
            log.exception("kiosk: %s %s failed", self.command, path)
            self.send_json(500, {"error": "internal error in the cart agent (logged)"})

    # reading ---------------------------------------------------------------------------------

    def read_json(self) -> dict[str, Any]:
        """The body as a JSON object: only ``application/json`` (which a foreign page cannot send
        without a CORS preflight this server never answers), of a known and sane length."""
        ctype = self.headers.get("Content-Type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            raise BadRequest(415, f"expected Content-Type application/json, got {ctype or 'none'!r}")
        length = self.headers.get("Content-Length")
        if length is None or not (length.isascii() and length.isdigit()):
            raise BadRequest(411, "missing or bad Content-Length")
        if int(length) > MAX_BODY:
            raise BadRequest(413, f"body of {length} bytes is larger than {MAX_BODY}")
        raw = self.rfile.read(int(length))  # all there: the accept loop hands over only a whole request
        if json_too_deep(raw):
            raise BadRequest(400, f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(400, f"request body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRequest(400, f"expected a JSON object, got {type(body).__name__}")
        return body

    def read_body(self, shape: type[T]) -> T:
        """The body, checked against one of the contract's body shapes (``ActionBody``, ``ScanBody``)."""
        body = self.read_json()
        check_fields(body, shape)
        return cast(T, body)

    # answering -------------------------------------------------------------------------------

    def send_json(self, status: int, obj: Any, allow: str | None = None) -> None:
        self.send(status, to_json(obj), JSON_TYPE, allow=allow)

    def send_file(self, path: Path) -> None:
        self.send(200, path.read_bytes(), CONTENT_TYPES[path.suffix])

    def send(self, status: int, data: bytes, ctype: str, allow: str | None = None) -> None:
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

    def peer_gone(self) -> Callable[[], bool]:
        """A check that the client closed its end (or reset it), without reading what it may have
        sent: for an event stream, which is never read again and whose writes are rare."""
        poller = select.poll()  # not select(): a descriptor above 1024 is possible under load
        poller.register(self.connection, select.POLLIN)

        def gone() -> bool:
            try:
                return bool(poller.poll(0)) and self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:  # reset
                return True
        return gone

    def send_events(self, frames: Generator[bytes, None, None]) -> None:
        """An event stream: each frame as it comes, until ``frames`` ends (the server stops, the page
        went away, a newer stream took its place) or a write fails; ``frames`` is closed either way,
        so it can count clients."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Accel-Buffering", "no")
        self.end_headers()
        with closing(frames):
            for frame in frames:
                self.wfile.write(frame)
                self.wfile.flush()
        self.close_connection = True
