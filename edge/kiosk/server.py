"""The kiosk's HTTP server: the cart's touch-screen page and the API behind it (contract:
``edge.kiosk.contract``).

``KioskServer(source, settings)`` listens where ``settings`` (``KioskSettings``; the cart passes
its ``[kiosk]`` config) says — 127.0.0.1 by default, the screen's Chromium being on the same
machine — and answers by its route table: ``ROUTES`` (method + path → endpoint) plus one GET route
per file of ``static/`` (a whitelist built at start: no directory listing, no path traversal); a
known path asked with another method is a 405, anything else a 404.  Before the route, every
request must name one of the kiosk's hosts (else 421) and every POST come from the page's own
origin (else 403): ``edge.kiosk.guard``.  Standard library only (``http.server``): nothing new to
install on the cart.

Threads: the accept loop and the pump are ``edge.worker.Worker`` s; the accept loop also reads
every arriving request, and one that has arrived whole gets a short-lived thread of its own — at
most ``max_connections`` connections in all, each request bounded in time and size
(``edge.kiosk.connections``).  The pump waits on the source and frames each new screen model once
for every connected page; each page's event stream waits on the server's condition for the next
frame, or a ping after ``ping_s`` of silence.  At most ``max_streams`` streams are open: a new one
ends the oldest.  A stream wakes every ``STREAM_CHECK_S`` to see whether its page closed the
connection (a page closed is no longer counted within that time, not at the next ping).
``stop()`` ends every stream at once (a page sees the drop immediately and reconnects), shuts
every other connection down and releases the port.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from types import TracebackType

from edge import catalogue
from edge.errors import EdgeError
from edge.kiosk.connections import Listener
from edge.kiosk.contract import ACCEPTED, ActionBody, Health, KioskSource, ScanBody
from edge.kiosk.guard import Guard
from edge.kiosk.handler import (
    JSON_TYPE,
    MAX_BODY,
    PING_FRAME,
    BadRequest,
    KioskHandler,
    assets_hash,
    event_frame,
    hello_frame,
    static_files,
    to_json,
)
from edge.kiosk.settings import KIOSK_PORT, KioskSettings
from edge.worker import Worker

log = logging.getLogger(__name__)

__all__ = ["ANY_PORT", "KIOSK_PORT", "ROUTES", "KioskServer"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
PING_S = 15.0  # s of silence on an event stream before a ": ping" comment (keeps proxies and the page sure)
PUMP_WAIT_S = 0.25  # s: longest single wait on the source (it cannot be woken from here): bounds stop()
PUMP_ERROR_BACKOFF_S = 1.0  # s: after a failing snapshot(), before trying again (no hot loop on a bug)
STOP_WAIT_S = 2.0  # s: stop() waits this long for open event streams to close, and for the accept loop
# s: a waiting event stream checks this often whether its page closed the connection: a closed page
# leaves the count within this time; 4 cheap wake-ups a second per page (at most max_streams) cost nothing.
STREAM_CHECK_S = 0.25
ANY_PORT = KioskSettings(port=0)  # the default: a free port on 127.0.0.1 (tests, tools); the agent passes its config

# An endpoint answers one request; it raises BadRequest for what the page should not have sent.
Endpoint = Callable[["KioskServer", KioskHandler], None]


class _Stream:
    """One page's event stream, while it is registered; ``ended`` when a newer one took its place."""

    __slots__ = ("ended",)

    def __init__(self) -> None:
        self.ended = False


