"""Scale readings and the protocol registry: what every indicator protocol produces and declares.

A protocol is a pure parser (bytes in, ``Reading`` out; partial frames kept between calls) plus
its line settings and the commands it accepts (``ProtocolSpec``).  Each protocol module registers
its specs with ``register``; ``edge.devices.scales`` imports every protocol module explicitly, so the
registry is complete whenever ``edge.devices.scales`` is imported.  Weights are integer grams computed with
``Decimal`` from the indicator's digits, never through ``float`` (reference §1.3).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol

from edge.errors import FrameError, ScaleError
from edge.messages import msg

GRAMS_PER_UNIT = {"g": 1, "kg": 1000, "t": 1_000_000}  # the mass units we record
MASK7 = bytes(b & 0x7F for b in range(256))  # 7E1 read as 8N1: bit 7 is parity (§1.1)
MAX_LINE = 256  # bytes: longer than any weight line (≈20-30 B); beyond it the buffer is line noise
_LINE = re.compile(rb"[^\r\n]+")  # one line between terminators (CR, LF, CR LF, LF CR)
_XON_XOFF = b"\x11\x13"  # handshake bytes some balances interleave (§2.3 notes, §8.3)


def to_grams(value: Decimal, unit: str) -> int:
    """A displayed value in ``unit`` as integer grams (half-even below a gram); KeyError if not mass."""
    return int((value * GRAMS_PER_UNIT[unit]).to_integral_value(rounding=ROUND_HALF_EVEN))


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
            reason = self.error or msg("scale.overload" if self.overload else "scale.underload" if self.underload
                                       else "scale.unknown")
            raise FrameError("scale.no_weight", protocol=self.protocol, reason=reason)
        return self.weight_g


class Parser(Protocol):
    """A byte-stream framer + decoder; keeps partial frames between calls."""

    def feed(self, data: bytes) -> list[Reading]: ...


@dataclass(frozen=True)
class ProtocolSpec:
    """One protocol id as ``wastecart scale read --protocol ID`` and the config know it."""

    id: str
    parser: Callable[[], Parser]
    description: str
    baud: int = 9600
    bytesize: int = 8  # 7 for 7E1 devices; a parser must still cope with 7E1 read as 8N1
    parity: str = "N"  # "N", "E" or "O"
    stable_flag: bool = True  # frames say stable/motion; False: the stability detector decides
    start: bytes | None = None  # sent once after connecting (e.g. MT-SICS "SIR": stream readings)
    poll: bytes | None = None  # harmless request repeated every ``poll_s`` by command-mode protocols
    poll_s: float = 0.2
    zero: bytes | None = None  # commands the cart may send on the collector's request, never `auto`
    tare: bytes | None = None


PROTOCOLS: dict[str, ProtocolSpec] = {}


def register(*specs: ProtocolSpec) -> None:
    for spec in specs:
        if spec.id in PROTOCOLS:
            raise ValueError(f"scale protocol {spec.id!r} registered twice")
        PROTOCOLS[spec.id] = spec


def get_protocol(protocol: str) -> ProtocolSpec:
    try:
        return PROTOCOLS[protocol]
    except KeyError:
        raise ScaleError("scale.protocol", protocol=protocol, known=", ".join(sorted(PROTOCOLS))) from None


def error_reading(protocol: str, raw: bytes, why: str) -> Reading:
    """A frame that must not become a weight, with the reason (counted by the parser)."""
    return Reading(protocol, raw, None, None, None, None, None, error=why)


class LineBuffer:
    """Splits a byte stream into lines ended by CR, LF, CR LF or LF CR (§8.3); blank lines vanish.

    Yields ``(raw, text, synced)``: ``raw`` as received without its terminator; ``text`` with bit 7
    masked when ``mask7`` (a 7E1 device read as 8N1, §1.1) and Xon/Xoff removed; ``synced`` is
    False for the bytes before the first terminator seen (the stream may have started mid-line)
    and after an overflow.  Dropped bytes (Xon/Xoff, overflow) count in ``garbage_bytes``.
    """

    def __init__(self, *, mask7: bool) -> None:
        self.mask7 = mask7
        self.garbage_bytes = 0
        self._raw = bytearray()
        self._bits = bytearray()  # the same bytes, masked if mask7
        self._synced = False

    def feed(self, data: bytes) -> list[tuple[bytes, bytes, bool]]:
        self._raw += data
        self._bits += data.translate(MASK7) if self.mask7 else data
        out: list[tuple[bytes, bytes, bool]] = []
        last = max(self._bits.rfind(b"\r"), self._bits.rfind(b"\n"))
        if last >= 0:
            for m in _LINE.finditer(self._bits, 0, last):
                # only a line at the very start of the stream may lack the terminator before it
                out.append(self._line(m.start(), m.end(), synced=self._synced or m.start() > 0))
            self._synced = True
            del self._raw[: last + 1], self._bits[: last + 1]
        if len(self._bits) > MAX_LINE:  # no terminator in sight: noise, or the wrong protocol
            self.garbage_bytes += len(self._bits)
            self._raw.clear()
            self._bits.clear()
            self._synced = False
        return out

    def discard(self, raw: bytes) -> None:
        """A line the parser threw away (the cut tail at the start of a stream) counts as garbage."""
        self.garbage_bytes += len(raw)

    def _line(self, start: int, end: int, *, synced: bool) -> tuple[bytes, bytes, bool]:
        raw, bits = bytes(self._raw[start:end]), bytes(self._bits[start:end])
        text = bits.translate(None, _XON_XOFF)
        self.garbage_bytes += len(bits) - len(text)
        return raw, text, synced


class ByteFramer:
    """Base of the byte-framed parsers: the raw/masked buffer pair, skipping and taking frames,
    and counted error readings (``frames``, ``checksum_errors``, ``format_errors``, ``garbage_bytes``)."""

    protocol = "?"

    def __init__(self) -> None:
        self.frames = 0
        self.checksum_errors = 0
        self.format_errors = 0
        self.garbage_bytes = 0
        self._raw = bytearray()  # as received (parity bits included), for Reading.raw
        self._bits = bytearray()  # the same bytes with bit 7 masked

    def _add(self, data: bytes) -> None:
        self._raw += data
        self._bits += data.translate(MASK7)

    def _skip(self, n: int, *, garbage: bool) -> None:
        del self._raw[:n], self._bits[:n]
        if garbage:
            self.garbage_bytes += n

    def _sync(self, start_byte: int, length: int = 1) -> bool:
        """Drop (as garbage) everything before the next ``start_byte``; True once a candidate of at
        least ``length`` bytes starting with it is buffered."""
        start = self._bits.find(start_byte)
        self._skip(start if start >= 0 else len(self._bits), garbage=True)
        return start >= 0 and len(self._bits) >= length

    def _fixed_frames(self, start_byte: int, length: int, end_at: int, end_byte: int) -> Iterator[tuple[bytes, bytes]]:
        """Every buffered ``(masked, raw)`` frame of ``length`` bytes that starts with ``start_byte``
        and has ``end_byte`` at ``end_at``.  A candidate whose end byte is misplaced is a false start:
        drop one byte and hunt again.  A short tail stays buffered for the next ``feed``."""
        while self._sync(start_byte, length):
            if self._bits[end_at] != end_byte:
                self._skip(1, garbage=True)
                continue
            yield self._take(length)

    def _take(self, n: int) -> tuple[bytes, bytes]:
        """Consume ``n`` bytes as one frame: (masked, raw)."""
        frame, raw = bytes(self._bits[:n]), bytes(self._raw[:n])
        self._skip(n, garbage=False)
        return frame, raw

    def _checksum_error(self, raw: bytes) -> Reading:
        self.checksum_errors += 1
        return error_reading(self.protocol, raw, "checksum mismatch")

    def _format_error(self, raw: bytes, why: str) -> Reading:
        self.format_errors += 1
        return error_reading(self.protocol, raw, why)
