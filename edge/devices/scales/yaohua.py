"""Yaohua XK3190 family (reference §4): ``yaohua-tf0``, ``yaohua-tf1``, ``yaohua-eq-r``, ``yaohua-eq-f``,
``yaohua-a12``.

Policy (as ``toledo``): a frame that fails its XOR check or carries a malformed field never yields a
weight — it is counted and yields a ``Reading`` with ``weight_g=None`` and ``error`` set.  Units other
than kg/g/t are refused.  None of these formats carries a motion flag, so ``stable`` is always None and
the specs say ``stable_flag=False`` (the stability detector decides, §8.4).

The tF=0, tF=1 and "=" formats carry no unit: the indicator is assumed to display kg (every Yaohua
indicator we know of; a weighbridge showing whole kg is still kg).  The "=" formats carry no
checksum either, and their two digit orders cannot be told apart from the bytes (§4.3), so they are
two configured ids, never guessed.  Every byte is masked to 7 bits before decoding (all these
formats are ASCII): an indicator wired as 7E1 and read as 8N1 still decodes (§1.1, §8.3).
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal

from edge.devices.scales.base import GRAMS_PER_UNIT, ByteFramer, ProtocolSpec, Reading, register, to_grams

STX, ETX, EOT = 0x02, 0x03, 0x04
ASSUMED_UNIT = "kg"  # tF=0/tF=1/"=" frames carry no unit; Yaohua indicators display kg (§4.1)
_SIGNED_DP = re.compile(rb"[+-][0-9]{6}[0-4]")  # sign, six digits, decimal count 0-4 (§4.1, §4.2)
_HEX2 = re.compile(rb"[0-9A-F]{2}")


def yaohua_xor(body: bytes) -> bytes:
    """XOR of ``body`` as two upper-case ASCII hex characters (the 0x30/0x37 rule of §4.1)."""
    x = 0
    for b in body:
        x ^= b
    return b"%02X" % x


def _signed_dp_grams(field: bytes) -> int:
    """``+001560`` ``0`` (sign, six digits, decimal count) as grams of ``ASSUMED_UNIT``, via Decimal."""
    value = Decimal(int(field[1:7])).scaleb(-int(field[7:8]))
    return to_grams(-value if field[:1] == b"-" else value, ASSUMED_UNIT)


class YaohuaTf0Parser(ByteFramer):
    """tF=0 continuous: 12 bytes ``STX sign d6 dp XORhi XORlo ETX`` (§4.1), XOR over bytes 2..9.

    Sync on STX; a candidate whose byte 12 is not ETX is a false start (drop one byte, rescan).  A
    candidate with ETX in place but a bad XOR is consumed whole and counted.
    """

    protocol = "yaohua-tf0"
    length = 12

    def feed(self, data: bytes) -> list[Reading]:
        self._add(data)
        return [self._reading(frame, raw)
                for frame, raw in self._fixed_frames(STX, self.length, self.length - 1, ETX)]

    def _reading(self, frame: bytes, raw: bytes) -> Reading:
        if yaohua_xor(frame[1:9]) != frame[9:11]:
            return self._checksum_error(raw)
        if not _SIGNED_DP.fullmatch(frame[1:9]):
            return self._format_error(raw, f"malformed weight field {frame[1:9]!r}")
        self.frames += 1
        return Reading(self.protocol, raw, _signed_dp_grams(frame[1:9]), ASSUMED_UNIT,
                       stable=None, net=None, tare_g=None)


class YaohuaTf1Parser(ByteFramer):
    """tF=1 replies ``STX addr cmd data XORhi XORlo ETX`` (§4.2), XOR over addr, cmd and data.

    Only replies from ``address`` count.  ``B`` (gross) and ``D`` (net) replies become weights, ``C``
    (tare) a tare-only reading; handshake replies, our own 6-byte commands echoed by an RS-485
    adapter, and replies to commands we never send (``E``-``I``) are counted in ``ignored``.  An EOT
    in the command position (the indicator refused a command) is an error reading.
    A frame runs from STX to the next ETX; a second STX before it restarts the frame (the first was
    cut), and no ETX within ``max_length`` bytes makes the STX garbage.
    """

    protocol = "yaohua-tf1"
    max_length = 32  # bytes: longest reply we wait for (B/C/D are 14; model-dependent E/F a bit longer)

    def __init__(self, address: str = "A") -> None:
        super().__init__()
        if not (len(address) == 1 and "A" <= address <= "Z"):
            raise ValueError(f"Yaohua address must be one letter A-Z (1-26), got {address!r}")
        self.address = address.encode()
        self.ignored = 0

    def feed(self, data: bytes) -> list[Reading]:
        self._add(data)
        out: list[Reading] = []
        while True:
            if not self._sync(STX):
                return out
            end = self._bits.find(ETX, 1, self.max_length)
            restart = self._bits.find(STX, 1, end if end >= 0 else self.max_length)
            if restart >= 0:  # a newer STX before this frame's ETX: the older frame was cut short
                self._skip(restart, garbage=True)
                continue
            if end < 0:
                if len(self._bits) < self.max_length:
                    return out
                self._skip(1, garbage=True)
                continue
            frame, raw = self._take(end + 1)
            reading = self._decode(frame, raw)
            if reading is not None:
                out.append(reading)

    def _decode(self, frame: bytes, raw: bytes) -> Reading | None:
        body, check = frame[1:-3], frame[-3:-1]
        if len(frame) < 6 or yaohua_xor(body) != check:
            return self._checksum_error(raw)
        addr, cmd, payload = body[:1], body[1:2], body[2:]
        if addr != self.address:
            self.ignored += 1  # another indicator on the bus
            return None
        if cmd == bytes([EOT]):
            return self._format_error(raw, "indicator refused the command (EOT)")
        if cmd not in (b"B", b"C", b"D"):
            self.ignored += 1  # handshake reply or a command we never send
            return None
        if not payload:
            self.ignored += 1  # our own request echoed back (RS-485 adapters with local echo)
            return None
        if not _SIGNED_DP.fullmatch(payload):
            return self._format_error(raw, f"malformed weight field {payload!r}")
        self.frames += 1
        grams = _signed_dp_grams(payload)
        if cmd == b"C":
            return Reading(self.protocol, raw, None, ASSUMED_UNIT, None, None, tare_g=grams,
                           error="tare reply (C), not a load")
        return Reading(self.protocol, raw, grams, ASSUMED_UNIT, stable=None, net=cmd == b"D", tare_g=None)


def yaohua_command(address: str, cmd: str) -> bytes:
    """A host → indicator tF=1 command: ``STX addr cmd XORhi XORlo ETX`` (§4.2)."""
    body = f"{address}{cmd}".encode()
    return b"\x02" + body + yaohua_xor(body) + b"\x03"


_EQ_BODY = re.compile(rb"[0-9]*\.?[0-9]*")  # digits with at most one decimal point (§4.3)


class YaohuaEqParser(ByteFramer):
    """The "=" display formats (§4.3): ``=`` + 8 characters, concatenated, no terminator, no checksum.

    ``reversed_digits=True`` (``yaohua-eq-r``): 7 characters least-significant first then a sign char
    (``0`` or ``-``), R1; the 8-byte R0 variant (7 reversed characters, no sign) is accepted too.
    ``reversed_digits=False`` (``yaohua-eq-f``): sign char then 7 characters most-significant first.

    A frame is the bytes between one ``=`` and the next, so each is decoded when the next begins
    (one frame period of latency, ~0.1 s).  Without a checksum, only these corruptions are caught:
    a character outside digits/``.``/sign (every single-bit flip of ``.`` or of a sign char, most
    flips of digits into non-digits), two decimal points, a bad sign char, and a dropped, inserted or
    spurious ``=`` byte (the frame length changes).  A digit flipped into another digit
    (``0``↔``1``, ``2``, ``4``, ``8`` …) is a plausible wrong weight that cannot be caught here: the
    stability detector's N-identical-frames rule (§4.3, §8.4) is the only defence.
    For R the frame length (R0 or R1) is locked after ``LOCK_FRAMES`` consecutive frames of one
    length, so a dropped byte in an R1 stream is an error, not an R0 frame with a wrong sign.
    """

    LOCK_FRAMES = 3  # consecutive well-formed frames of one length before R0/R1 is decided
    MAX_FRAME = 9  # bytes: "=" + 8 characters; an "=" without another within this is not a frame start

    def __init__(self, reversed_digits: bool) -> None:
        super().__init__()
        self.reversed_digits = reversed_digits
        self.protocol = "yaohua-eq-r" if reversed_digits else "yaohua-eq-f"
        self._length: int | None = None if reversed_digits else 8  # characters after "="
        self._run_length, self._run = 0, 0  # length of the last well-formed frames and how many in a row
        self.unconfirmed = 0  # well-formed R frames dropped while R0/R1 was not yet decided

    def feed(self, data: bytes) -> list[Reading]:
        self._add(data)
        out: list[Reading] = []
        while True:
            if not self._sync(ord("=")):
                return out
            end = self._bits.find(b"=", 1, self.MAX_FRAME + 1)
            if end < 0:
                if len(self._bits) <= self.MAX_FRAME:
                    return out  # the frame may still be arriving
                self._skip(1, garbage=True)  # too long for a frame: this "=" starts none
                continue
            frame, raw = self._take(end)
            reading = self._decode(frame[1:], raw)
            if reading is not None:
                out.append(reading)

    def _decode(self, chars: bytes, raw: bytes) -> Reading | None:
        if self.reversed_digits:
            if len(chars) == 8:
                digits, sign = chars[6::-1], chars[7:8]
            else:
                digits, sign = chars[::-1], b"0"
        else:
            sign, digits = chars[:1], chars[1:]
        if len(chars) not in (7, 8) or len(digits) != 7:
            self._run = 0
            return self._format_error(raw, f"frame of {len(chars) + 1} bytes, expected 9 (or 8 for R0)")
        if sign not in (b"0", b"-") or not _EQ_BODY.fullmatch(digits) or digits.strip(b".") == b"":
            self._run = 0
            return self._format_error(raw, f"malformed weight characters {chars!r}")
        n = len(chars)
        self._run = self._run + 1 if self._run_length == n else 1
        self._run_length = n
        if self._length != n:
            if self._run < self.LOCK_FRAMES:
                if self._length is None:
                    self.unconfirmed += 1
                    return None  # still learning R0 vs R1: no weight yet, and no error either
                return self._format_error(raw, f"frame length changed to {n + 1} bytes (dropped byte?)")
            self._length = n
        value = Decimal(digits.decode())
        self.frames += 1
        return Reading(self.protocol, raw, to_grams(-value if sign == b"-" else value, ASSUMED_UNIT),
                       ASSUMED_UNIT, stable=None, net=None, tare_g=None)


_A12_LINE = re.compile(
    rb"(?P<w>[Ww])(?P<mode>[GNgnwt])(?P<value>[-0-9. ]{7})(?P<unit>[A-Za-z]{2})(?P<chk>..)?"
    rb"|(?P<range> {9}(?:OL|LO))(?P<rchk>..)"
)
_A12_NUMBER = re.compile(rb" *(-?) *([0-9]+(?:\.[0-9]+)?) *")


class YaohuaA12Parser(ByteFramer):
    """XK3190-A12/A12E: ``W G|N ddd.ddd kg XORhi XORlo CR LF`` (15 bytes, §4.4), and ``OL``/``LO`` lines.

    Lines end at CR or LF (empty lines between CR and LF are skipped).  Upper-case ``W`` lines must
    carry the XOR of bytes 1..11; the older lower-case ``ww``/``wn``/``wt`` lines (from code, not a
    manual) are accepted without one, and verified when the two characters after the unit are hex.
    ``wt`` lines carry the tare: a tare-only reading.
    """

    protocol = "yaohua-a12"
    max_line = 40  # bytes without CR/LF before the buffer is dropped as garbage

    def feed(self, data: bytes) -> list[Reading]:
        self._add(data)
        out: list[Reading] = []
        while True:
            ends = [i for i in (self._bits.find(b"\r"), self._bits.find(b"\n")) if i >= 0]
            if not ends:
                if len(self._bits) > self.max_line:
                    self._skip(len(self._bits), garbage=True)
                return out
            end = min(ends)
            line, raw = self._take(end + 1)
            if end == 0:
                continue  # the LF of a CR LF pair
            reading = self._line(line[:-1], raw)
            if reading is not None:
                out.append(reading)

    def _line(self, line: bytes, raw: bytes) -> Reading | None:
        candidates = [i for i in (line.find(b"W"), line.find(b"w"), line.find(b" " * 9)) if i >= 0]
        if not candidates:
            self.garbage_bytes += len(raw)
            return None
        start = min(candidates)
        self.garbage_bytes += start
        line, raw = line[start:], raw[start:]
        m = _A12_LINE.fullmatch(line)
        if m is None:
            return self._format_error(raw, f"not an A12 line {line!r}")
        chk = m.group("chk") or m.group("rchk")
        checked = m.group("w") == b"W" or m.group("range") is not None or chk is not None
        if checked:
            if chk is None or not _HEX2.fullmatch(chk):
                return self._format_error(raw, f"missing or non-hex checksum in {line!r}")
            if yaohua_xor(line[:11]) != chk:
                return self._checksum_error(raw)
        if m.group("range") is None and _A12_NUMBER.fullmatch(m.group("value")) is None:
            return self._format_error(raw, f"malformed weight characters {m.group('value')!r}")
        self.frames += 1
        if m.group("range") is not None:
            over = m.group("range").endswith(b"OL")
            return Reading(self.protocol, raw, None, None, None, None, None, overload=over, underload=not over)
        return self._decode(m, raw)

    def _decode(self, m: re.Match[bytes], raw: bytes) -> Reading:
        unit = m.group("unit").decode().lower()
        mode = m.group("mode").lower()
        number = _A12_NUMBER.fullmatch(m.group("value"))
        assert number is not None  # checked in _line
        if unit not in GRAMS_PER_UNIT:
            return Reading(self.protocol, raw, None, unit, None, mode == b"n", None,
                           error=f"unit {unit} refused: only kg, g and t are recorded")
        value = Decimal(number.group(2).decode())
        grams = to_grams(-value if number.group(1) else value, unit)
        if mode == b"t":
            return Reading(self.protocol, raw, None, unit, None, None, tare_g=grams, error="tare line (wt), not a load")
        return Reading(self.protocol, raw, grams, unit, stable=None, net=mode == b"n", tare_g=None)


# Yaohua is 8N1 (§1.1); the baud is the indicator's `bt` setting: 9600 here, 1200 is also common in
# the field (`--baud`).  No protocol here defines zero or tare commands, so none are declared.
register(
    ProtocolSpec("yaohua-tf0", YaohuaTf0Parser, "Yaohua XK3190 tF=0 continuous, 12-byte STX frames with XOR",
                 stable_flag=False),
    ProtocolSpec("yaohua-tf1", YaohuaTf1Parser, "Yaohua XK3190 tF=1 command mode, address 1 (A): polls "
                 "'read gross' (B)", stable_flag=False, poll=yaohua_command("A", "B"), poll_s=0.2),
    ProtocolSpec("yaohua-eq-r", functools.partial(YaohuaEqParser, reversed_digits=True),
                 "Yaohua/Keli '=' display format, digits reversed (least significant first), no checksum",
                 stable_flag=False),
    ProtocolSpec("yaohua-eq-f", functools.partial(YaohuaEqParser, reversed_digits=False),
                 "Yaohua '=' display format, digits forward (most significant first), no checksum",
                 stable_flag=False),
    ProtocolSpec("yaohua-a12", YaohuaA12Parser, "Yaohua XK3190-A12/A12E 'WG...kg' lines with XOR",
                 stable_flag=False),
)
