"""ZPL II (Zebra): ``^``/``~`` commands in, labels (``^XA`` … ``^XZ``) and ``~HS`` queries out.

Pure and incremental.  A command's parameters run to the next ``^`` or ``~``, so most commands are
only complete when the next one starts; the parameterless ones (``^XA ^XZ ^FS ~HS``) act as soon
as their three bytes are in, so a label ends and a status query is answered without waiting for
more data.  Fields are built ZPL's way: ``^FO`` and ``^A``/``^BQ``/``^GF``/``^GB`` set up a field,
``^FD`` gives its data, ``^FS`` draws it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sim_devices.printer.model import ECC_LEVELS, Bitmap, Box, ByteBuffer, Element, Event, Label, Qr, StatusQuery, Text

DEFAULT_DOTS = 812  # dots: ^PW / ^LL when the format has none (4 inches at 203 dpi)
DEFAULT_FONT_H = 9  # dots: Zebra's power-on font A height, used when a field has no ^A
MAX_DOTS = 4800  # dots: a ^PW/^LL beyond 600 mm is a typo, not a label
MAX_COMMAND = 1 << 20  # bytes: a command (^GF hex data included) longer than this is garbage
ZERO_PARAM = {"XA", "XZ", "FS", "HS"}  # complete at their 3rd byte: nothing to wait for
PREFIXES = b"^~"
_HEX = re.compile(rb"[0-9A-Fa-f]*")


@dataclass
class _Field:
    """What ^FO/^A/^BQ/^GF/^GB/^FD set up until ^FS."""

    x: int = 0
    y: int = 0
    font_h: int = DEFAULT_FONT_H
    font_w: int = 0
    qr_module: int | None = None  # ^BQ seen: the field data is a QR
    data: bytes | None = None
    drawn: bool = False  # ^GF/^GB already drew: ^FD text would be ignored by the printer


def _ints(params: bytes, n: int, defaults: tuple[int | None, ...]) -> list[int]:
    """The first ``n`` comma-separated integers; missing ones take ``defaults`` (None = required)."""
    parts = [p.strip() for p in params.split(b",")]
    out = []
    for i in range(n):
        part = parts[i] if i < len(parts) else b""
        if part:
            out.append(int(part))
        elif defaults[i] is None:
            raise ValueError(f"parameter {i + 1} missing")
        else:
            out.append(int(defaults[i] or 0))
    return out


class ZplParser(ByteBuffer):
    language = "zpl"

    def __init__(self) -> None:
        self._buf = bytearray()
        self._in_label = False
        self._utf8 = False  # ^CI28 seen (kept across formats, like the printer does)
        self._width: int | None = None
        self._length: int | None = None
        self._home = (0, 0)
        self._field = _Field()
        self._elements: list[Element] = []
        self._texts: list[str] = []
        self._warnings: list[str] = []
        self._bytes = 0

    def at_boundary(self) -> bool:
        return not self._buf and not self._in_label


    def feed(self, data: bytes) -> list[Event]:
        """Events completed by ``data``; stops right after ``^XZ`` so the stream can re-detect."""
        self._buf += data
        return self._run(final=False)

    def close(self) -> list[Event]:
        """End of stream: the last command is complete; a format without ^XZ is not printed."""
        return self._run(final=True)

    # ----------------------------------------------------------------------------------------

    def _run(self, final: bool) -> list[Event]:
        events: list[Event] = []
        buf = self._buf
        while buf:
            start = min((i for i in (buf.find(b"^"), buf.find(b"~")) if i >= 0), default=-1)
            if start != 0:
                stray = bytes(buf if start < 0 else buf[:start])
                if stray.strip():
                    self._warnings.append(f"stray bytes outside a command: {stray[:30]!r}")
                self._consume(len(stray))
                continue
            if len(buf) < 3:
                if final:
                    self._warnings.append(f"truncated command {bytes(buf)!r}")
                    self._consume(len(buf))
                break
            prefix = chr(buf[0])
            if prefix == "^" and buf[1:2].upper() == b"A":
                code, begin = "A", 2
            else:
                code, begin = bytes(buf[1:3]).decode("latin-1").upper(), 3
            if code in ZERO_PARAM:
                end = begin
            else:
                nxt = [i for i in (buf.find(b"^", begin), buf.find(b"~", begin)) if i >= 0]
                if nxt:
                    end = min(nxt)
                elif final or len(buf) > MAX_COMMAND:
                    end = len(buf)
                else:
                    break
            params = bytes(buf[begin:end])
            if code == "HS" and prefix == "~":
                del buf[:end]  # a status query is not part of the job
                events.append(StatusQuery("zpl"))
                continue
            self._consume(end)
            try:
                label = self._command(prefix, code, params)
            except (ValueError, IndexError) as e:
                self._warnings.append(f"{prefix}{code}: malformed ({e}): {params[:40]!r}")
                continue
            if label is not None:
                events.append(label)
                break
        return events


    def _command(self, prefix: str, code: str, params: bytes) -> Label | None:
        name = f"{prefix}{code}"
        if prefix == "~":
            self._warnings.append(f"{name}: ignored")
            return None
        if code == "XA":
            if self._in_label:
                self._warnings.append("^XA inside a format: the open format continues")
            self._in_label = True
            return None
        if code == "XZ":
            if not self._in_label:
                self._warnings.append("^XZ without ^XA: nothing printed")
                return None
            return self._end()
        if not self._in_label:
            self._warnings.append(f"{name} outside ^XA…^XZ")
        if code == "PW":
            self._width = self._dots(_ints(params, 1, (None,))[0])
        elif code == "LL":
            self._length = self._dots(_ints(params, 1, (None,))[0])
        elif code == "CI":
            table = _ints(params, 1, (None,))[0]
            if table not in (0, 28):
                self._warnings.append(f"^CI{table}: only ^CI0 and ^CI28 (UTF-8) understood; read as ^CI0")
            self._utf8 = table == 28
        elif code == "LH":
            x, y = _ints(params, 2, (0, 0))
            self._home = (x, y)
        elif code == "FX":
            pass  # a comment
        elif code == "FO":
            x, y = _ints(params, 2, (0, 0))
            self._field.x, self._field.y = x + self._home[0], y + self._home[1]
        elif code == "A":
            self._font(params)
        elif code == "BQ":
            self._bq(params)
        elif code == "FD":
            self._field.data = params.replace(b"\r", b"").replace(b"\n", b"")
        elif code == "GF":
            self._gf(params)
        elif code == "GB":
            self._gb(params)
        elif code == "FS":
            self._field_separator()
        else:
            self._warnings.append(f"{name}: unknown ZPL command, ignored")
        return None

    @staticmethod
    def _dots(n: int) -> int:
        if not 0 < n <= MAX_DOTS:
            raise ValueError(f"{n} dots is outside 1..{MAX_DOTS}")
        return n

    def _font(self, params: bytes) -> None:
        """``^A{font}{orientation},h,w[,E:NAME.TTF]``; font 0 (scalable) and @ (a stored TTF)."""
        if not params:
            raise ValueError("font name missing")
        rest = params[1:]
        if rest[:1].upper() in (b"N", b"R", b"I", b"B"):
            if rest[:1].upper() != b"N":
                self._warnings.append(f"^A{params[:2].decode('latin-1')}: rotation drawn as N")
            rest = rest[1:]
        rest = rest.lstrip(b",")
        h, w = _ints(rest, 2, (DEFAULT_FONT_H, 0))
        if not 0 < h <= MAX_DOTS:
            raise ValueError(f"height {h} is outside 1..{MAX_DOTS}")
        self._field.font_h, self._field.font_w = h, w

    def _bq(self, params: bytes) -> None:
        parts = params.split(b",")
        if parts[0].strip().upper() not in (b"", b"N"):
            self._warnings.append(f"^BQ: orientation {parts[0].decode('latin-1')!r} drawn as N")
        module = int(parts[2]) if len(parts) > 2 and parts[2].strip() else 2
        if not 1 <= module <= 10:
            self._field.drawn = True  # the field is spoiled: its data must not print as text
            raise ValueError(f"magnification {module} is outside 1..10")
        self._field.qr_module = module

    def _gf(self, params: bytes) -> None:
        """``^GFA,b,b,r,HEX``: uncompressed ASCII hex only; 1 bit = black as sent."""
        parts = params.split(b",", 4)
        if len(parts) != 5:
            raise ValueError("expected A,total,total,row,data")
        if parts[0].strip().upper() != b"A":
            raise ValueError(f"format {parts[0].decode('latin-1')!r} not supported (A only)")
        total, row = int(parts[1]), int(parts[3])
        hexdata = re.sub(rb"\s", b"", parts[4])
        if row <= 0 or total <= 0 or total % row:
            raise ValueError(f"{total} bytes is not a whole number of {row}-byte rows")
        if _HEX.fullmatch(hexdata) is None:
            raise ValueError("compressed or non-hex data not supported")
        if len(hexdata) != 2 * total:
            raise ValueError(f"{len(hexdata)} hex digits for {total} bytes")
        f = self._field
        self._elements.append(Bitmap(f.x, f.y, row, total // row, bytes.fromhex(hexdata.decode("ascii"))))
        f.drawn = True

    def _gb(self, params: bytes) -> None:
        w, h, t = _ints(params, 3, (0, 0, 1))
        parts = params.split(b",")
        if len(parts) > 3 and parts[3].strip().upper() == b"W":
            self._warnings.append("^GB: white boxes drawn black")
        t = max(t, 1)
        w, h = max(w, t), max(h, t)  # the printer never draws a box thinner than its line
        f = self._field
        self._elements.append(Box(f.x, f.y, w, h, None if t >= min(w, h) else t))
        f.drawn = True

    def _field_separator(self) -> None:
        f, self._field = self._field, _Field()
        if f.drawn or f.data is None:
            if f.qr_module is not None:
                self._warnings.append("^BQ field without ^FD data: nothing drawn")
            return
        if f.qr_module is not None:
            head, comma, payload = f.data.partition(b",")
            if not comma or len(head) != 2:
                raise ValueError(f"QR field data must start with ECC and input mode, then a comma: {f.data[:20]!r}")
            ecc, mode = chr(head[0]).upper(), chr(head[1]).upper()
            if ecc not in ECC_LEVELS:
                raise ValueError(f"QR error correction {ecc!r} is not one of L M Q H")
            if mode != "A":
                self._warnings.append(f"^BQ: input mode {mode!r} read as A (auto)")
            if not payload:
                raise ValueError("empty QR payload")
            self._elements.append(Qr(f.x, f.y, payload, f.qr_module, ecc))
            return
        text = self._decode(f.data)
        stretch = f.font_w / f.font_h if f.font_w else 1.0
        self._elements.append(Text(f.x, f.y, text, f.font_h, round(stretch, 3)))
        self._texts.append(text)

    def _decode(self, data: bytes) -> str:
        if self._utf8:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                self._warnings.append(f"^FD: invalid UTF-8 after ^CI28: {data[:20]!r}")
                return data.decode("utf-8", errors="replace")
        if any(b >= 0x80 for b in data):
            self._warnings.append("^FD: non-ASCII field data without ^CI28 (read as Latin-1)")
        return data.decode("latin-1")

    def _end(self) -> Label:
        if self._field.data is not None or self._field.qr_module is not None:
            self._warnings.append("^XZ with a field not closed by ^FS: dropped")
        label = Label(self.language, self._width or DEFAULT_DOTS, self._length or DEFAULT_DOTS,
                      self._elements, self._texts, self._warnings, self._bytes)
        self._in_label, self._field, self._home = False, _Field(), (0, 0)
        self._width = self._length = None
        self._elements, self._texts, self._warnings, self._bytes = [], [], [], 0
        return label
