"""A simulated waste-management platform: real HTTP, keeps what it received, injects faults.

``POST /records`` (JSON with an ``id``) is idempotent like a careful real platform: the first
request with an ``Idempotency-Key`` (the record id; without the header the id is the key) is
stored, 201; a repeat is 200 ``"duplicate": true`` and still counts, so re-deliveries are
visible.  ``GET /records`` lists one item per distinct record ``{id, received_count,
first_received_at, record}``; ``GET /stats`` the counts ``{records, receipts, duplicates,
injected_errors, bad_requests}``.  ``GET/POST /control`` reads or sets the faults
``{error_rate, latency_ms, down}``; the same settings exist as Python attributes.

``down`` is a real outage: the records port is closed (connections are refused) and re-bound on
the same port when it comes back.  So that a test can still steer and read the platform while it
is down, a second, never-faulted listener (``control_url``) serves ``/control``, ``GET /records``
and ``GET /stats`` (not ``POST /records``).  ``/control`` on the main port also works while up.

Stdlib only, and on purpose no import of ``edge``, ``gateway`` or ``wastecart``: a simulator that
shares the code it tests would hide that code's bugs.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

# Largest request body accepted (bytes): a record is a few KB; anything bigger is a client bug.
MAX_BODY_BYTES = 1_000_000
# Longest latency that may be configured (ms): beyond a minute it is "down", not "slow".
MAX_LATENCY_MS = 60_000
# How often serve_forever looks at its shutdown flag (s): bounds how long stop() and down take.
SHUTDOWN_POLL_S = 0.05


class _Listener:
    """One ThreadingHTTPServer and the thread serving it."""

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self.server = ThreadingHTTPServer((host, port), handler)  # SO_REUSEADDR: re-bind after down
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, args=(SHUTDOWN_POLL_S,),
                                       name=name, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop accepting and close the listening socket (callable from one of its handlers)."""
        self.server.shutdown()
        self.server.server_close()
        if self.thread is not threading.current_thread():
            self.thread.join()


