"""One reader thread per scale port: opens it, feeds the protocol's parser, hands readings over,
and reconnects forever (an unplugged USB-serial adapter comes back as the same by-id path).

Command-mode protocols get their ``start`` command once per connection and their ``poll`` request
every ``poll_s`` — only harmless requests, never zero or tare (those are explicit calls).
"""

from __future__ import annotations

import logging
import termios
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from edge.errors import ScaleError
from edge.scales.base import ProtocolSpec, Reading, get_protocol

if TYPE_CHECKING:
    from serial import Serial

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.2  # s: longest a read blocks, so stop() is honoured within this time
# pyserial's SerialException is an OSError; termios.error (from flush/reset on an unplugged
# adapter) is not (reference §9.2), so both are the "port vanished" family.
PORT_ERRORS: tuple[type[Exception], ...] = (OSError, termios.error)
# ValueError at open: an unknown URL scheme or a bad baud rate.
_OPEN_ERRORS: tuple[type[Exception], ...] = (*PORT_ERRORS, ValueError)



def open_port(url: str, baud: int, bytesize: int = 8, parity: str = "N") -> Serial:
    """Open a serial URL or device path, drop stale input (§8.3); errors become ``ScaleError``."""
    import serial

    try:
        # exclusive: a second process (a getty, ModemManager, another reader) must not silently
        # take bytes from the scale's port.
        port = serial.serial_for_url(url, baudrate=baud, bytesize=bytesize, parity=parity,
                                     timeout=READ_TIMEOUT_S, exclusive=True)
    except _OPEN_ERRORS as exc:
        raise ScaleError(f"cannot open scale port {url!r}: {exc}") from exc
    try:
        port.reset_input_buffer()
    except PORT_ERRORS as exc:
        _close_quietly(port)
        raise ScaleError(f"scale port {url!r} failed right after opening: {exc}") from exc
    return port


def _close_quietly(port: Serial) -> None:
    """Close a port that may already be gone; there is nothing left to report."""
    try:
        port.close()
    except PORT_ERRORS as exc:
        log.debug("closing scale port: %s", exc)


class ScaleReader:
    """Reads one scale port in its own thread, hands readings to ``on_reading``, reconnects forever.

    States: ``connecting`` → ``connected`` → ``disconnected`` (then retry after ``reconnect_s``).
    A new parser per connection: bytes from before an unplug never complete a frame after it (§9.2).
    Callbacks run on the reader thread and must only hand over (e.g. ``queue.put``).
    """

    def __init__(
        self,
        url: str,
        *,
        protocol: str = "toledo",
        baud: int | None = None,
        on_reading: Callable[[Reading], None],
        on_state: Callable[[str], None] | None = None,
        reconnect_s: float = 0.5,
    ) -> None:
        self.spec: ProtocolSpec = get_protocol(protocol)
        self.url, self.protocol, self.reconnect_s = url, protocol, reconnect_s
        self.baud = baud or self.spec.baud
        self._on_reading = on_reading
        self._on_state = on_state
        self._state = "disconnected"
        self.last_error: str | None = None  # why the last connection ended or failed
        self.crashes = 0  # bugs caught by the loop guard
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> str:
        return self._state

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"scale-{self.url}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and join; returns within about ``READ_TIMEOUT_S``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            log.debug("scale %s: %s", self.url, state)
            if self._on_state is not None:
                self._on_state(state)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session()
            except ScaleError as exc:
                repeated = str(exc) == self.last_error
                log.log(logging.DEBUG if repeated else logging.WARNING, "%s", exc)
                self.last_error = str(exc)
            except Exception:  # the one guard: a bug must not silently end scale reading
                self.crashes += 1
                self.last_error = "internal error in the scale reader (see log)"
                log.exception("scale reader crashed; reconnecting")
            self._set_state("disconnected")
            self._stop.wait(self.reconnect_s)

    def _session(self) -> None:
        self._set_state("connecting")
        port = open_port(self.url, self.baud, self.spec.bytesize, self.spec.parity)
        try:
            parser = self.spec.parser()
            self._set_state("connected")
            if self.spec.start:
                self._write(port, self.spec.start)
            next_poll = time.monotonic()
            while not self._stop.is_set():
                if self.spec.poll and time.monotonic() >= next_poll:
                    self._write(port, self.spec.poll)
                    next_poll = time.monotonic() + self.spec.poll_s
                try:
                    data = port.read(port.in_waiting or 1)
                except PORT_ERRORS as exc:
                    raise ScaleError(f"scale port {self.url!r} lost: {exc}") from exc
                for reading in parser.feed(data):
                    log.debug("frame %s -> %s", reading.raw.hex(), reading.weight_g)
                    self._on_reading(reading)
        finally:
            _close_quietly(port)

    def _write(self, port: Serial, data: bytes) -> None:
        try:
            port.write(data)
        except PORT_ERRORS as exc:
            raise ScaleError(f"scale port {self.url!r} lost while sending {data!r}: {exc}") from exc
