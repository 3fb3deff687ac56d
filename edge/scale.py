"""The scale: pure frame parsers (bytes in, ``Reading`` out) and one reader thread that owns the port.

Framing is kept apart from I/O (like pyserial's ``serial.threaded`` Packetizer/ReaderThread) so the
parsers are tested with hypothesis and the thread only reads and hands over.  Parsers are chosen by
id from ``PARSERS``; later protocols (Yaohua, A&D, MT-SICS …) plug in there.

Toledo policy (reference §3): a frame that fails the checksum or carries a malformed field never
yields a weight — it is counted and yields a ``Reading`` with ``weight_g=None`` and ``error`` set,
so a caller can show *why* nothing is recorded.  Out-of-range frames yield ``weight_g=None`` with
``overload``/``underload`` set.  Units other than kg/g/t are refused (``error`` says so), and so is
the "expanded ×10" display (not legal for trade).  Sub-gram resolution is rounded half-even.
"""

from __future__ import annotations

import functools
import logging
import re
import termios
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Protocol

from edge.errors import FrameError, ScaleError

if TYPE_CHECKING:
    from serial import Serial

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.2  # s: longest a read blocks, so stop() is honoured within this time
# pyserial's SerialException is an OSError; termios.error (from flush/reset on an unplugged
# adapter) is not (reference §9.2), so both are the "port vanished" family.
PORT_ERRORS: tuple[type[Exception], ...] = (OSError, termios.error)
# ValueError at open: an unknown URL scheme or a bad baud rate.
_OPEN_ERRORS: tuple[type[Exception], ...] = (*PORT_ERRORS, ValueError)


@dataclass(frozen=True)
class Reading:
    """One frame from the scale, normalised (reference §1.3); ``weight_g`` is None unless trusted."""

    protocol: str
    raw: bytes  # exact bytes as received (parity bits included), for the audit log
    weight_g: int | None  # signed integer grams
    unit: str | None  # as shown on the indicator
    stable: bool | None
    net: bool | None
    tare_g: int | None
    overload: bool = False
    underload: bool = False
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The ``wastecart scale read --json`` line; latin-1 keeps ``raw`` byte-exact and reversible."""
        return {
            "weight_g": self.weight_g,
            "unit": self.unit,
            "stable": self.stable,
            "net": self.net,
            "overload": self.overload,
            "underload": self.underload,
            "protocol": self.protocol,
            "raw": self.raw.decode("latin-1"),
            "tare_g": self.tare_g,
        }

    def grams(self) -> int:
        """The weight, or ``FrameError`` when this frame must not become a record."""
        if self.weight_g is None:
            reason = self.error or ("overload" if self.overload else "underload" if self.underload else "")
            raise FrameError(f"{self.protocol} frame carries no usable weight: {reason or 'unknown'}")
        return self.weight_g


class Parser(Protocol):
    """A byte-stream framer + decoder; keeps partial frames between calls."""

    def feed(self, data: bytes) -> list[Reading]: ...


# --- Mettler Toledo standard continuous output (reference §3) -----------------------------------

STX, CR = 0x02, 0x0D
_CR_AT = 16  # index of the CR: byte 17 in both the 17- and the 18-byte layout (§3.1)
_MASK7 = bytes(b & 0x7F for b in range(256))  # 7E1 read as 8N1: bit 7 is parity (§1.1)
_FIELD = re.compile(rb" *[0-9]+")  # leading blanks or zeros, then digits; no sign, no point (§3.1)
_SWC_UNITS = {1: "g", 2: "t", 3: "oz", 4: "ozt", 5: "dwt", 6: "ton", 7: "custom"}  # SWC bits 0-2
GRAMS_PER_UNIT = {"g": 1, "kg": 1000, "t": 1_000_000}  # the mass units we record


def toledo_checksum_ok(frame: bytes) -> bool:
    """7-bit two's-complement checksum over the whole frame including CHK sums to 0 (§3.5)."""
    return sum(b & 0x7F for b in frame) & 0x7F == 0


def _to_grams(digits: bytes, dp_code: int, grams_per_unit: int) -> int:
    """Digits × 10^(2-code) × unit, in Decimal: no float ever touches a recorded weight (§1.3)."""
    value = Decimal(int(digits)).scaleb(2 - dp_code) * grams_per_unit
    return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))


