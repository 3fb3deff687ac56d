"""CAS CI-series indicator (reference §6.1), continuous "CAS 22-byte" output.

``H1,H2,ID LAMP,DDDDDDDD kg CR LF``: eight data characters in kg with 3 decimals and leading
zeros (``0012.345``; a negative value puts ``-`` first: ``-012.345`` [sign placement unverified]),
LAMP = bit 7 | stable bit 6 | gross bit 2 | tare bit 1 | zero bit 0.  Over capacity: ``OL`` with
``  OVER  `` as data [unverified].  Commands (NT-500 style ``dd RW``/``dd MZ``/``dd MT``, §6.1):
``RW`` answers one frame, ``MZ``/``MT`` zero/tare (``!`` in motion), anything else ``?``.
"""

from __future__ import annotations

from sim_devices.scales.base import Panel, ScaleState, kg3, register

DEVICE_ID = b"1"
CAPACITY_G = 600_000  # g
LAMP_ALWAYS = 0x80


def cas_frame(grams: int, *, motion: bool, net: bool, overload: bool = False) -> bytes:
    lamp = LAMP_ALWAYS | (0 if motion else 0x40) | (0x02 if net else 0x04) | (0x01 if grams == 0 else 0)
    h1 = b"OL" if overload else b"US" if motion else b"ST"
    if overload:
        data = b"  OVER  "
    else:
        digits = kg3(abs(grams))
        data = (("-" + digits.rjust(7, "0")) if grams < 0 else digits.rjust(8, "0")).encode()
    return h1 + b"," + (b"NT" if net else b"GS") + b"," + DEVICE_ID + bytes([lamp]) + b"," + data + b" kg\r\n"


class CasSim:
    streaming = True  # continuous output

    def __init__(self) -> None:
        self.panel = Panel()

    def frame(self, s: ScaleState) -> bytes:
        over = self.panel.gross(s) > CAPACITY_G
        return cas_frame(self.panel.shown(s), motion=s.motion, net=self.panel.net(s), overload=over)

    def answer(self, command: bytes, s: ScaleState) -> bytes | None:
        cmd = command.replace(b" ", b"")[2:] if len(command) >= 4 else b""  # drop the 2-char id
        if cmd == b"RW":
            return self.frame(s)
        if cmd == b"MZ":
            return None if self.panel.zero(s) else b"!\r\n"
        if cmd == b"MT":
            return None if self.panel.tare(s) else b"!\r\n"
        return b"?\r\n"


register("cas", CasSim)
