"""OHAUS (reference §5.3), indicator side: the Defender 3000 default print line.

Line = polarity (``-`` or blank), blank, weight right-justified in 7 (kg, 3 decimals), blank, unit
left-justified in 5, stability (``?`` or blank), legend in 3 (``G``, ``NET``, ``T``), CR LF.  Print
on request (``IP``, ``P``, ``SP``) or continuously after ``CP`` until ``0P``.  ``SP``/``P`` with
"stable only" answer nothing while in motion (a real indicator would print once stable).
"""

from __future__ import annotations

from sim_devices.scales.base import Panel, ScaleState, kg3, register

MAX_SHOWN_G = 999_999  # g: 7 characters at 3 decimals in kg


def ohaus_line(grams: int, *, motion: bool, legend: str) -> bytes:
    shown = kg3(min(abs(grams), MAX_SHOWN_G))
    polarity = "-" if grams < 0 else " "
    return f"{polarity} {shown:>7} {'kg':<5}{'?' if motion else ' '}{legend:<3}\r\n".encode()


class OhausSim:
    def __init__(self) -> None:
        self.streaming = False  # until ``CP``
        self.stable_only = False  # ``1S`` / ``0S``
        self.panel = Panel()

    def frame(self, s: ScaleState) -> bytes:
        legend = "NET" if self.panel.net(s) else "G"
        return ohaus_line(self.panel.shown(s), motion=s.motion, legend=legend)

    def answer(self, command: bytes, s: ScaleState) -> bytes | None:
        cmd = command.strip()
        if cmd == b"IP":
            return self.frame(s)
        if cmd in (b"P", b"SP"):
            return None if s.motion and (cmd == b"SP" or self.stable_only) else self.frame(s)
        if cmd == b"CP":
            self.streaming = True
            return None
        if cmd == b"0P":
            self.streaming = False
            return None
        if cmd in (b"0S", b"1S"):
            self.stable_only = cmd == b"1S"
            return None
        if cmd == b"Z":
            self.panel.zero(s)
            return None
        if cmd == b"T":
            self.panel.tare(s)
            return None
        if cmd == b"0T":
            self.panel.tare_g = 0
            return None
        if cmd == b"PT":
            return ohaus_line(self.panel.tare_total(s), motion=False, legend="T")
        return b"ES\r\n"


register("ohaus", OhausSim)
