"""The live fleet: one watcher thread re-reads the fleet when it changed, SSE clients are woken.

The watcher checks a cheap mark (``ConsoleDb.fleet_mark``) every ``POLL_S`` and reads the whole
fleet only when the mark moved, so N open consoles cost one query a second, not N.  Clients live
on uvicorn's event loop: the thread wakes each one's ``asyncio.Event`` through
``loop.call_soon_threadsafe``.  At most ``max_clients`` streams at once (``register`` says None).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from gateway.console.fleet import ConsoleDb

log = logging.getLogger(__name__)

POLL_S = 1.0  # s: the store is looked at this often; a cart's will shows on the page within ~1 s of its commit
KEEPALIVE_S = 15.0  # s: a comment line this often keeps proxies from closing an idle stream, and finds dead clients
STOP_JOIN_S = 5.0  # s: the watcher is one short query away from seeing stop


@dataclass(eq=False)
class Client:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)


class FleetHub:
    """The latest fleet JSON with a version; ``start``/``stop`` the watcher; ``stream`` for SSE."""

    def __init__(self, db: ConsoleDb, max_clients: int, poll_s: float = POLL_S) -> None:
        self._db = db
        self._max = max_clients
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._clients: set[Client] = set()
        self._version = 0
        self._body = b""
        self._carts = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0  # failed reads (logged with the traceback)

    def start(self) -> None:
        self._refresh()  # a page opened right after start has the fleet at once
        self._thread = threading.Thread(target=self._run, name="console-fleet", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake_all()
        if self._thread is not None:
            self._thread.join(STOP_JOIN_S)
            self._thread = None

    def latest(self) -> tuple[int, bytes]:
        with self._lock:
            return self._version, self._body

    def register(self) -> Client | None:
        """A new stream's handle (call on the event loop), or None when ``max_clients`` are open."""
        client = Client(asyncio.get_running_loop())
        with self._lock:
            if len(self._clients) >= self._max or self._stop.is_set():
                return None
            self._clients.add(client)
        return client

    def unregister(self, client: Client) -> None:
        with self._lock:
            self._clients.discard(client)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    async def stream(self, client: Client) -> AsyncIterator[bytes]:
        """SSE bytes: the fleet now, then at every change; a keep-alive comment when quiet."""
        sent = -1
        try:
            while not self._stop.is_set():
                version, body = self.latest()
                if version != sent:
                    sent = version
                    yield b"event: fleet\ndata: " + body + b"\n\n"
                    continue
                try:
                    await asyncio.wait_for(client.event.wait(), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                client.event.clear()
        finally:
            self.unregister(client)

    def _run(self) -> None:
        mark: object = None
        while not self._stop.wait(self._poll_s):
            try:
                now_mark = self._db.fleet_mark()
                if now_mark != mark:
                    self._refresh()
                    mark = now_mark
            except Exception:  # the thread's one guard: a failed read must not end the live page
                self.errors += 1
                log.exception("console: reading the fleet failed")

    def read_now(self) -> bytes:
        """The fleet read now (not the last poll's): for a page or an API call."""
        return _body(_carts_json(self._db))

    def _refresh(self) -> None:
        carts = _carts_json(self._db)
        with self._lock:
            if carts == self._carts:
                return
            self._carts = carts
            self._version += 1
            self._body = _body(carts)
        self._wake_all()

    def _wake_all(self) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.loop.call_soon_threadsafe(client.event.set)
            except RuntimeError:  # its loop is closed: the server is gone, the stream with it
                self.unregister(client)


def _carts_json(db: ConsoleDb) -> str:
    return json.dumps(db.fleet(), ensure_ascii=False, separators=(",", ":"))


def _body(carts_json: str) -> bytes:
    """{"now": server time (the page's ages use it), "carts": [...]}: one line, as SSE data needs."""
    return f'{{"now":{time.time():.3f},"carts":{carts_json}}}'.encode()
