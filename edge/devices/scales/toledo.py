"""Mettler Toledo standard continuous output (reference §3): ``toledo`` and ``toledo-nochk``.

Policy: a frame that fails the checksum or carries a malformed field never yields a weight — it
is counted and yields a ``Reading`` with ``weight_g=None`` and ``error`` set, so a caller can show
*why* nothing is recorded.  Out-of-range frames yield ``weight_g=None`` with ``overload`` /
``underload`` set.  Units other than kg/g/t are refused, and so is the "expanded ×10" display (not
legal for trade).  Sub-gram resolution is rounded half-even.
"""

from __future__ import annotations

import functools
import re
from decimal import ROUND_HALF_EVEN, Decimal

from edge.devices.scales.base import GRAMS_PER_UNIT, ByteFramer, ProtocolSpec, Reading, register

STX, CR = 0x02, 0x0D
_CR_AT = 16  # index of the CR: byte 17 in both the 17- and the 18-byte layout (§3.1)
_FIELD = re.compile(rb" *[0-9]+")  # leading blanks or zeros, then digits; no sign, no point (§3.1)
_SWC_UNITS = {1: "g", 2: "t", 3: "oz", 4: "ozt", 5: "dwt", 6: "ton", 7: "custom"}  # SWC bits 0-2


def toledo_checksum_ok(frame: bytes) -> bool:
    """7-bit two's-complement checksum over the whole frame including CHK sums to 0 (§3.5)."""
    return sum(b & 0x7F for b in frame) & 0x7F == 0


def _to_grams(digits: bytes, dp_code: int, grams_per_unit: int) -> int:
    """Digits × 10^(2-code) × unit, in Decimal: no float ever touches a recorded weight (§1.3)."""
    value = Decimal(int(digits)).scaleb(2 - dp_code) * grams_per_unit
    return int(value.to_integral_value(rounding=ROUND_HALF_EVEN))


class ToledoParser(ByteFramer):
    """Sync on STX, take a fixed length (17, or 18 with checksum), verify, decode SWA/SWB/SWC.

    Counters: ``frames`` decoded, ``checksum_errors``, ``format_errors`` (checksum fine but a field
    malformed) and ``garbage_bytes`` (skipped while hunting for a frame).  A candidate whose CR is
    misplaced is a false start: drop one byte and rescan.  A candidate with CR in place but a bad
    checksum is consumed whole, so a corrupted byte cannot shift a "new frame" into view.
    With ``checksum=False`` an 18-byte stream still decodes (the CHK byte is skipped as garbage).
    """

    protocol = "toledo"

    def __init__(self, checksum: bool = True) -> None:
        super().__init__()
        self.checksum = checksum
        self.length = 18 if checksum else 17

    def feed(self, data: bytes) -> list[Reading]:
        self._add(data)
        return [self._reading(frame, raw) for frame, raw in self._fixed_frames(STX, self.length, _CR_AT, CR)]

    def _reading(self, frame: bytes, raw: bytes) -> Reading:
        if self.checksum and not toledo_checksum_ok(frame):
            return self._checksum_error(raw)
        problem = self._malformed(frame)
        if problem is not None:
            return self._format_error(raw, problem)
        self.frames += 1
        return self._decode(frame, raw)

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


# Read as 8N1 even though many terminals send 7E1: the parser masks bit 7 (§1.1), and a continuous
# protocol needs no commands, whose parity would be the only thing 8N1 gets wrong.
register(
    ProtocolSpec("toledo", ToledoParser, "Mettler Toledo standard continuous output, 18-byte frames with "
                 "checksum (the setting to ask for at commissioning)"),
    ProtocolSpec("toledo-nochk", functools.partial(ToledoParser, checksum=False),
                 "Toledo continuous, 17-byte frames: the terminal has its checksum off"),
)