class KioskServer:
    """The kiosk's HTTP server over a ``KioskSource``; ``start()``/``stop()`` or a ``with`` block."""

    def __init__(self, source: KioskSource, settings: KioskSettings = ANY_PORT, *,
                 static_dir: Path = STATIC_DIR, ping_s: float = PING_S) -> None:
        self.source = source
        self.settings = settings
        self.ping_s = ping_s
        self.host = settings.host
        self.guard = Guard(settings)
        files = static_files(static_dir)
        if "/" not in files:  # an install without the package data: say so now, not as a 404 on the cart
            raise EdgeError("kiosk.no_page", folder=str(static_dir))
        self.assets = assets_hash(files)
        self.routes: dict[tuple[str, str], Endpoint] = {
            **{("GET", path): _static(file) for path, file in files.items()}, **ROUTES}
        self.catalogue = to_json(catalogue.as_json())  # fixed for the process: serialised once
        self._cond = threading.Condition()  # guards the fields below; notified on a new state or stop
        self._latest: tuple[int, bytes] | None = None  # (version, "event: state" frame) last pumped
        self._seen = -1  # the source's version last pumped (the pump's own)
        self._streams: list[_Stream] = []  # open event streams, oldest first
        self._stopping = False
        self._request_errors = 0
        self._httpd = Listener(settings.host, settings.port, partial(KioskHandler, self),
                               max_connections=settings.max_connections, read_timeout_s=settings.read_timeout_s,
                               max_body=MAX_BODY, on_refused=self.guard.refuse, on_error=self.count_error)
        self._pump = Worker("kiosk-pump", self._pump_once, join_s=PUMP_WAIT_S + 1.0, retry_s=PUMP_ERROR_BACKOFF_S)
        self._accept = Worker("kiosk-http", self._accept_once, join_s=STOP_WAIT_S, on_stop=self._httpd.wake)
        self._started = False

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
            return len(self._streams)

    @property
    def connections(self) -> int:
        """Open connections, arriving or answered (only an answered one holds a thread), streams included."""
        return self._httpd.open_connections

    @property
    def errors(self) -> int:
        """Requests and pump rounds that failed on a bug (each logged with its traceback)."""
        with self._cond:
            return self._request_errors + self._pump.errors + self._accept.errors

    def start(self) -> KioskServer:
        try:
            self._httpd.server_bind()
            self._httpd.server_activate()
        except OSError as exc:
            self._httpd.server_close()
            raise EdgeError("kiosk.cannot_listen", host=self.host, port=self._httpd.server_address[1],
                            reason=str(exc)) from exc
        self._started = True
        self._pump.start()
        self._accept.start()
        log.info("kiosk on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop accepting, end every event stream now (pages see the drop at once), cut every other
        connection (a slow client is not waited for), release the port."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._started:
            self._accept.stop()
        with self._cond:
            self._cond.wait_for(lambda: not self._streams, timeout=STOP_WAIT_S)
        if not self._httpd.close_all(STOP_WAIT_S):
            log.warning("kiosk: %d connections still open after %s s", self._httpd.open_connections, STOP_WAIT_S)
        self._httpd.server_close()
        if self._started:
            self._pump.stop()

    def __enter__(self) -> KioskServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # requests (edge.kiosk.handler.Site) ---------------------------------------------------------

    def dispatch(self, method: str, path: str, request: KioskHandler) -> None:
        """Refuse a foreign Host (421) or, on a POST, a foreign origin (403); then hand the request to
        its route's endpoint; 405 for a known path with another method, else 404."""
        peer = request.address_string()
        refused = self.guard.host_refusal(request.headers)
        if refused is not None:
            self.guard.refuse("host", peer, refused[1])
            raise BadRequest(*refused)
        if method != "GET":
            why = self.guard.origin_refusal(request.headers)
            if why is not None:
                self.guard.refuse("origin", peer, why)
                raise BadRequest(403, why)
        endpoint = self.routes.get((method, path))
        if endpoint is not None:
            endpoint(self, request)
            return
        allowed = sorted({m for m, p in self.routes if p == path})
        if allowed:
            raise BadRequest(405, f"{path} takes {' or '.join(allowed)}", allow=", ".join(allowed))
        raise BadRequest(404, f"no such page: {path}" if method == "GET" else f"no such endpoint: {path}")

    def count_error(self) -> None:
        with self._cond:
            self._request_errors += 1

    # the endpoints --------------------------------------------------------------------------------

    def get_state(self, request: KioskHandler) -> None:
        request.send_json(200, self.source.snapshot())

    def get_catalogue(self, request: KioskHandler) -> None:
        request.send(200, self.catalogue, JSON_TYPE)

    def get_events(self, request: KioskHandler) -> None:
        request.send_events(self._frames(request.peer_gone(), request.address_string()))

    def get_health(self, request: KioskHandler) -> None:
        with self._cond:
            health: Health = {"ok": True, "clients": len(self._streams),
                              "version": self._latest[0] if self._latest else None, "assets": self.assets,
                              "refused": self.guard.counts()}
        request.send_json(200, health)

    def post_action(self, request: KioskHandler) -> None:
        body = request.read_body(ActionBody)
        action, value = body["id"], body.get("value")
        log.info("kiosk action %s%s", action, " (with a value)" if value is not None else "")  # never the PIN
        try:
            self.source.act(action, value)
        except ValueError as exc:  # KioskError: the page shows why
            raise BadRequest(400, str(exc)) from exc
        request.send_json(202, ACCEPTED)

    def post_scan(self, request: KioskHandler) -> None:
        body = request.read_body(ScanBody)
        log.info("kiosk typed code %r", body["text"][:64])
        try:
            self.source.scan(body["text"])
        except ValueError as exc:
            raise BadRequest(400, str(exc)) from exc
        request.send_json(202, ACCEPTED)

    # threads ----------------------------------------------------------------------------------

    def _accept_once(self) -> float:
        """One pass of the accept loop (``edge.kiosk.connections``); waits on its sockets and the
        earliest deadline, no poll interval: ``stop()`` wakes it."""
        self._httpd.serve_once()
        return 0.0

    def _pump_once(self) -> float:
        """Wait for a new version of the screen model; frame it once for every page."""
        version = self.source.wait_changed(self._seen, PUMP_WAIT_S)
        if version != self._seen:
            frame = event_frame("state", to_json(self.source.snapshot()))
            self._seen = version
            with self._cond:
                self._latest = (version, frame)
                self._cond.notify_all()
        return 0.0

    def _frames(self, gone: Callable[[], bool], peer: str) -> Generator[bytes, None, None]:
        """One page's event stream: hello, then each new state (or a ping after ``ping_s`` of
        silence), until the server stops, the page closes it, or a newer stream takes its place."""
        me = self._open_stream(peer)
        try:
            yield hello_frame(self.assets)
            sent = -1
            ping_at = time.monotonic() + self.ping_s
            while True:
                with self._cond:
                    self._cond.wait_for(partial(self._news_for, me, sent),
                                        timeout=min(STREAM_CHECK_S, max(0.0, ping_at - time.monotonic())))
                    if self._stopping or me.ended:
                        return
                    latest = self._latest
                if latest is not None and latest[0] != sent:
                    sent = latest[0]
                    yield latest[1]
                elif time.monotonic() >= ping_at:
                    yield PING_FRAME
                elif gone():
                    log.debug("kiosk: %s closed its event stream", peer)
                    return
                else:
                    continue
                ping_at = time.monotonic() + self.ping_s
        finally:
            with self._cond:
                if me in self._streams:
                    self._streams.remove(me)
                self._cond.notify_all()

    def _open_stream(self, peer: str) -> _Stream:
        """Register a stream; at ``max_streams`` already, the oldest ends now (its page reconnects)."""
        me = _Stream()
        with self._cond:
            ended = self._streams[:max(0, len(self._streams) - self.settings.max_streams + 1)]
            for oldest in ended:
                oldest.ended = True
                self._streams.remove(oldest)
            self._streams.append(me)
            self._cond.notify_all()
        for _ in ended:
            self.guard.refuse("streams_closed", peer, f"{self.settings.max_streams} streams open: the oldest ends")
        return me

    def _news_for(self, me: _Stream, sent: int) -> bool:
        """Wake a stream: the server stops, it was ended, or a state it has not sent yet (``_cond`` held)."""
        return self._stopping or me.ended or (self._latest is not None and self._latest[0] != sent)


def _static(file: Path) -> Endpoint:
    def send(kiosk: KioskServer, request: KioskHandler) -> None:
        request.send_file(file)
    return send


# The kiosk's API (contract: edge.kiosk.contract); each server adds a GET route per static file.
ROUTES: dict[tuple[str, str], Endpoint] = {
    ("GET", "/api/state"): KioskServer.get_state,
    ("GET", "/api/catalogue"): KioskServer.get_catalogue,
    ("GET", "/api/events"): KioskServer.get_events,
    ("GET", "/healthz"): KioskServer.get_health,
    ("POST", "/api/action"): KioskServer.post_action,
    ("POST", "/api/scan"): KioskServer.post_scan,
}
