"""One reader thread per scale port: opens it, feeds the protocol's parser, hands readings over,
and reconnects forever (an unplugged USB-serial adapter comes back as the same by-id path).

States (``ScaleReader.state``, reported through ``on_state`` on every change)::

    connecting ──open ok──▶ connected ◀──a frame decodes── no_frames
        │                     │   └──nothing decoded for no_frames_s──▶ no_frames
        │                     ▼ port error (unplug: EIO, vanished node)
        └──open fails──▶ disconnected ──every reconnect_s: try to open (state stays)──▶ connected

``connecting`` is only the first attempt after ``start``; retries while the port is gone stay
``disconnected`` so a status display does not flicker.  ``no_frames`` keeps the port open: a
powered-off indicator behind a plugged adapter, a wrong baud or a wrong protocol all look like
this, and reopening helps none of them (§9.2).

Command-mode protocols get their ``start`` command once per connection and their ``poll`` request
every ``poll_s`` — only harmless requests.  Zero and tare are sent only when asked (``zero()`` /
``tare()``), from the reader thread, on the connection that is up when asked.

A new parser (and a new stability window) per connection: bytes from before an unplug never
complete a frame after it.  A frame with an ``error`` never reaches ``on_reading`` with a weight.
For protocols without a motion flag (``spec.stable_flag`` False) ``stable`` is decided by
``StabilityDetector``; the indicator's own flag always wins where the protocol has one.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import queue
import termios
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, get_args

from edge.devices.scales.base import Parser, ProtocolSpec, Reading
from edge.devices.scales.protocols import get_protocol
from edge.devices.scales.stability import StabilityDetector, StabilitySettings
from edge.errors import ScaleError
from edge.messages import msg
from edge.worker import Worker

if TYPE_CHECKING:
    from serial import Serial

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.2  # s: longest a read blocks, so stop() and no_frames are honoured within this
NO_FRAMES_S = 2.0  # s: §9.2: no valid frame for ≥ 2 s (and ≥ 3 frame intervals) is a soft disconnect
HEALTH_WINDOW_S = 60  # s: the "per minute" of the health counters
# pyserial's SerialException is an OSError; termios.error (from flush/reset on an unplugged
# adapter) is not (reference §9.2), so both are the "port vanished" family.
PORT_ERRORS: tuple[type[Exception], ...] = (OSError, termios.error)
# ValueError at open: an unknown URL scheme or a bad baud rate.
_OPEN_ERRORS: tuple[type[Exception], ...] = (*PORT_ERRORS, ValueError)
COUNTERS = ("frames", "checksum_errors", "format_errors", "garbage_bytes")

STOP_JOIN_S = 5.0  # s stop() waits for the thread: a pass sees the stop within READ_TIMEOUT_S

ScaleState = Literal["connecting", "connected", "no_frames", "disconnected"]
STATES: tuple[ScaleState, ...] = get_args(ScaleState)  # all but "none" of catalogue.DEVICES["scale"]


def open_port(url: str, baud: int, bytesize: int = 8, parity: str = "N") -> Serial:
    """Open a serial URL or device path, drop stale input (§8.3); errors become ``ScaleError``."""
    import serial

    try:
        # exclusive: a second process (a getty, ModemManager, another reader) must not silently
        # take bytes from the scale's port.
        port = serial.serial_for_url(url, baudrate=baud, bytesize=bytesize, parity=parity,
                                     timeout=READ_TIMEOUT_S, exclusive=True)
    except _OPEN_ERRORS as exc:
        code = getattr(exc, "errno", None) or next((a for a in exc.args if isinstance(a, int)), None)
        if bytesize == 8 or code != errno.EINVAL:  # termios.error carries the errno only in args
            raise ScaleError("scale.port_open", url=url, reason=str(exc)) from exc
        # A port that refuses 7-bit framing (a pty, some adapters): 8N1 reads the same bytes, and
        # every 7-bit parser masks the parity bit (§1.1); only what we send loses its parity.
        log.info("%s does not take %d%s1; reading it as 8N1 with bit 7 masked", url, bytesize, parity)
        return open_port(url, baud)
    try:
        port.reset_input_buffer()
    except PORT_ERRORS as exc:
        _close_quietly(port)
        raise ScaleError("scale.port_failed", url=url, reason=str(exc)) from exc
    return port


def _close_quietly(port: Serial) -> None:
    """Close a port that may already be gone; there is nothing left to report."""
    try:
        port.close()
    except PORT_ERRORS as exc:
        log.debug("closing scale port: %s", exc)


class Counters:
    """Frames and errors, in total and over the last ``HEALTH_WINDOW_S`` (one bucket per second)."""

    def __init__(self) -> None:
        self.total = dict.fromkeys(COUNTERS, 0)
        self._buckets: deque[tuple[int, dict[str, int]]] = deque()

    def add(self, now: float, name: str, n: int = 1) -> None:
        if n <= 0:
            return
        self.total[name] += n
        second = int(now)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append((second, dict.fromkeys(COUNTERS, 0)))
        self._buckets[-1][1][name] += n
        self._trim(now)

    def last_minute(self, now: float) -> dict[str, int]:
        self._trim(now)
        out = dict.fromkeys(COUNTERS, 0)
        for _, bucket in self._buckets:
            for name, n in bucket.items():
                out[name] += n
        return out

    def _trim(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - HEALTH_WINDOW_S:
            self._buckets.popleft()


class ScaleReader:
    """Reads one scale port in its own thread (a ``Worker``: one pass is one connection), hands
    readings to ``on_reading``, reconnects forever.

    ``baud``/``bytesize``/``parity`` override the protocol's line settings (auto-detection found
    others).  ``clock`` (monotonic seconds) times ``no_frames``, polls, stability and the health
    counters.  Callbacks run on the reader thread and must only hand over (e.g. ``queue.put``).
    """

    def __init__(
        self,
        url: str,
        *,
        protocol: str = "toledo",
        baud: int | None = None,
        bytesize: int | None = None,
        parity: str | None = None,
        on_reading: Callable[[Reading], None],
        on_state: Callable[[ScaleState], None] | None = None,
        reconnect_s: float = 0.5,
        no_frames_s: float = NO_FRAMES_S,
        stability: StabilitySettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec: ProtocolSpec = get_protocol(protocol)
        self.url, self.protocol, self.reconnect_s, self.no_frames_s = url, protocol, reconnect_s, no_frames_s
        self.baud = baud or self.spec.baud
        self.bytesize = bytesize or self.spec.bytesize
        self.parity = parity or self.spec.parity
        self.stability = stability or StabilitySettings()
        self._on_reading = on_reading
        self._on_state = on_state
        self._clock = clock
        self._state: ScaleState = "disconnected"
        self._lock = threading.Lock()  # guards the health figures read by other threads
        self._since = clock()
        self._last_frame: float | None = None
        self._counters = Counters()
        self.connects = 0
        self.last_error: str | None = None  # why the last connection ended or failed
        self.last_failure: ScaleError | None = None  # the same, as the error (the CLI shows it)
        self._crashes = 0  # bugs caught by the guard of earlier workers (this one counts its own)
        self._requests: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._worker: Worker | None = None
        self._first_pass = True

    @property
    def state(self) -> ScaleState:
        return self._state

    @property
    def crashes(self) -> int:
        """Bugs caught by the reader thread's guard (each logged with its traceback)."""
        return self._crashes + (self._worker.errors if self._worker else 0)

    def start(self) -> None:
        self._worker = Worker(f"scale-{self.url}", self._pass, join_s=STOP_JOIN_S, retry_s=self.reconnect_s)
        self._first_pass = True
        self._worker.start()

    def stop(self) -> None:
        """Stop and join; returns within about ``READ_TIMEOUT_S`` (at most ``STOP_JOIN_S``, then logged)."""
        if self._worker is not None:
            self._worker.stop()
            self._crashes += self._worker.errors
            self._worker = None

    # commands on request ------------------------------------------------------------------

    def zero(self) -> None:
        """Ask the indicator to zero (the collector pressed the button); sent by the reader thread."""
        self._request("zero", self.spec.zero)

    def tare(self) -> None:
        """Ask the indicator to tare the current load; sent by the reader thread."""
        self._request("tare", self.spec.tare)

    def _request(self, what: str, command: bytes | None) -> None:
        if command is None:
            raise ScaleError("scale.no_command", protocol=self.protocol, what=msg(f"scale.{what}"))
        if self._state not in ("connected", "no_frames"):
            raise ScaleError("scale.not_connected", what=msg(f"scale.{what}"), state=self._state)
        self._requests.put((what, command))

    # health ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """State, how long in it, last frame age, and frame/error counters (total and last minute)."""
        now = self._clock()
        with self._lock:
            return {
                "state": self._state,
                "state_for_s": round(now - self._since, 3),
                "protocol": self.protocol,
                "port": self.url,
                "line": f"{self.baud} {self.bytesize}{self.parity}1",
                "connects": self.connects,
                "last_frame_age_s": None if self._last_frame is None else round(now - self._last_frame, 3),
                "last_error": self.last_error,
                "crashes": self.crashes,
                "total": dict(self._counters.total),
                "per_minute": self._counters.last_minute(now),
            }

    # the thread ------------------------------------------------------------------------------

    def _set_state(self, state: ScaleState) -> None:
        if state != self._state:
            with self._lock:
                self._state, self._since = state, self._clock()
            log.debug("scale %s: %s", self.url, state)
            if self._on_state is not None:
                self._on_state(state)

    def _pass(self) -> float:
        """One connection, from opening the port until it is lost or the reader stops; then wait
        ``reconnect_s``.  A bug is left to the worker's guard (logged, counted in ``crashes``)."""
        if self._first_pass:  # only the first attempt is "connecting"; retries stay "disconnected"
            self._first_pass = False
            self._set_state("connecting")
        ended = False
        try:
            self._session()
            ended = True
        except ScaleError as exc:
            ended = True
            repeated = str(exc) == self.last_error
            log.log(logging.DEBUG if repeated else logging.WARNING, "%s", exc)
            self.last_error, self.last_failure = str(exc), exc
        finally:
            if not ended:
                self.last_error = "internal error in the scale reader (see log)"
            self._set_state("disconnected")
        return self.reconnect_s

    def _stopping(self) -> bool:
        return self._worker is None or self._worker.stopping

    def _session(self) -> None:
        port = open_port(self.url, self.baud, self.bytesize, self.parity)
        try:
            parser = self.spec.parser()
            detector = StabilityDetector(self.stability)
            seen = dict.fromkeys(COUNTERS, 0)  # the parser's own counters, where it keeps them
            while not self._requests.empty():  # asked before this connection: not ours to send
                self._requests.get_nowait()
            self.connects += 1
            self._set_state("connected")
            connected_at = self._clock()
            if self.spec.start:
                self._write(port, self.spec.start)
            next_poll = self._clock()
            while not self._stopping():
                now = self._clock()
                if self.spec.poll and now >= next_poll:
                    self._write(port, self.spec.poll)
                    next_poll = now + self.spec.poll_s
                while not self._requests.empty():
                    what, command = self._requests.get_nowait()
                    log.info("scale %s: sending %s %r", self.url, what, command)
                    self._write(port, command)
                try:
                    data = port.read(port.in_waiting or 1)
                except PORT_ERRORS as exc:
                    raise ScaleError("scale.port_lost", url=self.url, reason=str(exc)) from exc
                readings = parser.feed(data) if data else []
                self._count(parser, readings, seen)
                for reading in readings:
                    self._deliver(self._checked(reading, detector))
                quiet_since = self._last_frame if self._last_frame and self._last_frame > connected_at else connected_at
                if self._clock() - quiet_since >= self.no_frames_s:
                    self._set_state("no_frames")
        finally:
            _close_quietly(port)

    def _checked(self, reading: Reading, detector: StabilityDetector) -> Reading:
        """Never a weight from a broken frame; stability from the detector where frames carry none."""
        if reading.error is not None and reading.weight_g is not None:
            reading = dataclasses.replace(reading, weight_g=None, stable=None)
        if not self.spec.stable_flag or reading.stable is None:
            stable = detector.update(reading.weight_g, self._clock())
            if reading.weight_g is not None:
                reading = dataclasses.replace(reading, stable=stable)
        return reading

    def _deliver(self, reading: Reading) -> None:
        log.debug("frame %s -> %s", reading.raw.hex(), reading.weight_g)
        if reading.error is None:
            with self._lock:
                self._last_frame = self._clock()
            self._set_state("connected")
        self._on_reading(reading)

    def _count(self, parser: Parser, readings: list[Reading], seen: dict[str, int]) -> None:
        """Per-minute counters: from the parser's counters where it keeps them, else per reading."""
        now = self._clock()
        fallback = {
            "frames": sum(r.error is None for r in readings),
            "checksum_errors": sum(r.error is not None and "checksum" in r.error.lower() for r in readings),
            "format_errors": sum(r.error is not None and "checksum" not in r.error.lower() for r in readings),
            "garbage_bytes": 0,
        }
        with self._lock:
            for name in COUNTERS:
                value = getattr(parser, name, None)
                if isinstance(value, int):
                    self._counters.add(now, name, value - seen[name])
                    seen[name] = value
                else:
                    self._counters.add(now, name, fallback[name])

    def _write(self, port: Serial, data: bytes) -> None:
        try:
            port.write(data)
        except PORT_ERRORS as exc:
            raise ScaleError("scale.port_lost_sending", url=self.url, data=repr(data), reason=str(exc)) from exc
