"""Mettler Toledo standard continuous output (reference §3), indicator side.

The indicator shows kg with 3 decimals (decimal code 5, increment ×1), so the six weight digits
are exactly the grams and the capacity is 999.999 kg; beyond it the out-of-range bit is set.
"""

from __future__ import annotations

import functools

from sim_devices.scales.base import ScaleState, register

TOLEDO_SWA = 0x20 | 0x08 | 0x05  # bit 5 always 1, increment ×1 (bits 4,3 = 01), 3 decimals (code 5)
TOLEDO_SWB = 0x20 | 0x10  # bit 5 always 1, bit 4: kg (SWC unit bits 000 defer to it)
TOLEDO_SWC = 0x20  # bit 5 always 1; unit from SWB; no print request, not expanded
TOLEDO_MAX_G = 999_999  # g: six digits at 3 decimals in kg


def toledo_frame(
    grams: int, *, motion: bool = False, net: bool = False, tare_g: int = 0, checksum: bool = True
) -> bytes:
    """One standard frame: STX SWA SWB SWC, 6 weight + 6 tare digits (leading blanks), CR [CHK]."""
    out_of_range = abs(grams) > TOLEDO_MAX_G
    swb = TOLEDO_SWB | net | (grams < 0) << 1 | out_of_range << 2 | motion << 3
    shown = min(abs(grams), TOLEDO_MAX_G)
    body = bytes([0x02, TOLEDO_SWA, swb, TOLEDO_SWC]) + b"%6d%6d\r" % (shown, tare_g)
    if checksum:
        body += bytes([-sum(body) & 0x7F])  # 7-bit two's complement of the sum, STX and CR included
    return body


class ToledoSim:
    streaming = True  # continuous output; commands (P, T, Z) are not acknowledged (§3.6)

    def __init__(self, checksum: bool = True) -> None:
        self.checksum = checksum

    def frame(self, s: ScaleState) -> bytes:
        return toledo_frame(s.grams, motion=s.motion, net=s.net, tare_g=s.tare_g, checksum=self.checksum)

    def answer(self, command: bytes, s: ScaleState) -> bytes | None:
        return None


register("toledo", ToledoSim)
register("toledo-nochk", functools.partial(ToledoSim, checksum=False))
