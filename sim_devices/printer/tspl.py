"""TSPL/TSPL2 (TSC, Gprinter, Xprinter, HPRT, Deli …): command lines in, labels and status queries out.

Pure and incremental: ``feed`` takes bytes split anywhere (inside a line, a ``BITMAP``'s binary
payload or the 3 bytes of ``ESC ! ?``) and returns the events completed so far.  A label's image
buffer lives until ``CLS`` as on a real printer, so a ``PRINT`` without a ``CLS`` before the next
label's commands prints the previous one's drawing too (a warning says so).
"""

from __future__ import annotations

import re

from sim_devices.printer.model import ECC_LEVELS, Bitmap, Box, ByteBuffer, Element, Event, Label, Qr, StatusQuery, Text

DOTS_PER_MM = 8  # 203 dpi, the resolution of nearly every Chinese label printer
DPI = 203
MAX_DOTS = 4800  # dots: 600 mm at 8 dots/mm; a bigger SIZE is a typo, not a label
MAX_LINE = 65536  # bytes: a command line longer than this is garbage, not TSPL
ESC = 0x1B
# font name -> (cell width, cell height) in dots at 203 dpi (TSPL2 manual, TEXT)
FONTS = {"1": (8, 12), "2": (12, 20), "3": (16, 24), "4": (24, 32), "5": (32, 48), "6": (14, 19),
         "7": (21, 27), "8": (14, 25), "TSS24.BF2": (24, 24)}
# commands accepted without drawing (settings of the media and the mechanism)
SETTINGS = {"GAP", "DIRECTION", "REFERENCE", "DENSITY", "SPEED", "CODEPAGE"}
COMMANDS = SETTINGS | {"SIZE", "CLS", "TEXT", "QRCODE", "BITMAP", "BAR", "BOX", "PRINT"}
_BITMAP_HEAD = re.compile(rb"BITMAP[ \t]+(-?\d+)[ \t]*,[ \t]*(-?\d+)[ \t]*,[ \t]*(\d+)[ \t]*,[ \t]*(\d+)[ \t]*,"
                          rb"[ \t]*(\d+)[ \t]*,", re.IGNORECASE)
_BITMAP_HEAD_MAX = 64  # bytes: a BITMAP header longer than this before its 5th comma is malformed
_SIZE_PART = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mm|dot)?\s*$", re.IGNORECASE)


class Quoted(bytes):
    """A quoted argument (``\\["]`` already turned into ``"``)."""


def split_args(raw: bytes) -> list[bytes]:
    """``a,b,"c,d"`` → ``[b"a", b"b", Quoted(b"c,d")]``; raises ValueError on an unclosed quote."""
    args: list[bytes] = []
    i, n = 0, len(raw)
    while i <= n:
        while i < n and raw[i] in b" \t":
            i += 1
        if i < n and raw[i] == ord('"'):
            out = bytearray()
            i += 1
            while True:
                if i >= n:
                    raise ValueError("unclosed quote")
                if raw.startswith(b'\\["]', i):
                    out += b'"'
                    i += 4
                elif raw[i] == ord('"'):
                    i += 1
                    break
                else:
                    out.append(raw[i])
                    i += 1
            args.append(Quoted(out))
            while i < n and raw[i] in b" \t":
                i += 1
            if i < n and raw[i] != ord(","):
                raise ValueError("text after a closing quote")
        else:
            end = raw.find(b",", i)
            end = n if end < 0 else end
            args.append(raw[i:end].strip())
            i = end
        i += 1  # past the comma (or past the end)
    return args


def _int(arg: bytes) -> int:
    if isinstance(arg, Quoted):
        raise ValueError(f'"{arg.decode("latin-1")}" is not a number')
    return int(arg)


