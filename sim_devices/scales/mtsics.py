"""Mettler Toledo MT-SICS (reference §2), balance side.

Command mode: silent until asked.  ``S``/``SI`` answer once, ``SIR`` streams ``S S``/``S D`` lines
at the scale's rate until ``@``.  Values are kg with 3 decimals, right-aligned in the 10-character
field (§2.2), so the digits are exactly the grams.  Simplification: ``S``/``Z``/``T`` answer at
once (``S I``/``Z I``/``T I`` while in motion) instead of waiting for stability up to a timeout.
"""

from __future__ import annotations

from sim_devices.scales.base import Panel, ScaleState, kg3, register

CAPACITY_G = 600_000  # g: above this gross the balance answers ``S +``
SERIAL = b"1126493049"  # the reference's example serial number (§2.3, I4)


class MtSicsSim:
    def __init__(self) -> None:
        self.streaming = False  # until ``SIR``
        self.panel = Panel()

    def _weight(self, s: ScaleState, *, immediate: bool) -> bytes:
        gross = self.panel.gross(s)
        if gross > CAPACITY_G:
            return b"S +\r\n"
        if gross < -CAPACITY_G:
            return b"S -\r\n"
        if s.motion and not immediate:
            return b"S I\r\n"  # a real balance waits for stability first, then times out
        status = "D" if s.motion else "S"
        return f"S {status} {kg3(self.panel.shown(s)):>10} kg\r\n".encode()

    def frame(self, s: ScaleState) -> bytes:
        return self._weight(s, immediate=True)

    def answer(self, command: bytes, s: ScaleState) -> bytes | None:
        cmd, *args = command.split()
        if cmd == b"S" and not args:
            return self._weight(s, immediate=False)
        if cmd == b"SI" and not args:
            return self._weight(s, immediate=True)
        if cmd == b"SIR" and not args:
            self.streaming = True
            return self._weight(s, immediate=True)
        if cmd == b"Z" and not args:
            return b"Z A\r\n" if self.panel.zero(s) else b"Z I\r\n"
        if cmd == b"T" and not args:
            if not self.panel.tare(s):
                return b"T I\r\n"
            return f"T S {kg3(self.panel.tare_total(s)):>10} kg\r\n".encode()
        if cmd == b"TA" and not args:
            return f"TA A {kg3(self.panel.tare_total(s)):>10} kg\r\n".encode()
        if cmd == b"TAC" and not args:
            self.panel.tare_g = 0
            return b"TAC A\r\n"
        if cmd == b"@" and not args:
            self.streaming = False  # power-on state: the stream stops (§2.3), zero is kept
            self.panel.tare_g = 0
            return b'I4 A "' + SERIAL + b'"\r\n'
        if cmd == b"I4" and not args:
            return b'I4 A "' + SERIAL + b'"\r\n'
        return b"ES\r\n"


register("mt-sics", MtSicsSim)
