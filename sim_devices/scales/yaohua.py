"""Yaohua XK3190 family (reference §4), indicator side: tF=0, tF=1, the two "=" formats and A12.

The indicator shows kg with 3 decimals while the weight fits the field (six digits for tF=0/tF=1,
seven characters for "=" and A12), then fewer decimals (a coarser display), as a real indicator's
configuration would.  None of these formats has a motion flag, so motion shows only as moving digits.
"""

from __future__ import annotations

import functools
import re

from sim_devices.scales.base import ScaleState, register

STX, ETX, EOT = b"\x02", b"\x03", b"\x04"
A12_MAX_G = 999_999  # g: "999.999" is the widest A12 field at 3 decimals; beyond it the OL line
A12_MIN_G = -20  # g: below -20 d (d = 1 g) the A12 sends its LO line (§4.4)


def xor_hex(body: bytes) -> bytes:
    """XOR of ``body`` as two upper-case ASCII hex characters (reference §4.1)."""
    x = 0
    for b in body:
        x ^= b
    return b"%02X" % x


def signed_dp(grams: int) -> bytes:
    """Sign + six digits + decimal count (tF=0 / tF=1 data): kg at the finest resolution that fits."""
    for dp in (3, 2, 1, 0):
        shown = round(abs(grams) * 10**dp / 1000)
        if shown <= 999_999:
            return b"%c%06d%d" % (b"-"[0] if grams < 0 else b"+"[0], shown, dp)
    return b"%c9999990" % (b"-"[0] if grams < 0 else b"+"[0])


def kg7(grams: int, width: int = 7) -> bytes:
    """``abs(grams)`` in kg as ``width`` characters including the point, zero-padded (12345 -> 012.345)."""
    for dp in (3, 2, 1):
        text = b"%0*.*f" % (width, dp, abs(grams) / 1000)
        if len(text) == width:
            return text
    return b"9" * width


def tf0_frame(grams: int) -> bytes:
    body = signed_dp(grams)
    return STX + body + xor_hex(body) + ETX


def tf1_reply(address: bytes, cmd: bytes, data: bytes = b"") -> bytes:
    body = address + cmd + data
    return STX + body + xor_hex(body) + ETX


def eq_frame(grams: int, *, reversed_digits: bool) -> bytes:
    sign = b"-" if grams < 0 else b"0"
    chars = kg7(grams)
    return b"=" + (chars[::-1] + sign if reversed_digits else sign + chars)


def a12_frame(grams: int, *, net: bool = False) -> bytes:
    if grams > A12_MAX_G:
        body = b" " * 9 + b"OL"
    elif grams < A12_MIN_G:
        body = b" " * 9 + b"LO"
    else:
        value = b"-" + kg7(grams, 6) if grams < 0 else kg7(grams)
        body = b"W" + (b"N" if net else b"G") + value + b"kg"
    return body + xor_hex(body) + b"\r\n"


class Tf0Sim:
    streaming = True

    def frame(self, s: ScaleState) -> bytes:
        return tf0_frame(s.grams)

    def answer(self, command: bytes, s: ScaleState) -> bytes | None:
        return None


_COMMAND = re.compile(rb"\x02?([A-Z])(.)([0-9A-F]{2})\x03?", re.DOTALL)


class Tf1Sim:
    """Command mode (§4.2): answers ``STX addr cmd XOR XOR ETX`` for its address; silent otherwise.

    ``answer`` accepts the command with or without STX/ETX, and several concatenated commands.
    A command with a wrong XOR gets no answer; an unknown command gets EOT in the command position
    (as DS1 does).
    """

    streaming = False

    def __init__(self, address: bytes = b"A") -> None:
        self.address = address

    def frame(self, s: ScaleState) -> bytes:
        return b""

    def answer(self, command: bytes, s: ScaleState) -> bytes | None:
        replies = b""
        for m in _COMMAND.finditer(command):
            addr, cmd, check = m.group(1), m.group(2), m.group(3)
            if addr != self.address or xor_hex(addr + cmd) != check:
                continue
            if cmd == b"A":
                replies += tf1_reply(addr, cmd)
            elif cmd == b"B":
                replies += tf1_reply(addr, cmd, signed_dp(s.grams + s.tare_g))
            elif cmd == b"C":
                replies += tf1_reply(addr, cmd, signed_dp(s.tare_g))
            elif cmd == b"D":
                replies += tf1_reply(addr, cmd, signed_dp(s.grams))
            else:
                replies += tf1_reply(addr, EOT)
        return replies or None


class EqSim:
    streaming = True

    def __init__(self, reversed_digits: bool) -> None:
        self.reversed_digits = reversed_digits

    def frame(self, s: ScaleState) -> bytes:
        return eq_frame(s.grams, reversed_digits=self.reversed_digits)

    def answer(self, command: bytes, s: ScaleState) -> bytes | None:
        return None


class A12Sim:
    streaming = True

    def frame(self, s: ScaleState) -> bytes:
        return a12_frame(s.grams, net=s.net)

    def answer(self, command: bytes, s: ScaleState) -> bytes | None:
        return None


register("yaohua-tf0", Tf0Sim)
register("yaohua-tf1", Tf1Sim)
register("yaohua-eq-r", functools.partial(EqSim, reversed_digits=True))
register("yaohua-eq-f", functools.partial(EqSim, reversed_digits=False))
register("yaohua-a12", A12Sim)
