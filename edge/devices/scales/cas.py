"""CAS CI-series indicators, continuous "CAS 22-byte" format (reference §6.1): ``cas``.

Frame: ``H1 , H2 , ID LAMP , DDDDDDDD ␣ UU CR LF`` = 22 bytes, H1 ``ST``/``US``/``OL``, H2
``GS``/``NT``, ID one ASCII byte, LAMP one binary byte (bit 7 always 1, bit 6 stable, bit 2 gross,
bit 1 tare, bit 0 zero point), eight data characters with the decimal point, a blank, a 2-character
unit.  LAMP is 8-bit, so the line is 8N1 and nothing is masked: a byte ≥ 0x80 in a text field is a
format error.  Framing syncs on the header (``ST,``/``US,``/``OL,``) and takes 22 bytes; a
candidate without CR LF in place is a false start (one byte dropped, rescan).

Policy: no checksum, so the frame is checked hard instead — fixed commas, blank and terminator,
LAMP bit 7 set and LAMP bit 6 agreeing with H1 (a frame whose two stability indications disagree
is corrupt), data = optional sign, digits, at most one point.  Anything else is a format error
reading, never a weight.  ``OL`` is overload (no weight).  Units other than g/kg/t are refused.
Not handled: the 10-byte format (no status, no unit — it would need its own protocol id with
``stable_flag=False``), the command mode replies (formats not in the reference), and the retail
ECR/DC1 protocol.
"""

from __future__ import annotations

import re
from decimal import Decimal

from edge.devices.scales.base import GRAMS_PER_UNIT, ProtocolSpec, Reading, error_reading, register, to_grams

LENGTH = 22
_HEADER = re.compile(rb"(?:ST|US|OL),")
_FRAME = re.compile(rb"(ST|US|OL),(GS|NT),([\x20-\x7e])([\x80-\xff]),([\x20-\x7e]{8}) ([ A-Za-z]{2})\r\n")
_DATA = re.compile(rb" *[+-]? *[0-9]+(?:\.[0-9]+)?")  # 8 characters: blanks or zeros, sign, digits, point
LAMP_STABLE = 0x40


class CasParser:
    """CAS 22-byte frames into readings.  Counters: ``frames``, ``format_errors``, ``garbage_bytes``."""

    protocol = "cas"

    def __init__(self) -> None:
        self.frames = 0
        self.format_errors = 0
        self.garbage_bytes = 0
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Reading]:
        self._buf += data
        out: list[Reading] = []
        while True:
            m = _HEADER.search(self._buf)
            start = m.start() if m else max(0, len(self._buf) - 2)  # keep a possible "ST" split off
            self._skip(start)
            if m is None or len(self._buf) < LENGTH:
                return out
            frame = bytes(self._buf[:LENGTH])
            if frame[-2:] != b"\r\n":
                self._skip(1)
                continue
            del self._buf[:LENGTH]
            problem = self._malformed(frame)
            if problem is not None:
                self.format_errors += 1
                out.append(error_reading(self.protocol, frame, problem))
                continue
            self.frames += 1
            out.append(self._decode(frame))

    def _skip(self, n: int) -> None:
        del self._buf[:n]
        self.garbage_bytes += n

    @staticmethod
    def _malformed(f: bytes) -> str | None:
        """Why a framed candidate is not a CAS frame, or None."""
        m = _FRAME.fullmatch(f)
        if m is None:
            return f"malformed CAS frame {f!r}"
        h1, _h2, _ident, lamp_b, data, _unit = m.groups()
        if h1 == b"OL":
            return None  # the data field of an overload frame is not a number
        if bool(lamp_b[0] & LAMP_STABLE) != (h1 == b"ST"):
            return f"lamp byte 0x{lamp_b[0]:02x} contradicts header {h1.decode()}"
        if not _DATA.fullmatch(data):
            return f"malformed weight {data!r}"
        return None

    def _decode(self, f: bytes) -> Reading:
        m = _FRAME.fullmatch(f)
        assert m is not None  # checked by _malformed
        h1, h2, _ident, _lamp, data, unit_b = m.groups()
        stable, net = h1 == b"ST", h2 == b"NT"
        unit = unit_b.strip().decode()
        if h1 == b"OL":
            return Reading(self.protocol, f, None, unit or None, None, net, None, overload=True)
        if unit not in GRAMS_PER_UNIT:
            return Reading(
                self.protocol,
                f,
                None,
                unit,
                stable,
                net,
                None,
                error=f"unit {unit or '(blank)'} refused: only kg, g and t are recorded",
            )
        value = Decimal(data.replace(b" ", b"").decode())
        return Reading(self.protocol, f, to_grams(value, unit), unit, stable, net, None)


# Continuous output: nothing to send.  Zero/tare are left unset: the reference gives them only for
# the NT-500 command mode with a configured 2-character device id (``dd MZ``/``dd MT``), and does
# not say whether a CI indicator in continuous mode accepts them.
register(
    ProtocolSpec(
        "cas",
        CasParser,
        "CAS CI-series indicators, continuous 22-byte format (ST,GS,… kg)",
        baud=9600,
        bytesize=8,
        parity="N",  # §1.1: 9600 8N1 typical [unverified]; LAMP needs 8 bits
        stable_flag=True,
    ),
)
