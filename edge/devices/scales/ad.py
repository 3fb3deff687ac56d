"""A&D balances and indicators, and the Chinese ``ST,GS,`` clones (reference §5.1-5.2): ``ad``.

One id for three line shapes, told apart by the line itself (they share the headers):

* balance ``ST,+001234.5  g`` — header, 9-char signed number, 3-char unit (no gross/net flag);
* indicator ``ST,NT,+0012.34kg`` — header, ``GS``/``NT``/``TR`` (or a check-weighing result), number, unit;
* Chinese clones ``ST,GS,  18.000kg``, ``US,NT,-  0.200kg`` — blank sign, blanked zeros, wider fields.

Policy (as ``toledo``): a line with a known header but a malformed field never yields a weight — it
is counted and yields an error ``Reading``.  Lines without a known header are garbage (a partial line
after opening, noise).  Counts (``QT``, ``PC``), percent and non-metric units are refused; ``OL`` and
number fields without a digit (the A&D overflow pattern ``+    .  ``) are overload, or underload
when the sign is ``-``.  A&D is 7E1 by default: every byte is masked to 7 bits before decoding.
There is no checksum: a digit flipped into another digit is a plausible wrong weight; ``ST`` means
the indicator saw it stable, not that the line arrived intact.
"""

from __future__ import annotations

import re
from decimal import Decimal

from edge.devices.scales.base import GRAMS_PER_UNIT, MASK7, ProtocolSpec, Reading, register, to_grams

_HEADER = re.compile(rb"(?:ST|US|OL|QT|LO) *,")
_LINE = re.compile(
    rb"(?P<h1>ST|US|OL|QT|LO) *, *(?:(?P<h2>GS|NT|TR|OK|HI|LO|--) *, *)?"
    rb"(?P<sign>[+\- ]?)(?P<number>[0-9. ]*?) *(?P<unit>[A-Za-z%]{0,4}) *"
)
_NUMBER = re.compile(rb" *([0-9]+(?:\.[0-9]*)?|\.[0-9]+)")  # leading blanks (blanked zeros), one point
_OVERFLOW = re.compile(rb"[ .]*")  # digits replaced by blanks (§5.2)
_MASS = {u: u for u in GRAMS_PER_UNIT}  # units we record, spelled as A&D sends them (g, kg, t)


class AdParser:
    """Split on CR, LF, CR LF or LF CR; find a header; decode the fields (§5.1-5.2).

    Counters: ``frames`` decoded, ``format_errors`` (a header but a malformed line), ``garbage_bytes``
    (bytes before a header, lines without one, an over-long run without a line end).  A&D has no
    checksum, so there is no ``checksum_errors``.
    """

    protocol = "ad"
    max_line = 48  # bytes: the longest clone line is ~25; anything longer without CR/LF is noise

    def __init__(self) -> None:
        self.frames = 0
        self.format_errors = 0
        self.garbage_bytes = 0
        self._raw = bytearray()
        self._bits = bytearray()

    def feed(self, data: bytes) -> list[Reading]:
        self._raw += data
        self._bits += data.translate(MASK7)
        out: list[Reading] = []
        while True:
            ends = [i for i in (self._bits.find(b"\r"), self._bits.find(b"\n")) if i >= 0]
            if not ends:
                if len(self._bits) > self.max_line:
                    self.garbage_bytes += len(self._bits)
                    del self._raw[:], self._bits[:]
                return out
            end = min(ends) + 1
            line, raw = bytes(self._bits[: end - 1]), bytes(self._raw[:end])
            del self._raw[:end], self._bits[:end]
            if not line:
                continue  # the second byte of CR LF / LF CR
            header = _HEADER.search(line)
            if header is None:
                self.garbage_bytes += len(raw)
                continue
            self.garbage_bytes += header.start()
            reading = self._decode(line[header.start():], raw[header.start():])
            out.append(reading)

    def _error(self, raw: bytes, why: str) -> Reading:
        self.format_errors += 1
        return Reading(self.protocol, raw, None, None, None, None, None, error=why)

    def _decode(self, line: bytes, raw: bytes) -> Reading:
        m = _LINE.fullmatch(line)
        if m is None:
            return self._error(raw, f"not an A&D line {line!r}")
        h1, h2, sign, number = m["h1"], m["h2"], m["sign"], m["number"]
        unit = m["unit"].decode()
        digits = _NUMBER.fullmatch(number)
        overflow = digits is None and b"." in number and _OVERFLOW.fullmatch(number) is not None
        if digits is None and not overflow:
            return self._error(raw, f"malformed number {number!r}")
        if not unit:
            return self._error(raw, f"no unit in {line!r}: refused (cannot tell the mass)")
        self.frames += 1
        net = None if h2 not in (b"GS", b"NT", b"TR") else h2 == b"NT"
        stable = True if h1 in (b"ST", b"QT") else False if h1 == b"US" else None
        if h1 in (b"OL", b"LO") or digits is None:
            under = sign == b"-"
            return Reading(self.protocol, raw, None, unit, None, net, None, overload=not under, underload=under)
        if h1 == b"QT" or unit not in _MASS:
            return Reading(self.protocol, raw, None, unit, stable, net, None,
                           error=f"unit {unit} refused: only kg, g and t are recorded")
        value = Decimal(digits.group(1).decode())
        grams = to_grams(-value if sign == b"-" else value, _MASS[unit])
        if h2 == b"TR":
            return Reading(self.protocol, raw, None, unit, stable, None, tare_g=grams,
                           error="tare line (TR), not a load")
        return Reading(self.protocol, raw, grams, unit, stable, net, None)


# A&D default line settings (§1.1): 7E1; 2400 bd is a common balance setting, indicators and clones
# often run 9600 (`--baud`).  The parser masks bit 7, so an 8N1 clone read as 7E1 and a 7E1 device
# read as 8N1 both decode; the commands are sent 7E1 as the A&D default expects.  No poll: set the
# balance to stream (indicators and clones stream by default).  Z and T are A&D's re-zero and tare
# (§5.1); clones may ignore them [unverified].
register(
    ProtocolSpec("ad", AdParser, "A&D balance/indicator text lines (ST,+001234.5  g / ST,GS,+0012.34kg) and "
                 "Chinese ST,GS clones", baud=2400, bytesize=7, parity="E", zero=b"Z\r\n", tare=b"T\r\n"),
)