class TsplParser(ByteBuffer):
    language = "tspl"

    def __init__(self, dots_per_mm: int = DOTS_PER_MM) -> None:
        self.dots_per_mm = dots_per_mm
        self._buf = bytearray()
        self._size: tuple[int, int] | None = None
        self._elements: list[Element] = []
        self._texts: list[str] = []
        self._warnings: list[str] = []
        self._bitmap: tuple[int, int, int, int, int] | None = None  # a BITMAP header awaiting its payload
        self._printed = False  # PRINT seen and no CLS since: the buffer still holds the last label
        self._dirty = False  # commands seen since the last PRINT
        self._bytes = 0  # consumed since the last PRINT

    def at_boundary(self) -> bool:
        """Between labels: nothing buffered and no command since the last PRINT."""
        return not self._buf and not self._dirty and self._bitmap is None


    def feed(self, data: bytes) -> list[Event]:
        """Events completed by ``data``; stops right after a label so the stream can re-detect."""
        self._buf += data
        events: list[Event] = []
        buf = self._buf
        while buf:
            if self._bitmap is not None:
                need = self._bitmap[2] * self._bitmap[3]
                if len(buf) < need:
                    break
                self._finish_bitmap(bytes(buf[:need]))
                self._consume(need)
                continue
            lead = len(buf) - len(buf.lstrip(b" \t\r\n"))
            if lead:
                self._consume(lead)
                continue
            if buf[0] == ESC:
                if len(buf) < 3:
                    break
                events += self._escape(bytes(buf[:3]))
                del buf[:3]  # status queries are not part of the job's bytes
                continue
            if len(buf) < 6 and b"BITMAP".startswith(bytes(buf).upper()):
                break  # maybe the start of a BITMAP header: its payload must not be read as lines
            if bytes(buf[:6]).upper() == b"BITMAP":
                m = _BITMAP_HEAD.match(buf)
                if m:
                    self._start_bitmap(m)
                    self._consume(m.end())
                    continue
                nl = buf.find(b"\n")
                if 0 <= nl < _BITMAP_HEAD_MAX or len(buf) >= _BITMAP_HEAD_MAX:
                    end = nl + 1 if 0 <= nl < _BITMAP_HEAD_MAX else _BITMAP_HEAD_MAX
                    self._warn(f"BITMAP: malformed header {bytes(buf[:min(end, 40)])!r}")
                    self._consume(end)
                    continue
                break
            esc, nl = buf.find(ESC), buf.find(b"\n")
            if esc >= 0 and (nl < 0 or esc < nl):  # ESC ! ? inside a line: answered at once
                if len(buf) < esc + 3:
                    break
                events += self._escape(bytes(buf[esc:esc + 3]))
                del buf[esc:esc + 3]
                continue
            if nl < 0:
                if len(buf) > MAX_LINE:
                    self._warn(f"line longer than {MAX_LINE} bytes: dropped")
                    self._consume(len(buf))
                break
            line = bytes(buf[:nl]).rstrip(b"\r")
            self._consume(nl + 1)
            label = self._line(line)
            if label is not None:
                events.append(label)
                break
        return events

    def close(self) -> list[Event]:
        """End of stream: a label without PRINT is not printed (as on the real printer)."""
        events = self.feed(b"")
        if self._buf.strip() and self._bitmap is None:
            label = self._line(bytes(self._buf).strip())  # a last line without CR LF
            self._buf.clear()
            if label is not None:
                events.append(label)
        return events

    # ----------------------------------------------------------------------------------------


    def _warn(self, text: str) -> None:
        self._warnings.append(text)
        self._dirty = True

    def _escape(self, seq: bytes) -> list[Event]:
        if seq == b"\x1b!?":
            return [StatusQuery("tspl")]
        self._warn(f"ESC {seq[1:].decode('latin-1')!r}: unknown real-time command, ignored")
        return []

    def _line(self, line: bytes) -> Label | None:
        if not line.strip():
            return None
        self._dirty = True
        word, _, rest = line.strip().partition(b" ")
        name = word.decode("latin-1").upper()
        if name not in COMMANDS:
            shown = name if len(name) <= 20 else name[:20] + "…"
            self._warnings.append(f"{shown}: unknown TSPL command, ignored")
            return None
        if self._printed and name not in SETTINGS | {"SIZE", "CLS", "PRINT"}:
            self._warnings.append(f"{name} after PRINT without CLS: the previous label is printed again under it")
            self._printed = False
        try:
            return self._command(name, rest.strip())
        except (ValueError, IndexError) as e:
            self._warnings.append(f"{name}: malformed ({e}): {line[:60].decode('latin-1')!r}")
            return None

    def _command(self, name: str, rest: bytes) -> Label | None:
        if name == "SIZE":
            self._size = self._parse_size(rest)
        elif name == "CLS":
            self._elements, self._texts, self._printed = [], [], False
        elif name == "TEXT":
            self._text(split_args(rest))
        elif name == "QRCODE":
            self._qrcode(split_args(rest))
        elif name == "BAR":
            x, y, w, h = (_int(a) for a in split_args(rest)[:4])
            self._elements.append(Box(x, y, w, h))
        elif name == "BOX":
            args = split_args(rest)
            x, y, xe, ye, t = (_int(a) for a in args[:5])
            self._elements.append(Box(x, y, xe - x, ye - y, t))
        elif name == "PRINT":
            return self._print(split_args(rest) if rest else [])
        return None  # SETTINGS: accepted, nothing to draw

    def _parse_size(self, rest: bytes) -> tuple[int, int]:
        parts = rest.decode("latin-1").split(",")
        if len(parts) != 2:
            raise ValueError("expected width,height")
        dots = []
        for part in parts:
            m = _SIZE_PART.match(part)
            if not m:
                raise ValueError(f"bad dimension {part.strip()!r}")
            value, unit = float(m.group(1)), (m.group(2) or "in").lower()
            scale = {"mm": self.dots_per_mm, "dot": 1, "in": DPI if self.dots_per_mm == DOTS_PER_MM else 300}[unit]
            dots.append(round(value * scale))
        w, h = dots
        if not (0 < w <= MAX_DOTS and 0 < h <= MAX_DOTS):
            raise ValueError(f"{w}×{h} dots is outside 1..{MAX_DOTS}")
        return w, h

    def _text(self, args: list[bytes]) -> None:
        if len(args) != 7 or not isinstance(args[2], Quoted) or not isinstance(args[6], Quoted):
            raise ValueError('expected x,y,"font",rotation,x_mul,y_mul,"content"')
        x, y, rotation, xm, ym = _int(args[0]), _int(args[1]), _int(args[3]), _int(args[4]), _int(args[5])
        font = args[2].decode("latin-1")
        if font.upper() not in FONTS:
            raise ValueError(f"font {font!r} is not resident")
        if not (1 <= xm <= 10 and 1 <= ym <= 10):
            raise ValueError("multipliers must be 1..10")
        if rotation != 0:
            self._warnings.append(f"TEXT: rotation {rotation} drawn as 0")
        cell_h = FONTS[font.upper()][1]
        if font.upper() == "TSS24.BF2":
            text = args[6].decode("gb18030", errors="replace")
        else:
            text = args[6].decode("ascii", errors="replace")
            if any(b >= 0x80 for b in args[6]):
                self._warnings.append(f'TEXT: non-ASCII bytes in ASCII font "{font}" (use "TSS24.BF2")')
        self._elements.append(Text(x, y, text, cell_h * ym, round(xm / ym, 3)))
        self._texts.append(text)

    def _qrcode(self, args: list[bytes]) -> None:
        if len(args) < 7 or not isinstance(args[-1], Quoted):
            raise ValueError('expected x,y,ECC,cell,mode,rotation,"content"')
        x, y, cell, rotation = _int(args[0]), _int(args[1]), _int(args[3]), _int(args[5])
        ecc, mode = args[2].decode("latin-1").upper(), args[4].decode("latin-1").upper()
        if ecc not in ECC_LEVELS or len(ecc) != 1:
            raise ValueError(f"ECC {ecc!r} is not one of L M Q H")
        if not 1 <= cell <= 10:
            raise ValueError(f"cell {cell} is outside 1..10")
        if mode != "A":
            self._warnings.append(f"QRCODE: mode {mode!r} treated as A (auto)")
        if rotation != 0:
            self._warnings.append(f"QRCODE: rotation {rotation} drawn as 0")
        if not args[-1]:
            raise ValueError("empty content")
        self._elements.append(Qr(x, y, bytes(args[-1]), cell, ecc))

    def _start_bitmap(self, m: re.Match[bytes]) -> None:
        x, y, wb, h, mode = (int(g) for g in m.groups())
        self._dirty = True
        self._bitmap = (x, y, wb, h, mode)

    def _finish_bitmap(self, payload: bytes) -> None:
        assert self._bitmap is not None
        x, y, wb, h, mode = self._bitmap
        self._bitmap = None
        if mode not in (0, 1, 2):
            self._warnings.append(f"BITMAP: mode {mode} unknown, drawn as overwrite")
        elif mode == 2:
            self._warnings.append("BITMAP: mode 2 (XOR) drawn as OR")
        if wb == 0 or h == 0:
            self._warnings.append("BITMAP: empty (width or height 0)")
            return
        ink = bytes(b ^ 0xFF for b in payload)  # TSPL: a 0 bit prints black
        self._elements.append(Bitmap(x, y, wb, h, ink, opaque=mode not in (1, 2)))

    def _print(self, args: list[bytes]) -> Label | None:
        if args and _int(args[0]) < 1:
            raise ValueError("copies must be ≥ 1")
        warnings, self._warnings = self._warnings, []
        if self._size is None:
            warnings.append("PRINT without SIZE: canvas sized to the drawing")
        w, h = self._size or (0, 0)
        label = Label(self.language, w, h, list(self._elements), list(self._texts), warnings, self._bytes)
        self._printed, self._dirty, self._bytes = True, False, 0
        return label