class ToledoParser:
    """Sync on STX, take a fixed length (17, or 18 with checksum), verify, decode SWA/SWB/SWC.

    Counters: ``frames`` decoded, ``checksum_errors``, ``format_errors`` (checksum fine but a field
    malformed) and ``garbage_bytes`` (skipped while hunting for a frame).  A candidate whose CR is
    misplaced is a false start: drop one byte and rescan.  A candidate with CR in place but a bad
    checksum is consumed whole, so a corrupted byte cannot shift a "new frame" into view.
    With ``checksum=False`` an 18-byte stream still decodes (the CHK byte is skipped as garbage).
    """

    protocol = "toledo"

    def __init__(self, checksum: bool = True) -> None:
        self.checksum = checksum
        self.length = 18 if checksum else 17
        self.frames = 0
        self.checksum_errors = 0
        self.format_errors = 0
        self.garbage_bytes = 0
        self._raw = bytearray()  # as received
        self._bits = bytearray()  # the same bytes with bit 7 masked

    def feed(self, data: bytes) -> list[Reading]:
        self._raw += data
        self._bits += data.translate(_MASK7)
        out: list[Reading] = []
        while True:
            start = self._bits.find(STX)
            self._skip(start if start >= 0 else len(self._bits), garbage=True)
            if start < 0 or len(self._bits) < self.length:
                return out
            frame, raw = bytes(self._bits[: self.length]), bytes(self._raw[: self.length])
            if frame[_CR_AT] != CR:
                self._skip(1, garbage=True)
                continue
            self._skip(self.length, garbage=False)
            if self.checksum and not toledo_checksum_ok(frame):
                self.checksum_errors += 1
                out.append(self._error(raw, "checksum mismatch"))
                continue
            problem = self._malformed(frame)
            if problem is not None:
                self.format_errors += 1
                out.append(self._error(raw, problem))
                continue
            self.frames += 1
            out.append(self._decode(frame, raw))

    def _skip(self, n: int, *, garbage: bool) -> None:
        del self._raw[:n], self._bits[:n]
        if garbage:
            self.garbage_bytes += n

    def _error(self, raw: bytes, why: str) -> Reading:
        return Reading(self.protocol, raw, None, None, None, None, None, error=why)

    @staticmethod
    def _malformed(f: bytes) -> str | None:
        """Why a framed candidate is not a Toledo frame (fixed status bits, digit fields), or None."""
        if not (f[1] & f[2] & f[3] & 0x20) or f[1] & 0x40:  # fixed bits of SWA/SWB/SWC (§3.2-3.4)
            return f"malformed status bytes {f[1:4]!r}"
        if not (_FIELD.fullmatch(f[4:10]) and _FIELD.fullmatch(f[10:16])):
            return f"non-digit weight characters {f[4:16]!r}"
        return None

    def _decode(self, f: bytes, raw: bytes) -> Reading:
        """A well-formed frame into a Reading; units we do not record keep ``weight_g`` None."""
        swa, swb, swc = f[1], f[2], f[3]
        shown, tare = f[4:10], f[10:16]
        unit = ("kg" if swb & 0x10 else "lb") if swc & 0x07 == 0 else _SWC_UNITS[swc & 0x07]
        negative, out_of_range = bool(swb & 0x02), bool(swb & 0x04)
        weight_g = tare_g = None
        error = None
        if unit not in GRAMS_PER_UNIT:
            error = f"unit {unit} refused: only kg, g and t are recorded"
        elif swc & 0x10:
            error = "expanded display (x10) is not legal for trade"
        else:
            tare_g = _to_grams(tare, swa & 0x07, GRAMS_PER_UNIT[unit])
            if not out_of_range:
                magnitude = _to_grams(shown, swa & 0x07, GRAMS_PER_UNIT[unit])
                weight_g = -magnitude if negative else magnitude
        return Reading(
            self.protocol,
            raw,
            weight_g,
            unit,
            stable=not swb & 0x08,
            net=bool(swb & 0x01),
            tare_g=tare_g,
            overload=out_of_range and not negative,
            underload=out_of_range and negative,
            error=error,
        )


PARSERS: dict[str, Callable[[], Parser]] = {
    "toledo": ToledoParser,  # 18-byte frames with checksum: the setting to ask for at commissioning
    "toledo-nochk": functools.partial(ToledoParser, checksum=False),  # 17 bytes: terminal has CHK off
}


# --- I/O: one thread owns the port ---------------------------------------------------------------


def open_port(url: str, baud: int) -> Serial:
    """Open a serial URL or device path, drop stale input (§8.3); errors become ``ScaleError``."""
    import serial

    try:
        # exclusive: a second process (a getty, ModemManager, another reader) must not silently
        # take bytes from the scale's port.
        port = serial.serial_for_url(url, baudrate=baud, timeout=READ_TIMEOUT_S, exclusive=True)
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
        baud: int = 9600,
        on_reading: Callable[[Reading], None],
        on_state: Callable[[str], None] | None = None,
        reconnect_s: float = 0.5,
    ) -> None:
        if protocol not in PARSERS:
            raise ScaleError(f"unknown scale protocol {protocol!r}; known: {', '.join(PARSERS)}")
        self.url, self.protocol, self.baud, self.reconnect_s = url, protocol, baud, reconnect_s
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
        port = open_port(self.url, self.baud)
        try:
            parser = PARSERS[self.protocol]()
            self._set_state("connected")
            while not self._stop.is_set():
                try:
                    data = port.read(port.in_waiting or 1)
                except PORT_ERRORS as exc:
                    raise ScaleError(f"scale port {self.url!r} lost: {exc}") from exc
                for reading in parser.feed(data):
                    log.debug("frame %s -> %s", reading.raw.hex(), reading.weight_g)
                    self._on_reading(reading)
        finally:
            _close_quietly(port)
