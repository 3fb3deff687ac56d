"""OHAUS print lines (reference §5.3): ``ohaus``.

One weight per CR LF line, parsed by tokens (the reference's regular expression), not columns:
optional ``-``, the value, the unit, ``?`` when not stable, then an optional legend ``G`` (gross),
``NET``/``N`` (net) or ``T`` (a printed tare — not a load, so no weight).  ``OK!`` acknowledgements
yield nothing; ``ES`` (invalid command) is an error reading.  Policy as for Toledo/MT-SICS: a line
outside the grammar never yields a weight (counted in ``format_errors``, error reading); units
other than g/kg/t are refused by name.

A line has no start marker, so the tail of a line cut by the start of the stream could look like a
different whole line (``"  112.5 kg"`` → ``"2.5 kg"``): the bytes before the first terminator are
always dropped as garbage.  OHAUS has no checksum: a corrupted digit, point, sign or blank in the
weight field, or a ``?`` turned into a blank, cannot be detected here (§8.3: prefer a protocol with
a checksum, and accept a weight only after N identical readings).
"""

from __future__ import annotations

import re
from decimal import Decimal

from edge.devices.scales.base import (
    GRAMS_PER_UNIT,
    LineBuffer,
    ProtocolSpec,
    Reading,
    error_reading,
    register,
    to_grams,
)

# Reference §5.3, verbatim apart from [ \t] for \s (a line holds no CR/LF any more).
OHAUS_RE = re.compile(rb"^[ \t]*(-?)[ \t]*([0-9]+(?:\.[0-9]+)?)[ \t]+([A-Za-z:%]+)[ \t]*(\?)?[ \t]*(G|NET|N|T)?[ \t]*$")
_PRINTABLE = re.compile(rb"[\t\x20-\x7e]*")


class OhausParser:
    """OHAUS print lines into readings.  Counters: ``frames``, ``device_errors`` (``ES``),
    ``format_errors`` and ``garbage_bytes`` (the partial first line, Xon/Xoff, overflow)."""

    protocol = "ohaus"

    def __init__(self) -> None:
        self._lines = LineBuffer(mask7=True)  # 7-bit ASCII: a 7E1 device read as 8N1 is masked
        self.frames = 0
        self.device_errors = 0
        self.format_errors = 0
        self.acks = 0

    @property
    def garbage_bytes(self) -> int:
        return self._lines.garbage_bytes

    def feed(self, data: bytes) -> list[Reading]:
        out: list[Reading] = []
        for raw, text, synced in self._lines.feed(data):
            if not synced:
                self._lines.discard(raw)
                continue
            stripped = text.strip(b" \t")
            if not stripped:
                continue
            if stripped == b"OK!":
                self.frames += 1
                self.acks += 1
                continue
            if stripped == b"ES":
                self.frames += 1
                self.device_errors += 1
                out.append(error_reading(self.protocol, raw, "ES: invalid command"))
                continue
            m = OHAUS_RE.match(text) if _PRINTABLE.fullmatch(text) else None
            if m is None:
                self.format_errors += 1
                out.append(error_reading(self.protocol, raw, f"not an OHAUS weight line: {raw!r}"))
                continue
            self.frames += 1
            out.append(self._decode(raw, m))
        return out

    def _decode(self, raw: bytes, m: re.Match[bytes]) -> Reading:
        sign, digits, unit_b, motion, legend = m.groups()
        unit = unit_b.decode()
        stable = motion is None
        net = None if legend is None else legend in (b"NET", b"N")
        if unit not in GRAMS_PER_UNIT:
            return Reading(
                self.protocol,
                raw,
                None,
                unit,
                stable,
                net,
                None,
                error=f"unit {unit} refused: only kg, g and t are recorded",
            )
        grams = to_grams(Decimal((sign + digits).decode()), unit)
        if legend == b"T":
            return Reading(
                self.protocol, raw, None, unit, stable, None, grams, error="printed tare (legend T), not a load"
            )
        return Reading(self.protocol, raw, grams, unit, stable, net, None)


# Poll ``IP`` (immediate print, stable or not, §5.3) instead of relying on the indicator's print
# settings: it works whether continuous/auto print is on or off (extra lines parse the same) and
# shows motion (``?``).  ``CP`` would change a setting the operator may have chosen.
register(
    ProtocolSpec(
        "ohaus",
        OhausParser,
        "OHAUS balances and indicators (Defender, Ranger, Scout …), polled with IP",
        baud=9600,
        bytesize=8,
        parity="N",  # §1.1: 9600 8N1 typical [verify per model]
        stable_flag=True,
        poll=b"IP\r\n",
        poll_s=0.1,  # s: 10 requests/s, ~21 B answers = 22% of a 9600 baud line; motion stays visible
        zero=b"Z\r\n",
        tare=b"T\r\n",
    ),
)
