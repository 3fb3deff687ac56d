"""Ways to reach a printer, chosen by URL scheme from one registry (:data:`TRANSPORTS`).

``tcp://host[:9100]`` (raw AppSocket), ``usblp:///dev/usb/lp0`` (the Linux usblp character device)
and ``serial:///dev/ttyUSB0?baud=9600`` (through pyserial's ``serial_for_url``; a pty path works the
same — the simulator and the tests use one).  A transport is raw I/O: it lets the socket's, the
fd's or pyserial's errors escape.  They become :class:`PrinterError` in one place,
:func:`translated`, at the boundary (:func:`connect` and :class:`Connection`), the way httpx maps
httpcore's exceptions.  pyserial is imported only when a serial printer is opened: a gateway host
has none.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import termios
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from edge.devices.printer.urls import Target, parse_url
from edge.errors import PrinterError
from edge.messages import Msg, msg

if TYPE_CHECKING:
    from serial import Serial

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0  # seconds for a TCP connect: a printer on the cart's LAN answers in milliseconds
WRITE_TIMEOUT_S = 30.0  # seconds a job may take to go out: a busy printer takes bytes as it prints
DRAIN_S = 2.0  # seconds to wait for the printer to close after our FIN (it has then read the whole job)

# What a transport lets escape: OSError covers the socket's errors (socket.timeout is TimeoutError)
# and pyserial's SerialException (an IOError subclass); termios.error comes from pyserial's buffer
# reset on an unplugged adapter and is not an OSError; ValueError is pyserial refusing a line setting.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (OSError, termios.error, ValueError)
# An error's reason in words, most specific first; any other error gives the system's own words.
REASONS: tuple[tuple[type[Exception], str], ...] = (
    (ConnectionRefusedError, "printer.why.refused"),
    (TimeoutError, "printer.why.timed_out"),
    (FileNotFoundError, "printer.why.no_device"),
    (PermissionError, "printer.why.permission"),
)


class Transport(Protocol):
    """Raw I/O to one printer; third-party errors escape (``translated`` maps them)."""

    def write(self, data: bytes) -> None: ...

    def read(self, timeout_s: float) -> bytes:
        """What arrives within ``timeout_s`` (b"" when nothing); PrinterError when the printer hung up."""
        ...

    def close(self) -> None: ...


def reason_of(exc: Exception) -> Msg | str:
    """Why a transport failed: one of our reasons, or the system's words (they have no Chinese)."""
    if isinstance(exc, socket.gaierror):
        return msg("printer.why.unknown_host", detail=exc.strerror or str(exc))
    for kind, key in REASONS:
        if isinstance(exc, kind):
            return msg(key)
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


@contextlib.contextmanager
def translated(target: Target, key: str) -> Iterator[None]:
    """The one place a transport's errors become ``PrinterError(key, url=…, reason=…)``."""
    try:
        yield
    except TRANSPORT_ERRORS as exc:
        raise PrinterError(key, url=target.url, reason=reason_of(exc)) from exc


class TcpTransport:
    """Raw TCP (port 9100): the job is the bytes; a graceful close tells the printer the job is complete."""

    def __init__(self, target: Target, connect_timeout_s: float) -> None:
        self.target = target
        self.sock = socket.create_connection((target.host, target.port), timeout=connect_timeout_s)

    def write(self, data: bytes) -> None:
        self.sock.settimeout(WRITE_TIMEOUT_S)
        self.sock.sendall(data)

    def read(self, timeout_s: float) -> bytes:
        self.sock.settimeout(timeout_s)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return b""
        if not data:
            raise PrinterError("printer.hung_up", url=self.target.url)
        return data

    def close(self) -> None:
        """FIN after the job, then wait (briefly) for the printer's close: closing with unread bytes
        in our buffer would send a reset, which can cost the printer the end of the job."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + DRAIN_S
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                if not self.sock.recv(4096):
                    break
        except OSError as exc:  # already gone: the job was written, nothing more to say
            log.debug("printer %s: closing: %s", self.target.url, exc)
        finally:
            self.sock.close()


class UsblpTransport:
    """The Linux usblp character device: written and read on one fd; ``select`` bounds every wait."""

    def __init__(self, target: Target, _connect_timeout_s: float) -> None:
        self.target = target
        self.fd = os.open(target.path, os.O_RDWR | os.O_NOCTTY)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self.fd], [], WRITE_TIMEOUT_S)
            if not ready:
                raise PrinterError("printer.no_progress", url=self.target.url, seconds=f"{WRITE_TIMEOUT_S:g}")
            view = view[os.write(self.fd, view):]

    def read(self, timeout_s: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout_s)
        return os.read(self.fd, 4096) if ready else b""

    def close(self) -> None:
        os.close(self.fd)


class SerialTransport:
    """A serial port (8N1) opened with pyserial's ``serial_for_url``; a pty path works the same."""

    def __init__(self, target: Target, _connect_timeout_s: float) -> None:
        import serial

        self.target = target
        self.port: Serial = serial.serial_for_url(
            target.path, baudrate=target.baud, bytesize=8, parity="N", stopbits=1, timeout=0,
            write_timeout=WRITE_TIMEOUT_S)
        try:
            self.port.reset_input_buffer()  # an old answer must not be taken for this job's status
        except TRANSPORT_ERRORS:
            self.port.close()
            raise

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read(self, timeout_s: float) -> bytes:
        self.port.timeout = timeout_s
        data: bytes = self.port.read(1)
        if data and self.port.in_waiting:
            data += self.port.read(self.port.in_waiting)
        return data

    def close(self) -> None:
        self.port.close()


# scheme -> transport: the ways to reach a printer (the same schemes as urls.SCHEMES, a test checks).
TRANSPORTS: dict[str, Callable[[Target, float], Transport]] = {
    "tcp": TcpTransport,
    "usblp": UsblpTransport,
    "serial": SerialTransport,
}


class Connection:
    """An open transport whose every call has its errors translated: what the front class talks to."""

    def __init__(self, target: Target, transport: Transport) -> None:
        self.target = target
        self._transport = transport

    @property
    def url(self) -> str:
        return self.target.url

    def write(self, data: bytes) -> None:
        with translated(self.target, "printer.connection_lost"):
            self._transport.write(data)

    def read(self, timeout_s: float) -> bytes:
        with translated(self.target, "printer.connection_lost"):
            return self._transport.read(timeout_s)


@contextlib.contextmanager
def connect(url: str, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[Connection]:
    """Open the printer at ``url`` for one job; closed on leaving (an error while closing is only logged)."""
    target = parse_url(url)
    with translated(target, "printer.connect_failed"):
        transport = TRANSPORTS[target.scheme](target, connect_timeout_s)
    try:
        yield Connection(target, transport)
    finally:
        try:
            transport.close()
        except TRANSPORT_ERRORS as exc:  # the job was written or has failed already: nothing to add
            log.debug("printer %s: closing: %s", target.url, exc)
