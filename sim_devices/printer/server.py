"""The printer's wires: raw TCP (AppSocket, port 9100), a pty (serial/USB printer), an HTTP control API.

Threads only move bytes: each connection (and the pty) owns one :class:`PrinterStream`, hands it
what it reads and acts on the events that come out — status answers go straight back on the same
socket/pty, finished labels are rendered and recorded.  ``offline`` closes the TCP port (connections
are refused, open ones cut) and makes the pty deaf; ``paper_out`` answers "paper out" and drops jobs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import select
import socket
import threading
import tty
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sim_devices.printer.model import Event, Label, StatusQuery
from sim_devices.printer.render import find_cjk_font, render
from sim_devices.printer.stream import STATES, PrinterStream, status_reply

log = logging.getLogger(__name__)

RECV_BYTES = 65536  # bytes per read: a label with a bitmap is tens of KB
PTY_IDLE_END_S = 2.0  # s of silence on the pty that end an ESC/POS job (a pty has no "close")
JOIN_S = 5.0  # s to wait for a thread at stop: they all wake at once, this only bounds a bug
SHUTDOWN_POLL_S = 0.05  # s: how often the control server looks at its shutdown flag
MAX_BODY_BYTES = 4096  # bytes: a control request is one small JSON object
_JOB_FILE = re.compile(r"job-(\d+)\.json")


class SimPrinter:
    """A label/receipt printer on ``tcp_url`` (and ``pty_path`` with ``pty=True``).

    Context manager: ``__enter__`` opens the port(s) and starts the threads, ``__exit__`` stops them
    and closes everything.  Each job is written to ``folder`` as ``job-NNNNNN.png`` and ``.json``.
    ``on_job`` is called (from a connection thread) with each recorded job.
    """

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0, pty: bool = False,
                 width_dots: int = 576, control_port: int | None = 0, *,
                 on_job: Callable[[dict[str, Any]], None] | None = None, cjk_font: bool = True,
                 pty_idle_end_s: float = PTY_IDLE_END_S) -> None:
        if width_dots <= 0 or width_dots % 8:
            raise ValueError(f"width_dots must be a positive multiple of 8, got {width_dots}")
        self.folder = Path(folder)
        self.host, self.port, self.width_dots = host, port, width_dots
        self.want_pty, self.control_port = pty, control_port
        self.on_job = on_job
        self.pty_idle_end_s = pty_idle_end_s
        self.font_path = find_cjk_font() if cjk_font else None
        self.errors = 0  # bugs caught by a thread guard (logged with their traceback)
        self.dropped = 0  # jobs received while out of paper (not printed)
        self._state = "ok"
        self._cond = threading.Condition()
        self._jobs: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._listen_lock = threading.Lock()  # serialises opening/closing the TCP listener
        self._listener: _Listener | None = None
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._control: ThreadingHTTPServer | None = None
        self._pty_fds: tuple[int, int] | None = None
        self._pty_path: str | None = None
        self._wake_r, self._wake_w = -1, -1
        self._started = False

    # ---------------------------------------------------------------- life cycle

    @property
    def tcp_url(self) -> str:
        if not self._started:
            raise RuntimeError("SimPrinter is not started")
        return f"tcp://{self.host}:{self.port}"

    @property
    def pty_path(self) -> str | None:
        return self._pty_path

    @property
    def control_url(self) -> str | None:
        if self._control is None:
            return None
        return f"http://{self.host}:{self._control.server_address[1]}"

    def __enter__(self) -> SimPrinter:
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = [int(m.group(1)) for p in self.folder.iterdir() if (m := _JOB_FILE.fullmatch(p.name))]
        self._ids = itertools.count(max(existing, default=0) + 1)  # never overwrite an earlier run's jobs
        try:
            with self._listen_lock:
                self._listener = _Listener(self.host, self.port, self._serve_connection)
                self.port = self._listener.port
            self._started = True
            if self.want_pty:
                self._open_pty()
            if self.control_port is not None:
                self._control = ThreadingHTTPServer((self.host, self.control_port), _control_handler(self))
                self._control.daemon_threads = True
                self._start(self._control.serve_forever, "sim-printer-control", SHUTDOWN_POLL_S)
        except BaseException:
            self.__exit__()
            raise
        log.info("printer on %s (pty %s, control %s, jobs in %s)", self.tcp_url, self.pty_path,
                 self.control_url, self.folder)
        return self

    def start(self) -> SimPrinter:
        return self.__enter__()

    def stop(self) -> None:
        self.__exit__(None, None, None)

    def __exit__(self, *exc: object) -> None:
        if self._control is not None:
            self._control.shutdown()
            self._control.server_close()
        with self._listen_lock:
            if self._listener is not None:
                self._listener.close()
            self._listener = None
        self._cut_connections()
        with self._cond:  # their threads close them; then nothing more is written into the folder
            self._cond.wait_for(lambda: not self._conns, JOIN_S)
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        for t in self._threads:
            t.join(JOIN_S)
        self._threads = []
        for fd in (*(self._pty_fds or ()), self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._pty_fds, self._wake_r, self._wake_w = None, -1, -1
        self._control = None
        self._started = False

    def _start(self, target: Callable[..., object], name: str, *args: object) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # ---------------------------------------------------------------- state and jobs

    @property
    def state(self) -> str:
        with self._cond:
            return self._state

    def set_state(self, state: str) -> None:
        """``ok``, ``offline`` (TCP refused, open connections cut, pty deaf) or ``paper_out``."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}; got {state!r}")
        with self._listen_lock:
            if state != "offline" and self._listener is None and self._started:
                # the same port again; OSError if it was taken meanwhile (the state is then unchanged)
                self._listener = _Listener(self.host, self.port, self._serve_connection)
            with self._cond:
                self._state = state
            if state == "offline" and self._listener is not None:
                self._listener.close()
                self._listener = None
        if state == "offline":
            self._cut_connections()
        log.info("printer state: %s", state)

    def jobs(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(j) for j in sorted(self._jobs, key=lambda j: int(j["id"]))]

    def wait_jobs(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Blocks until at least ``n`` jobs are recorded; TimeoutError says how many came."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._jobs) >= n, timeout):
                raise TimeoutError(f"{len(self._jobs)} of {n} print jobs after {timeout} s")
        return self.jobs()

    def clear_jobs(self) -> int:
        """Forgets the recorded jobs (their files stay in ``folder``); returns how many there were."""
        with self._cond:
            n, self._jobs = len(self._jobs), []
        return n

    def status(self) -> dict[str, Any]:
        with self._cond:
            jobs = len(self._jobs)
        return {"state": self.state, "tcp_url": self.tcp_url, "pty_path": self.pty_path, "jobs": jobs,
                "dropped": self.dropped, "errors": self.errors, "connections": len(self._conns),
                "folder": str(self.folder)}

    def _handle(self, events: list[Event], reply: Callable[[bytes], None], source: str) -> None:
        for event in events:
            if isinstance(event, StatusQuery):
                if self.state != "offline":
                    reply(status_reply(event.kind, self.state))
            else:
                self._record(event, source)

    def _record(self, label: Label, source: str) -> None:
        state = self.state
        if state != "ok":
            with self._cond:
                self.dropped += 1
            log.info("%s job dropped: printer %s", label.language, state)
            return
        image, render_warnings = render(label, self.font_path)
        with self._cond:
            job_id = next(self._ids)
        png = self.folder / f"job-{job_id:06d}.png"
        job: dict[str, Any] = {
            "id": job_id, "language": label.language, "qr": label.qr, "texts": list(label.texts),
            "bitmaps": label.bitmaps, "png": str(png), "bytes": label.nbytes,
            "warnings": [*label.warnings, *render_warnings],
            "at": datetime.now().astimezone().isoformat(timespec="milliseconds"),
            "source": source, "size": [image.width, image.height],
        }
        _write_atomic(png, lambda f: image.save(f, format="PNG"))
        _write_atomic(png.with_suffix(".json"),
                      lambda f: f.write(json.dumps(job, ensure_ascii=False, indent=1).encode("utf-8")))
        with self._cond:
            self._jobs.append(job)
            self._cond.notify_all()
        if self.on_job is not None:
            self.on_job(dict(job))

    # ---------------------------------------------------------------- TCP

    def _serve_connection(self, conn: socket.socket) -> None:
        """One client: everything it sends is one stream; ends when it closes (or we cut it)."""
        with self._cond:
            if self._state == "offline":
                conn.close()
                return
            self._conns.add(conn)

        def reply(data: bytes) -> None:
            with contextlib.suppress(OSError):  # the client left without reading the answer
                conn.sendall(data)

        stream = PrinterStream(self.width_dots)
        try:
            while True:
                try:
                    data = conn.recv(RECV_BYTES)
                except OSError:  # reset by the client, or cut by offline/stop
                    data = b""
                if not data:
                    break
                self._handle(stream.feed(data), reply, "tcp")
            if self.state != "offline":  # a connection cut by offline prints nothing more
                self._handle(stream.close(), reply, "tcp")
        except Exception:  # the connection's one guard: a bug must not take the printer down
            with self._cond:
                self.errors += 1
            log.exception("printer connection crashed")
        finally:
            conn.close()
            with self._cond:
                self._conns.discard(conn)
                self._cond.notify_all()

    def _cut_connections(self) -> None:
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # its thread's recv returns; the thread closes it

    # ---------------------------------------------------------------- pty

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # bytes pass unchanged both ways (no echo, no CR/LF mapping)
        os.set_blocking(master, False)
        self._pty_fds = (master, slave)  # the slave stays open here: the pty lives between clients
        self._pty_path = os.ttyname(slave)
        self._wake_r, self._wake_w = os.pipe()
        self._start(self._run_pty, "sim-printer-pty", master)

    def _run_pty(self, master: int) -> None:
        stream = PrinterStream(self.width_dots)

        def reply(data: bytes) -> None:
            with contextlib.suppress(BlockingIOError, OSError):  # nobody reads and the buffer is full
                os.write(master, data)

        while True:
            idle = stream.language == "escpos" and not stream.at_boundary()
            try:
                readable, _, _ = select.select([master, self._wake_r], [], [], self.pty_idle_end_s if idle else None)
                if self._wake_r in readable:
                    return
                data = os.read(master, RECV_BYTES) if readable else None
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:  # the pty is gone: nothing more to read
                log.warning("printer pty closed: %s", e)
                return
            try:
                if data is None:  # silence after ESC/POS data: the job is over
                    self._handle(stream.close(), reply, "pty")
                elif data and self.state != "offline":  # a printer that is off hears nothing
                    self._handle(stream.feed(data), reply, "pty")
            except Exception:  # the pty's one guard: log, count, start a fresh stream
                with self._cond:
                    self.errors += 1
                log.exception("printer pty reader crashed")
                stream = PrinterStream(self.width_dots)


class _Listener:
    """The listening socket and its accept thread; ``close()`` refuses further connections."""

    def __init__(self, host: str, port: int, serve: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server((host, port))  # sets SO_REUSEADDR: re-binds at once after offline
        self.port = int(self.sock.getsockname()[1])
        self._serve = serve
        self._wake_r, self._wake_w = os.pipe()
        self.thread = threading.Thread(target=self._run, name=f"sim-printer-tcp-{self.port}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            readable, _, _ = select.select([self.sock.fileno(), self._wake_r], [], [])
            if self._wake_r in readable:
                return
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), name="sim-printer-conn", daemon=True).start()

    def close(self) -> None:
        os.write(self._wake_w, b"x")
        if self.thread is not threading.current_thread():
            self.thread.join(JOIN_S)
        self.sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _write_atomic(path: Path, write: Callable[[Any], object]) -> None:
    """Writes via a temporary file and a rename, so a reader never sees half a PNG or JSON."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def _control_handler(printer: SimPrinter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "SimPrinter/1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the sim runs inside tests and the demo

        def do_GET(self) -> None:
            path = self.path.split("?")[0].rstrip("/")
            if path == "/jobs":
                self._json(HTTPStatus.OK, printer.jobs())
            elif path in ("/status", "/state"):
                self._json(HTTPStatus.OK, printer.status())
            elif m := re.fullmatch(r"/jobs/(\d+)(\.png|\.json)?", path):
                job = next((j for j in printer.jobs() if j["id"] == int(m.group(1))), None)
                if job is None:
                    self._json(HTTPStatus.NOT_FOUND, {"error": f"no job {m.group(1)}"})
                elif m.group(2) == ".png":
                    try:
                        png = Path(job["png"]).read_bytes()
                    except OSError as e:  # removed from the folder by hand
                        self._json(HTTPStatus.GONE, {"error": f"job {job['id']}: {e}"})
                        return
                    self._send(HTTPStatus.OK, png, "image/png")
                else:
                    self._json(HTTPStatus.OK, job)
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})

        def do_DELETE(self) -> None:
            if self.path.rstrip("/") == "/jobs":
                self._json(HTTPStatus.OK, {"deleted": printer.clear_jobs()})
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.path.rstrip("/") != "/state":
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})
                return
            if length > MAX_BODY_BYTES:
                self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body over {MAX_BODY_BYTES} bytes"})
                return
            try:
                doc = json.loads(self.rfile.read(length) or b"null")
                if not isinstance(doc, dict) or not isinstance(doc.get("state"), str):
                    raise ValueError('expected {"state": "ok" | "offline" | "paper_out"}')
                printer.set_state(doc["state"])
            except ValueError as e:  # bad JSON or an unknown state: refused, the state stays
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
                return
            except OSError as e:  # back online, but the TCP port was taken meanwhile
                self._json(HTTPStatus.CONFLICT, {"error": f"cannot listen on port {printer.port} again: {e}"})
                return
            self._json(HTTPStatus.OK, printer.status())

        def _json(self, status: HTTPStatus, doc: object) -> None:
            self._send(status, json.dumps(doc, ensure_ascii=False).encode("utf-8"), "application/json")

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
