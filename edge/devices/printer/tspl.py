"""TSPL/TSPL2 (TSC, Gprinter, Xprinter, HPRT …): CR LF command lines, ``BITMAP`` with 0 = black.

Chinese text goes out in the resident ``TSS24.BF2`` font as GB18030 bytes (every Chinese label
printer has it), so ``font`` is the default; text outside GBK falls back to a bitmap.
"""

from __future__ import annotations

from typing import ClassVar

from edge import labels
from edge.devices.printer.language import Encoder, font_multiple, gbk
from edge.labels import Bar, Bits, Box, Qr, Text


class Tspl(Encoder):
    """One TSPL job: SIZE … CLS, one command line per element, PRINT 1,1."""

    name = "tspl"
    default_cjk = "font"
    status_query = b"\x1b!?"
    # TSPL "ESC ! ?" answer bits -> message key; 0x20 (printing) is not a problem
    STATUS_BITS: ClassVar[dict[int, str]] = {
        0x01: "printer.head_open", 0x02: "printer.paper_jam", 0x04: "printer.paper_out",
        0x08: "printer.ribbon_out", 0x10: "printer.paused", 0x80: "printer.fault",
    }

    def line(self, command: bytes) -> None:
        self.out += command + b"\r\n"

    @staticmethod
    def quoted(data: bytes) -> bytes:
        return b'"' + data.replace(b'"', b'\\["]') + b'"'

    def begin(self) -> None:
        lay = self.layout
        for command in (f"SIZE {lay.width_mm:g} mm,{lay.height_mm:g} mm", "GAP 2 mm,0 mm", "DIRECTION 0",
                        "REFERENCE 0,0", "DENSITY 8", "SPEED 4", "CODEPAGE 936", "CLS"):
            self.line(command.encode("ascii"))

    def end(self) -> None:
        self.line(b"PRINT 1,1")

    def text_ascii(self, el: Text) -> bool:
        m = font_multiple(el.height)
        self.line(f'TEXT {el.x},{el.y},"3",0,{m},{m},'.encode("ascii") + self.quoted(el.text.encode("ascii")))
        return True

    def text_cjk(self, el: Text) -> bool:
        data = gbk(el.text)
        if data is None:
            return False
        m = font_multiple(el.height)
        self.line(f'TEXT {el.x},{el.y},"TSS24.BF2",0,{m},{m},'.encode("ascii") + self.quoted(data))
        return True

    def qr(self, el: Qr) -> None:
        payload = el.payload.encode("utf-8")
        self.line(f"QRCODE {el.x},{el.y},{labels.QR_ECC},{el.module},A,0,".encode("ascii") + self.quoted(payload))

    def box(self, el: Box) -> None:
        # x_end, y_end: the corner just outside, so the box is ``width`` wide (as ^GB and BAR count)
        self.line(f"BOX {el.x},{el.y},{el.x + el.width},{el.y + el.height},{el.thickness}".encode("ascii"))

    def bar(self, el: Bar) -> None:
        self.line(f"BAR {el.x},{el.y},{el.width},{el.height}".encode("ascii"))

    def bitmap(self, x: int, y: int, bits: Bits) -> None:
        inverted = bytes(b ^ 0xFF for b in bits.data)  # TSPL: a 0 bit prints black
        self.out += f"BITMAP {x},{y},{bits.row_bytes},{bits.height},0,".encode("ascii") + inverted
        self.out += b"\r\n"

    @staticmethod
    def status_complete(reply: bytes) -> bool:
        return len(reply) >= 1

    @staticmethod
    def status_problems(reply: bytes) -> tuple[str, ...]:
        if not reply:
            raise ValueError("no status byte")
        return tuple(key for bit, key in Tspl.STATUS_BITS.items() if reply[0] & bit)
