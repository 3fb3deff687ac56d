"""ESC/POS (Epson TM and the Chinese receipt/label printers): a byte stream laid out line by line.

Pure and incremental.  There are no coordinates: the parser keeps the paper position (``_y``) and
justification, lays each printed line or symbol out across ``width_dots`` and ends a job at a
cut (``GS V``) or, with ``close()``, at the end of the stream when something was printed.
QR symbols are laid out with their 4-module quiet zone inside the paper, as a receipt printer's
margins give in practice.  Real-time status (``DLE EOT n``) is answered wherever it appears
outside binary data.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim_devices.printer.model import (
    QUIET_MODULES,
    Bitmap,
    ByteBuffer,
    Element,
    Event,
    Label,
    Qr,
    StatusQuery,
    Text,
    qr_modules,
)

PAPER_DOTS = 576  # dots: 80 mm paper (72 mm printable at 8 dots/mm)
ASCII_W, CJK_W, GLYPH_H = 12, 24, 24  # dots: font A cell, and the 24×24 Chinese font
LINE_GAP = 6  # dots: default line spacing 30 dots for a 24-dot font (ESC 2, ~1/6 inch)
MAX_TEXT_LINE = 65536  # bytes: a line longer than this without LF is garbage
MAX_RECEIPT_DOTS = 24000  # dots: a 3 m receipt; beyond it the canvas is cut (a runaway feed, not a job)
ESC, FS, GS, DLE = 0x1B, 0x1C, 0x1D, 0x10
LF, CR, HT = 0x0A, 0x0D, 0x09
# commands accepted without drawing: first bytes -> total length (parameters included)
_ACCEPTED = {b"\x1bE": 3, b"\x1bG": 3, b"\x1b-": 3, b"\x1b2": 2, b"\x1b3": 3, b"\x1bM": 3, b"\x1bt": 3,
             b"\x1dB": 3, b"\x1dH": 3, b"\x1dh": 3, b"\x1dw": 3, b"\x1df": 3, b"\x1c!": 3, b"\x1cW": 3,
             b"\x1c-": 3, b"\x1dL": 4, b"\x1dW": 4}
# fixed-length commands known but not simulated (skipped with a warning that names them)
_SKIPPED = {b"\x1bp": 5, b"\x1bJ": 3, b"\x1bR": 3, b"\x1b{": 3, b"\x1bV": 3, b"\x1b$": 4, b"\x1b\\": 4,
            b"\x1dk": 3, b"\x1dP": 4, b"\x10\x14": 5}
_ECC_BYTES = {48: "L", 49: "M", 50: "Q", 51: "H"}


@dataclass
class _Run:
    """Part of a line in one mode and size: raw bytes, decoded when the line is printed."""

    data: bytearray
    chinese: bool
    wmul: int
    hmul: int


class EscPosParser(ByteBuffer):
    language = "escpos"

    def __init__(self, width_dots: int = PAPER_DOTS) -> None:
        self.width_dots = width_dots
        self._buf = bytearray()
        self._chinese = False
        self._align = 0
        self._wmul = self._hmul = 1
        self._qr_module, self._qr_ecc = 3, "L"  # Epson defaults
        self._qr_data: bytes | None = None
        self._line: list[_Run] = []
        self._y = 0
        self._elements: list[Element] = []
        self._texts: list[str] = []
        self._warnings: list[str] = []
        self._bytes = 0

    def at_boundary(self) -> bool:
        return not self._buf and not self._has_content()


    def feed(self, data: bytes) -> list[Event]:
        """Events completed by ``data``; stops right after a cut so the stream can re-detect."""
        self._buf += data
        events: list[Event] = []
        buf = self._buf
        while buf:
            b = buf[0]
            if b >= 0x20:
                end = next((i for i, c in enumerate(buf) if c < 0x20), len(buf))
                self._text(bytes(buf[:end]))
                self._consume(end)
                continue
            if b == LF:
                self._consume(1)
                self._print_line()
                continue
            if b in (CR, HT):
                if b == HT:
                    self._text(b" ")
                self._consume(1)
                continue
            if b in (ESC, FS, GS, DLE):
                n = self._command(events)
                if n is None:
                    break  # incomplete: wait for more
                if n < 0:  # a cut ended the job: let the stream look at what follows
                    break
                continue
            self._warnings.append(f"control byte 0x{b:02X} ignored")
            self._consume(1)
        if len(self._current_bytes()) > MAX_TEXT_LINE:
            self._warnings.append(f"line longer than {MAX_TEXT_LINE} bytes without LF: printed")
            self._print_line()
        return events

    def close(self) -> list[Event]:
        """End of stream: a job with content ends here (as when a client closes the socket)."""
        events = self.feed(b"")
        if self._buf:
            self._warnings.append(f"truncated command at the end: {bytes(self._buf[:12]).hex(' ')}")
            self._consume(len(self._buf))
        if self._has_content():
            events.append(self._end())
        return events

    # ----------------------------------------------------------------------------------------


    def _has_content(self) -> bool:
        return bool(self._elements or self._current_bytes().strip())

    def _current_bytes(self) -> bytes:
        return b"".join(bytes(r.data) for r in self._line)

    def _text(self, data: bytes) -> None:
        if self._line and (self._line[-1].chinese, self._line[-1].wmul, self._line[-1].hmul) == (
                self._chinese, self._wmul, self._hmul):
            self._line[-1].data += data
        else:
            self._line.append(_Run(bytearray(data), self._chinese, self._wmul, self._hmul))

    def _command(self, events: list[Event]) -> int | None:
        """Handles the command at the start of the buffer: None = incomplete, -1 = job ended."""
        buf = self._buf
        if len(buf) < 2:
            return None
        head = bytes(buf[:2])
        if head in (b"\x10\x04",):
            if len(buf) < 3:
                return None
            n = buf[2]
            del buf[:3]  # real-time: not part of the job's bytes
            if n in (1, 2, 3, 4):
                events.append(StatusQuery(f"escpos-{n}"))
            else:
                self._warnings.append(f"DLE EOT {n}: unknown status request, not answered")
            return 3
        if head == b"\x1b@":
            self._consume(2)
            self._align, self._wmul, self._hmul = 0, 1, 1
            self._line = []  # ESC @ clears the print buffer; Chinese mode stays (the printer's default)
            return 2
        if head in (b"\x1ba", b"\x1dV", b"\x1d!", b"\x1bd", b"\x1b!"):
            if len(buf) < 3:
                return None
            n = buf[2]
            if head == b"\x1dV":
                size = 4 if n in (65, 66) else 3
                if len(buf) < size:
                    return None
                self._consume(size)
                if n not in (0, 1, 48, 49, 65, 66):
                    self._warnings.append(f"GS V {n}: unknown cut mode, cut anyway")
                if self._has_content():
                    events.append(self._end())
                    return -1
                return size
            self._consume(3)
            if head == b"\x1ba":
                self._align = n % 48 if n % 48 in (0, 1, 2) else 0
            elif head == b"\x1d!":
                self._wmul, self._hmul = (n >> 4) + 1, (n & 15) + 1
                if not (self._wmul <= 8 and self._hmul <= 8):
                    self._warnings.append(f"GS ! 0x{n:02X}: size beyond 8×, limited to 8")
                    self._wmul, self._hmul = min(self._wmul, 8), min(self._hmul, 8)
            elif head == b"\x1b!":
                self._wmul, self._hmul = (2 if n & 0x20 else 1), (2 if n & 0x10 else 1)
            else:  # ESC d n: print the line and feed n lines
                self._print_line()
                self._y += max(0, n - 1) * (GLYPH_H + LINE_GAP)
            return 3
        if head == b"\x1c&":
            self._consume(2)
            self._chinese = True
            return 2
        if head == b"\x1c.":
            self._consume(2)
            self._chinese = False
            return 2
        if head == b"\x1d(":
            return self._gs_paren()
        if head == b"\x1dv":
            return self._raster()
        for table, accepted in ((_ACCEPTED, True), (_SKIPPED, False)):
            if head in table:
                size = table[head]
                if len(buf) < size:
                    return None
                if not accepted:
                    self._warnings.append(f"{_name(bytes(buf[:size]))}: not simulated, skipped")
                self._consume(size)
                return size
        self._warnings.append(f"{_name(head)}: unknown ESC/POS command, skipped 2 bytes")
        self._consume(2)
        return 2

    def _gs_paren(self) -> int | None:
        """``GS ( fn pL pH …``: skipped whole by its length; ``GS ( k`` with cn=49 is the QR code."""
        buf = self._buf
        if len(buf) < 5:
            return None
        size = 5 + buf[3] + 256 * buf[4]
        if len(buf) < size:
            return None
        block = bytes(buf[:size])
        self._consume(size)
        if block[2] != ord("k"):
            self._warnings.append(f"GS ( {chr(block[2])!r}: not simulated, skipped")
            return size
        body = block[5:]
        if len(body) < 2 or body[0] != 49:
            what = f"cn={body[0]}" if body else "empty"
            self._warnings.append(f"GS ( k {what}: only cn=49 (QR) simulated, skipped")
            return size
        fn, args = body[1], body[2:]
        if fn == 0x41:  # model: 49 model 1, 50 model 2; only 2 is drawn
            if args[:1] not in (b"2",):
                self._warnings.append(f"GS ( k QR model {args[:1]!r}: drawn as model 2")
        elif fn == 0x43:
            if len(args) != 1 or not 1 <= args[0] <= 16:
                self._warnings.append(f"GS ( k QR size: malformed {args.hex(' ')}")
            else:
                self._qr_module = args[0]
        elif fn == 0x45:
            if len(args) != 1 or args[0] not in _ECC_BYTES:
                self._warnings.append(f"GS ( k QR error correction: malformed {args.hex(' ')}")
            else:
                self._qr_ecc = _ECC_BYTES[args[0]]
        elif fn == 0x50:
            if args[:1] != b"0" or len(args) < 2:
                self._warnings.append("GS ( k QR store: malformed (m must be 48, data not empty)")
            else:
                self._qr_data = args[1:]
        elif fn == 0x51:
            self._print_qr()
        else:
            self._warnings.append(f"GS ( k QR function 0x{fn:02X}: not simulated")
        return size

    def _raster(self) -> int | None:
        """``GS v 0 m xL xH yL yH data``: 1 bit = black; m scales ×2 wide (1), tall (2) or both (3)."""
        buf = self._buf
        if len(buf) < 3:
            return None
        if buf[2] != ord("0"):
            self._warnings.append(f"GS v {_name(bytes(buf[2:3]))}: unknown, skipped 2 bytes")
            self._consume(2)
            return 2
        if len(buf) < 8:
            return None
        wb, h = buf[4] + 256 * buf[5], buf[6] + 256 * buf[7]
        size = 8 + wb * h
        if len(buf) < size:
            return None
        mode, data = buf[3] % 48, bytes(buf[8:size])
        self._consume(size)
        if mode > 3:
            self._warnings.append(f"GS v 0 mode {mode}: drawn unscaled")
            mode = 0
        if wb == 0 or h == 0:
            self._warnings.append("GS v 0: empty image")
            return size
        if self._line:
            self._print_line()  # text waiting in the buffer is printed first
        sx, sy = (2 if mode & 1 else 1), (2 if mode & 2 else 1)
        width = wb * 8 * sx
        self._elements.append(Bitmap(self._x_for(width), self._y, wb, h, data, scale_x=sx, scale_y=sy))
        self._y += h * sy
        return size

    def _x_for(self, width: int) -> int:
        free = max(0, self.width_dots - width)
        return (0, free // 2, free)[self._align]

    def _print_line(self) -> None:
        """LF: lays out the buffered runs on one line (an empty line just feeds)."""
        runs, self._line = self._line, []
        pieces: list[tuple[str, int, int, float]] = []  # text, width, height, stretch
        for run in runs:
            if run.chinese:
                text = bytes(run.data).decode("gb18030", errors="replace")
            else:
                text = bytes(run.data).decode("ascii", errors="replace")
                if any(b >= 0x80 for b in run.data):
                    self._warnings.append("non-ASCII bytes outside Chinese mode (FS &): printed as ?")
            width = sum((CJK_W if ord(c) >= 0x80 else ASCII_W) for c in text) * run.wmul
            pieces.append((text, width, GLYPH_H * run.hmul, run.wmul / run.hmul))
        line_h = max((h for _, _, h, _ in pieces), default=GLYPH_H)
        line = "".join(t for t, _, _, _ in pieces)
        if line.strip():
            x = self._x_for(sum(w for _, w, _, _ in pieces))
            for text, width, height, stretch in pieces:
                if text:
                    self._elements.append(Text(x, self._y + line_h - height, text, height, round(stretch, 3)))
                x += width
            self._texts.append(line.strip())
        self._y += line_h + LINE_GAP

    def _print_qr(self) -> None:
        if self._qr_data is None:
            self._warnings.append("GS ( k QR print: no symbol stored")
            return
        modules = qr_modules(self._qr_data, self._qr_ecc)
        if modules is None:
            self._warnings.append(f"GS ( k QR: {len(self._qr_data)} bytes do not fit a QR symbol")
            return
        if self._line:
            self._print_line()
        m = self._qr_module
        quiet = QUIET_MODULES * m
        side = modules * m + 2 * quiet
        if side > self.width_dots:
            self._warnings.append(f"GS ( k QR: {side} dots with its quiet zone is wider than the paper")
        x = self._x_for(side) + quiet
        self._elements.append(Qr(x, self._y + quiet, self._qr_data, m, self._qr_ecc))
        self._y += side

    def _end(self) -> Label:
        if self._line:
            self._print_line()
        if self._y > MAX_RECEIPT_DOTS:
            self._warnings.append(f"receipt {self._y} dots long: drawn up to {MAX_RECEIPT_DOTS} dots")
        height = min(max(self._y, 1), MAX_RECEIPT_DOTS)
        label = Label(self.language, self.width_dots, height, self._elements, self._texts, self._warnings,
                      self._bytes)
        self._elements, self._texts, self._warnings, self._bytes, self._y = [], [], [], 0, 0
        return label


def _name(seq: bytes) -> str:
    """``1B 70`` → ``ESC p``: commands named the way the manuals write them."""
    names = {ESC: "ESC", FS: "FS", GS: "GS", DLE: "DLE"}
    return " ".join(names.get(b, chr(b) if 0x20 < b < 0x7F else f"0x{b:02X}") for b in seq[:2])
