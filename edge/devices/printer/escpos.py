"""ESC/POS (receipt printers): a stream top to bottom; ``FS &`` GB18030 text; ``GS ( k`` QR; ``GS v 0`` rasters.

ESC/POS has no x/y: the elements are printed one under the other in the layout's reading order
(mark, title, fields, QR, code — sorting by ``y`` would interleave the columns), left-justified;
boxes and bars (borders, rules) are left out of the stream.  Chinese receipt printers have
GB18030 built in, so ``font`` is the default.
"""

from __future__ import annotations

from edge import labels
from edge.devices.printer.language import Encoder, font_multiple, gbk
from edge.errors import PrinterError
from edge.labels import Bar, Bits, Box, Qr, Text


class EscPos(Encoder):
    """One receipt: initialise, the elements as lines and rasters, feed and cut."""

    name = "escpos"
    default_cjk = "font"
    PAPER_DOTS = 576  # dots across 80 mm paper at 203 dpi: the widest raster a line can take
    # DLE EOT 4 (paper sensor) then DLE EOT 1 (printer): one byte each, paper first so "paper out"
    # is reported as such and not as the "offline" it also causes.
    status_query = b"\x10\x04\x04\x10\x04\x01"

    def begin(self) -> None:
        self.out += b"\x1b@\x1ba\x00"  # initialise, left-justify

    def end(self) -> None:
        self.out += b"\x1bd\x03\x1dV\x01"  # feed 3 lines past the cutter, partial cut: ends the job

    def size(self, height: int) -> None:
        m = min(8, font_multiple(height)) - 1
        self.out += b"\x1d!" + bytes([m << 4 | m])

    def text_ascii(self, el: Text) -> bool:
        self.size(el.height)
        self.out += el.text.encode("ascii") + b"\n"
        return True

    def text_cjk(self, el: Text) -> bool:
        data = gbk(el.text)
        if data is None:
            return False
        self.size(el.height)
        self.out += b"\x1c&" + data + b"\n\x1c."  # the line feed inside Chinese mode: the whole line is GB18030
        return True

    def qr(self, el: Qr) -> None:
        data = el.payload.encode("utf-8")
        n = len(data) + 3
        ecc = {"L": 48, "M": 49, "Q": 50, "H": 51}[labels.QR_ECC]
        self.out += b"\x1d(k\x04\x001A2\x00"  # model 2
        self.out += b"\x1d(k\x03\x001C" + bytes([min(16, el.module)])
        self.out += b"\x1d(k\x03\x001E" + bytes([ecc])
        self.out += b"\x1d(k" + bytes([n & 0xFF, n >> 8]) + b"1P0" + data
        self.out += b"\x1d(k\x03\x001Q0"

    def box(self, el: Box) -> None:
        pass  # a border belongs to a label, not to a receipt stream

    def bar(self, el: Bar) -> None:
        pass

    def bitmap(self, x: int, y: int, bits: Bits) -> None:
        if bits.width > self.PAPER_DOTS:
            raise PrinterError("printer.too_wide", width=bits.width, paper=self.PAPER_DOTS)
        w, h = bits.row_bytes, bits.height
        self.out += b"\x1dv0\x00" + bytes([w & 0xFF, w >> 8, h & 0xFF, h >> 8]) + bits.data

    @staticmethod
    def status_complete(reply: bytes) -> bool:
        return len(reply) >= 2

    @staticmethod
    def status_problems(reply: bytes) -> tuple[str, ...]:
        if not reply:
            raise ValueError("no status byte")
        if reply[0] & 0x60 == 0x60:
            return ("printer.paper_out",)
        if len(reply) >= 2 and reply[1] & 0x08:
            return ("printer.offline",)
        return ()
