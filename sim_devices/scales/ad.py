"""A&D balances/indicators and the Chinese ST,GS clones (reference §5.1-5.2), indicator side.

``variant``: ``indicator`` (``ST,GS,+012.345kg``, the default), ``balance`` (``ST,+12345.0   g``) or
``clone`` (``ST,GS, 12.345kg``: blank sign, blanked zeros).  ``parity``: emit bytes as a 7E1 device
seen by an 8N1 port (bit 7 = even parity), to exercise the reader's masking.
"""

from __future__ import annotations

from sim_devices.scales.base import ScaleState, register

MAX_G = 999_999  # g: the widest indicator field at 3 decimals in kg ("999.999"); beyond it OL


def even_parity(data: bytes) -> bytes:
    """A 7E1 byte stream as an 8N1 port sees it: bit 7 carries even parity (reference §1.1)."""
    return bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in data)


def ad_line(grams: int, *, motion: bool = False, net: bool = False, variant: str = "indicator") -> bytes:
    sign = b"-" if grams < 0 else b"+"
    head = b"OL" if abs(grams) > MAX_G else b"US" if motion else b"ST"
    if variant == "balance":
        number = b"%08.1f" % abs(grams) if abs(grams) <= MAX_G else b"999999.9"
        return head + b"," + sign + number + b"  g\r\n"
    mode = b"NT" if net else b"GS"
    if abs(grams) > MAX_G:
        number = b"    .  "
    elif variant == "clone":
        number = b"%7.3f" % (abs(grams) / 1000)
        sign = b"-" if grams < 0 else b" "
    else:
        number = b"%07.3f" % (abs(grams) / 1000)
    return head + b"," + mode + b"," + sign + number + b"kg\r\n"


class AdSim:
    streaming = True  # set to stream (indicators and clones do by default); Z/T are not simulated

    def __init__(self, variant: str = "indicator", parity: bool = False) -> None:
        if variant not in ("indicator", "balance", "clone"):
            raise ValueError(f"unknown A&D variant {variant!r}")
        self.variant, self.parity = variant, parity

    def frame(self, s: ScaleState) -> bytes:
        line = ad_line(s.grams, motion=s.motion, net=s.net, variant=self.variant)
        return even_parity(line) if self.parity else line

    def answer(self, command: bytes, s: ScaleState) -> bytes | None:
        return None


register("ad", AdSim)
