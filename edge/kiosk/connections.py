"""How much a client may hold of the kiosk: open connections, and the time a request may take.

The server stays the standard library's handler with a thread of its own for each connection
(nothing to install on the cart; the lead's decision), but a connection gets its thread only once
its **whole request has arrived**: until then the accept loop reads it, without blocking, beside every other arriving
request (``selectors``).  So a client that sends slowly (slowloris, a short body) costs a socket
and a small buffer, never a thread, and the threads are at most ``max_connections`` plus the
accept loop and the pump, whatever arrives.  The bounds:

- **Connections.**  At most ``max_connections`` sockets are open, arriving or answered.  A new one
  beyond that takes the place of the connection whose request has been arriving the longest (it
  is answered 503 and closed): clients slow to send their request cannot keep a page out, however
  fast they reconnect, as a page's request arrives in one packet and is served at once (at worst
  its connection waits in the listen backlog: ``tests/bench/bench_kiosk.py``).  Only
  when every open connection is being answered (a request in progress, an event stream) does the
  new one get the 503 itself — at once, in the accept loop.
- **Time.**  A request's head *and* body must arrive within ``read_timeout_s`` of its connection
  (one deadline, not a timeout per ``recv``, which a byte a second would never trip): else 408 if
  any of it came, or a plain close if nothing did.  Writes time out after ``read_timeout_s`` too
  (a client that stops reading an answer or an event stream).
- **Bytes.**  A head over ``MAX_HEAD`` is answered 431; a body is read ahead only up to
  ``max_body`` (a larger Content-Length is handed on unread, for the handler's 413).

``close_all()`` closes what is arriving and shuts down what is answered (a thread blocked writing
wakes at once): ``stop()`` never waits for a slow client.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import HTTPServer
from socketserver import BaseRequestHandler

from edge.kiosk.guard import RefusalKind

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024  # bytes: a request line and headers (Chromium's are < 2 KiB); more is refused (431)
DRAIN_BYTES = 64 * 1024  # bytes read (and dropped) from a refused connection, so closing it is a FIN, not a RST
HEAD_ENDS = (b"\r\n\r\n", b"\n\n")  # the blank line ending a head (the stdlib parser takes bare LF too)

Address = tuple[str, int] | tuple[str, int, int, int]
Refuse = Callable[[RefusalKind, str, str], None]


def plain_answer(status: int, reason: str, message: str, extra: str = "") -> bytes:
    """A whole HTTP/1.0 answer with a JSON ``{"error": message}`` body, for a connection that has
    no handler (refused by the accept loop)."""
    body = ('{"error": "' + message.replace("\\", "\\\\").replace('"', '\\"') + '"}').encode()
    head = (f"HTTP/1.0 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n{extra}Connection: close\r\n\r\n")
    return head.encode("ascii") + body


BUSY_ANSWER = plain_answer(503, "Service Unavailable", "the kiosk is busy: too many connections",
                           "Retry-After: 1\r\n")
HEAD_TOO_LARGE = plain_answer(431, "Request Header Fields Too Large", f"request head larger than {MAX_HEAD} bytes")


def head_size(data: bytes | bytearray) -> int | None:
    """The bytes of the request head at the start of ``data``; None while it is incomplete."""
    ends = [(i + len(end)) for end in HEAD_ENDS if (i := data.find(end)) >= 0]
    return min(ends) if ends else None


def body_size(head: bytes, max_body: int) -> int:
    """The bytes of body to wait for after ``head``: its Content-Length if valid and at most
    ``max_body``; else 0 (the handler refuses the request without reading a body)."""
    try:
        lengths = http.client.parse_headers(io.BytesIO(head[head.find(b"\n") + 1:])).get_all("Content-Length")
    except http.client.HTTPException:  # too many headers, a line too long: the handler answers it
        return 0
    if not lengths or len(lengths) != 1 or not (lengths[0].isascii() and lengths[0].isdigit()):
        return 0
    return int(lengths[0]) if int(lengths[0]) <= max_body else 0


def send_and_close(sock: socket.socket, answer: bytes) -> None:
    """Answer a connection that has no thread, and close it, without blocking: take what the client
    sent already (so the close is not a reset that could eat the answer), send, close."""
    try:
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.recv(DRAIN_BYTES)
        if answer:
            sock.send(answer)  # small, into an empty send buffer: taken whole
        sock.shutdown(socket.SHUT_WR)
    except OSError as exc:  # gone already, or reset: nothing to answer
        log.debug("kiosk: answering a refused connection: %s", exc)
    finally:
        sock.close()


@dataclass(eq=False)
class Arriving:
    """A connection whose request is still arriving (read by the accept loop)."""

    sock: socket.socket
    address: Address
    since: float  # monotonic s it was accepted: its request is due within read_timeout_s of this
    data: bytearray = field(default_factory=bytearray)
    size: int | None = None  # bytes of the whole request, once its head is in

    @property
    def peer(self) -> str:
        return str(self.address[0])


class Listener(HTTPServer):
    """The listening socket, the accept loop (``serve_once`` is one pass) and the connections;
    IPv6 when the host is an IPv6 address; bound by ``KioskServer.start()``."""

    # Connections the kernel holds until accepted (the stdlib's 5 is soon full): a burst of page
    # loads, or an attack taken at thousands a second, must not make a page's connection wait for a
    # SYN retransmit (1 s).  Longer is not better: a page would wait behind a longer queue of attackers.
    request_queue_size = 128

    def __init__(self, host: str, port: int, handler: Callable[..., BaseRequestHandler], *, max_connections: int,
                 read_timeout_s: float, max_body: int, on_refused: Refuse, on_error: Callable[[], None]) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), handler, bind_and_activate=False)
        self.max_connections = max_connections
        self.read_timeout_s = read_timeout_s
        self.max_body = max_body
        # Connections taken per pass of the loop: fewer than can be open, so one accepted in a pass
        # is read in the next (reads come first) before newer ones could take its place.
        self.accept_batch = max(1, max_connections // 2)
        self._on_refused = on_refused  # counts and logs a refusal (busy, timeout)
        self._on_error = on_error  # counts a bug while answering (logged here with its traceback)
        self._selector = selectors.DefaultSelector()  # the loop's own
        self._wake_r, self._wake_w = socket.socketpair()  # stop() interrupts the loop's wait
        self._arriving: dict[socket.socket, Arriving] = {}  # the loop's own, oldest first
        self._lock = threading.Condition()  # guards the fields below; notified when a thread ends
        self._answered: dict[socket.socket, bytes] = {}  # connections with a thread → their request, until taken
        self._late = plain_answer(408, "Request Timeout", f"request not complete within {read_timeout_s} s")

    def server_activate(self) -> None:
        super().server_activate()
        self.socket.setblocking(False)
        self._selector.register(self.socket, selectors.EVENT_READ)
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)

    def server_close(self) -> None:
        super().server_close()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._arriving) + len(self._answered)

    def wake(self) -> None:
        """End the loop's current wait (``stop()``)."""
        with contextlib.suppress(OSError):  # already closed, or a wake is pending: enough
            self._wake_w.send(b"\0")

    def take_request(self, sock: socket.socket) -> bytes:
        """The request that arrived on ``sock`` (its handler parses it from these bytes), once."""
        with self._lock:
            request, self._answered[sock] = self._answered[sock], b""
            return request

    # the loop ------------------------------------------------------------------------------------

    def serve_once(self) -> None:
        """One pass: wait for a connection, bytes or a deadline; read what came (a complete request
        goes to a thread), then take new connections, then close the requests out of time."""
        now = time.monotonic()
        due = min((a.since for a in self._arriving.values()), default=None)
        timeout = None if due is None else max(0.0, due + self.read_timeout_s - now)
        events = self._selector.select(timeout)
        accept = False
        for key, _ in events:
            if key.fileobj is self.socket:
                accept = True
            elif key.fileobj is self._wake_r:
                with contextlib.suppress(OSError):
                    self._wake_r.recv(64)
            elif isinstance(key.data, Arriving):
                self._read(key.data)
        if accept:
            self._accept()
        self._expire(time.monotonic())

    def _read(self, a: Arriving) -> None:
        limit = (a.size or MAX_HEAD + self.max_body) - len(a.data)
        try:
            chunk = a.sock.recv(max(1, limit))
        except BlockingIOError:
            return
        except OSError as exc:  # reset
            log.debug("kiosk: %s: %s", a.peer, exc)
            chunk = b""
        if not chunk:  # the client gave up: nothing to answer
            self._drop(a, b"")
            return
        a.data += chunk
        if a.size is None:
            head = head_size(a.data)
            if (head or len(a.data)) > MAX_HEAD:
                self._drop(a, HEAD_TOO_LARGE)
                return
            if head is None:
                return
            a.size = head + body_size(bytes(a.data[:head]), self.max_body)
        if len(a.data) >= a.size:
            self._hand_over(a)

    def _accept(self) -> None:
        for _ in range(self.accept_batch):
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, an aborted connection: the next pass retries
                log.warning("kiosk: accepting a connection: %s", exc)
                return
            peer = str(address[0])
            with self._lock:
                full = len(self._arriving) + len(self._answered) >= self.max_connections
            if full:
                if not self._arriving:  # every one is being answered: a real full house
                    self._on_refused("busy", peer, f"{self.max_connections} connections answered already: 503")
                    send_and_close(sock, BUSY_ANSWER)
                    continue
                oldest = next(iter(self._arriving.values()))
                self._on_refused("busy", oldest.peer, "its request was the slowest to arrive: 503 to make room")
                self._drop(oldest, BUSY_ANSWER)
            sock.setblocking(False)
            a = Arriving(sock, address, time.monotonic())
            with self._lock:
                self._arriving[sock] = a
            self._selector.register(sock, selectors.EVENT_READ, a)

    def _expire(self, now: float) -> None:
        for a in list(self._arriving.values()):  # oldest first: stop at the first still in time
            if now - a.since < self.read_timeout_s:
                return
            self._on_refused("timeout", a.peer, f"request not complete within {self.read_timeout_s} s "
                             f"({len(a.data)} bytes)")
            self._drop(a, self._late if a.data else b"")

    def _drop(self, a: Arriving, answer: bytes) -> None:
        self._selector.unregister(a.sock)
        with self._lock:
            del self._arriving[a.sock]
            self._lock.notify_all()
        send_and_close(a.sock, answer)

    def _hand_over(self, a: Arriving) -> None:
        """The request is in: a thread answers it (the bytes are its request; writes time out)."""
        self._selector.unregister(a.sock)
        a.sock.settimeout(self.read_timeout_s)
        with self._lock:
            del self._arriving[a.sock]
            self._answered[a.sock] = bytes(a.data)
        try:
            threading.Thread(target=self._serve, args=(a.sock, a.address), name="kiosk-conn", daemon=True).start()
        except RuntimeError as exc:  # no thread to be had (the process's limit): as a full house
            log.error("kiosk: no thread for %s: %s", a.peer, exc)
            self._forget(a.sock)
            send_and_close(a.sock, BUSY_ANSWER)

    # the connections' threads ----------------------------------------------------------------------

    def _serve(self, request: socket.socket, client_address: Address) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError as exc:  # the peer went away, or reset: no news
            log.debug("kiosk: %s: %s", client_address[0], exc)
        except Exception:  # the connection's one guard: a bug, logged with its traceback and counted
            self._on_error()
            log.exception("kiosk: answering %s failed", client_address[0])
        finally:
            self.shutdown_request(request)
            self._forget(request)

    def _forget(self, request: socket.socket) -> None:
        with self._lock:
            self._answered.pop(request, None)
            self._lock.notify_all()

    def close_all(self, timeout: float) -> bool:
        """After the loop ended: close what is arriving, shut down what is answered (a thread blocked
        writing wakes at once), wait up to ``timeout`` for their threads; False if some did not end."""
        with self._lock:
            arriving = list(self._arriving.values())
            self._arriving.clear()
        for a in arriving:
            send_and_close(a.sock, b"")
        with self._lock:
            for sock in self._answered:
                with contextlib.suppress(OSError):  # closed by its own thread meanwhile
                    sock.shutdown(socket.SHUT_RDWR)
            return self._lock.wait_for(lambda: not self._answered, timeout)