class SimPlatform:
    """``start()``, ``stop()``, ``.url``, ``.control_url``, ``records()``, ``counts()``;
    faults: ``error_rate``, ``latency_ms``, ``down``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, error_rate: float = 0.0,
                 latency_ms: int = 0, down: bool = False, seed: int | None = None,
                 control_port: int = 0) -> None:
        self.host, self.port, self.control_port = host, port, control_port
        self._lock = threading.Lock()
        self._listen_lock = threading.Lock()  # serialises opening / closing the records listener
        self._rng = random.Random(seed)
        self._records: dict[str, dict[str, Any]] = {}  # key -> {id, received_count, first_received_at, record}
        self._counts = {"receipts": 0, "duplicates": 0, "injected_errors": 0, "bad_requests": 0}
        self._stopping = threading.Event()
        self._started = False
        self._main: _Listener | None = None
        self._ctl: _Listener | None = None
        self._error_rate, self._latency_ms, self._down = 0.0, 0, False
        self.set_faults(error_rate=error_rate, latency_ms=latency_ms, down=down)

    # ---------------------------------------------------------------- life cycle

    @property
    def url(self) -> str:
        """Where records go (refuses connections while ``down``)."""
        if not self._started:
            raise RuntimeError("SimPlatform is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def control_url(self) -> str:
        """Never faulted: /control, GET /records, GET /stats."""
        if self._ctl is None:
            raise RuntimeError("SimPlatform is not started")
        return f"http://{self.host}:{self._ctl.port}"

    def start(self) -> SimPlatform:
        self._stopping.clear()
        self._ctl = _Listener(self.host, self.control_port, _handler_for(self, control=True),
                                  "sim-platform-control")
        self.control_port = self._ctl.port
        with self._listen_lock:
            self._main = _Listener(self.host, self.port, _handler_for(self, control=False), "sim-platform")
            self.port = self._main.port  # kept: a platform that comes back up re-binds the same port
            self._started = True
            self._sync_listener()
        log.info("platform listening on %s (control %s)", self.url, self.control_url)
        return self

    def stop(self) -> None:
        """Stop listening; requests waiting out a latency are answered at once."""
        self._stopping.set()
        with self._listen_lock:
            self._started = False
            if self._main is not None:
                self._main.close()
            self._main = None
        if self._ctl is not None:
            self._ctl.close()
        self._ctl = None

    def _sync_listener(self) -> None:
        """Open or close the records listener to match ``down`` (caller holds _listen_lock)."""
        if not self._started:
            return
        if self._down and self._main is not None:
            self._main.close()
            self._main = None
            log.info("platform down: %s refuses connections", self.url)
        elif not self._down and self._main is None:
            self._main = _Listener(self.host, self.port, _handler_for(self, control=False), "sim-platform")
            log.info("platform up again on %s", self.url)

    def __enter__(self) -> SimPlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- faults

    def set_faults(self, *, error_rate: float | None = None, latency_ms: int | None = None,
                   down: bool | None = None) -> dict[str, Any]:
        """Change any of the faults; ValueError (nothing changed) on a bad value."""
        if error_rate is not None and (isinstance(error_rate, bool) or not isinstance(error_rate, int | float)
                                       or not 0 <= error_rate <= 1):
            raise ValueError(f"error_rate must be a number from 0 to 1, got {error_rate!r}")
        if latency_ms is not None and (isinstance(latency_ms, bool) or not isinstance(latency_ms, int)
                                       or not 0 <= latency_ms <= MAX_LATENCY_MS):
            raise ValueError(f"latency_ms must be an integer from 0 to {MAX_LATENCY_MS}, got {latency_ms!r}")
        if down is not None and not isinstance(down, bool):
            raise ValueError(f"down must be true or false, got {down!r}")
        with self._listen_lock:
            with self._lock:
                if error_rate is not None:
                    self._error_rate = float(error_rate)
                if latency_ms is not None:
                    self._latency_ms = latency_ms
                if down is not None:
                    self._down = down
                faults = self._faults()
            self._sync_listener()
        return faults

    def _faults(self) -> dict[str, Any]:
        return {"error_rate": self._error_rate, "latency_ms": self._latency_ms, "down": self._down}

    @property
    def faults(self) -> dict[str, Any]:
        with self._lock:
            return self._faults()

    @property
    def error_rate(self) -> float:
        return self._error_rate

    @error_rate.setter
    def error_rate(self, value: float) -> None:
        self.set_faults(error_rate=value)

    @property
    def latency_ms(self) -> int:
        return self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: int) -> None:
        self.set_faults(latency_ms=value)

    @property
    def down(self) -> bool:
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        self.set_faults(down=value)

    # ---------------------------------------------------------------- what was received

    def records(self) -> list[dict[str, Any]]:
        """One item per distinct record, in order of first receipt."""
        with self._lock:
            return [dict(item) for item in self._records.values()]

    def counts(self) -> dict[str, int]:
        """distinct, receipts (incl. re-deliveries), duplicates, injected_errors, bad_requests."""
        with self._lock:
            return {"distinct": len(self._records), **self._counts}

    def stats(self) -> dict[str, int]:
        """``GET /stats``: records (distinct), receipts, duplicates, injected_errors, bad_requests."""
        with self._lock:
            return {"records": len(self._records), **self._counts}

    # ---------------------------------------------------------------- request logic (HTTP-free)

    def _fault_for(self, path: str, method: str) -> tuple[float, bool]:
        """(latency in s, answer 503?) for one request on the records port."""
        with self._lock:
            if path == "/control":
                return 0.0, False
            fail = method == "POST" and path == "/records" and self._rng.random() < self._error_rate
            if fail:
                self._counts["injected_errors"] += 1
            return self._latency_ms / 1000, fail

    def _receive(self, body: bytes, idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
        try:
            record = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return self._bad(f"body is not JSON: {exc}")
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"]:
            return self._bad("body must be a JSON object with a non-empty string 'id'")
        rid = record["id"]
        if idempotency_key is not None and idempotency_key != rid:
            return self._bad(f"Idempotency-Key {idempotency_key!r} does not match id {rid!r}")
        key = idempotency_key or rid
        with self._lock:
            self._counts["receipts"] += 1
            item = self._records.get(key)
            if item is not None:  # the first answer stands; the repeat is only counted
                item["received_count"] += 1
                self._counts["duplicates"] += 1
                return 200, {"id": rid, "status": "accepted", "duplicate": True}
            self._records[key] = {"id": rid, "received_count": 1, "first_received_at": time.time(),
                                  "record": record}
            return 201, {"id": rid, "status": "accepted"}

    def _bad(self, reason: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._counts["bad_requests"] += 1
        return 400, {"error": reason}

    def _control(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            wanted = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return 400, {"error": f"body is not JSON: {exc}"}
        if not isinstance(wanted, dict):
            return 400, {"error": "body must be a JSON object"}
        unknown = sorted(set(wanted) - {"error_rate", "latency_ms", "down"})
        if unknown:
            return 400, {"error": f"unknown setting(s): {', '.join(unknown)}"}
        try:
            return 200, self.set_faults(**wanted)
        except ValueError as exc:
            return 400, {"error": str(exc)}


def _handler_for(platform: SimPlatform, *, control: bool) -> type[BaseHTTPRequestHandler]:
    """The request handler of the records port, or (``control``) of the never-faulted control port."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "wastecart-sim-platform/1"

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            body = self._body() if method == "POST" else b""
            if body is None:
                return
            latency, fail = (0.0, False) if control else platform._fault_for(path, method)
            if latency:
                platform._stopping.wait(latency)
            if fail:
                self._answer(503, {"error": "platform unavailable (simulated)"})
            elif (method, path) == ("POST", "/records") and not control:
                self._answer(*platform._receive(body, self.headers.get("Idempotency-Key")))
            elif (method, path) == ("GET", "/records"):
                self._answer(200, platform.records())
            elif (method, path) == ("GET", "/stats"):
                self._answer(200, platform.stats())
            elif (method, path) == ("GET", "/control"):
                self._answer(200, platform.faults)
            elif (method, path) == ("POST", "/control"):
                self._answer(*platform._control(body))
            else:
                self._answer(404, {"error": f"no {method} {path}"})

        def _body(self) -> bytes | None:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY_BYTES:
                self._answer(400, {"error": f"Content-Length must be 0..{MAX_BODY_BYTES}"})
                return None
            return self.rfile.read(length)

        def _answer(self, status: int, obj: Any) -> None:
            data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
            try:
                self.send_response(status, HTTPStatus(status).phrase)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError as exc:  # the client gave up (its timeout): what was received still counts
                log.debug("answer %d not delivered: %s", status, exc)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler
