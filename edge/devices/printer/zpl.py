"""ZPL II (Zebra): one ``^XA … ^XZ`` format; ``^CI28`` makes field data UTF-8; ``^GFA`` with 1 = black.

A Zebra has ``E:SIMSUN.TTF`` only when someone loaded it, so Chinese text defaults to a bitmap.
Field data with ``^`` or ``~`` cannot be carried (no ``^FH`` escapes in our subset): such text
falls back to a bitmap, and such a QR payload is refused.
"""

from __future__ import annotations

from edge import labels
from edge.devices.printer.language import Encoder
from edge.errors import PrinterError
from edge.labels import Bar, Bits, Box, Qr, Text


class Zpl(Encoder):
    """One ZPL format per label; every element a ``^FO`` field."""

    name = "zpl"
    default_cjk = "bitmap"
    status_query = b"~HS"

    @staticmethod
    def carries(text: str) -> bool:
        return "^" not in text and "~" not in text  # our subset has no ^FH escapes

    def begin(self) -> None:
        self.out += f"^XA^CI28^PW{self.layout.width}^LL{self.layout.height}^LH0,0\n".encode("ascii")

    def end(self) -> None:
        self.out += b"^XZ\n"

    def field(self, x: int, y: int, body: str) -> None:
        self.out += f"^FO{x},{y}{body}^FS\n".encode()

    def text_ascii(self, el: Text) -> bool:
        if not self.carries(el.text):
            return False
        self.field(el.x, el.y, f"^A0N,{el.height},{el.height}^FD{el.text}")
        return True

    def text_cjk(self, el: Text) -> bool:
        if not self.carries(el.text):
            return False
        self.field(el.x, el.y, f"^A@N,{el.height},{el.height},E:SIMSUN.TTF^FD{el.text}")
        return True

    def qr(self, el: Qr) -> None:
        if not self.carries(el.payload):
            raise PrinterError("printer.zpl_qr", payload=repr(el.payload))
        self.field(el.x, el.y, f"^BQN,2,{el.module}^FD{labels.QR_ECC}A,{el.payload}")

    def box(self, el: Box) -> None:
        self.field(el.x, el.y, f"^GB{el.width},{el.height},{el.thickness}")

    def bar(self, el: Bar) -> None:
        self.field(el.x, el.y, f"^GB{el.width},{el.height},{min(el.width, el.height)}")

    def bitmap(self, x: int, y: int, bits: Bits) -> None:
        total = len(bits.data)
        self.field(x, y, f"^GFA,{total},{total},{bits.row_bytes},{bits.data.hex().upper()}")

    @staticmethod
    def status_complete(reply: bytes) -> bool:
        return reply.count(b"\x03") >= 3

    @staticmethod
    def status_problems(reply: bytes) -> tuple[str, ...]:
        frames = [f.split(b"\x02")[-1] for f in reply.split(b"\x03")[:-1]]
        if len(frames) < 2:
            raise ValueError("fewer than two ~HS lines")
        first, second = frames[0].split(b","), frames[1].split(b",")
        if len(first) < 3 or len(second) < 3:
            raise PrinterError("printer.status_unreadable", reply=repr(reply[:80]))
        flags = ((first[1], "printer.paper_out"), (first[2], "printer.paused"), (second[2], "printer.head_open"))
        return tuple(key for flag, key in flags if flag.strip() == b"1")
