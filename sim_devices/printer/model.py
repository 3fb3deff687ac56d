"""What the parsers produce: drawing elements in printer dots, finished labels and status queries.

Every language is reduced to the same few elements so that one renderer draws them all; polarity
and layout differences are settled by each parser (a ``Bitmap`` here always has 1 bit = black).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

ECC_LEVELS = "LMQH"  # QR error-correction letters, lowest to highest
QUIET_MODULES = 4  # QR quiet zone (ISO/IEC 18004): 4 modules of white on every side


@dataclass(frozen=True)
class Text:
    """One run of text; ``height`` is the character height in dots, ``stretch`` the horizontal
    scale relative to the font's natural shape (x multiplier / y multiplier)."""

    x: int
    y: int
    text: str
    height: int
    stretch: float = 1.0


@dataclass(frozen=True)
class Qr:
    """A QR symbol whose top-left dark-module corner is at ``x, y`` (the quiet zone lies outside)."""

    x: int
    y: int
    data: bytes
    module: int
    ecc: str

    @property
    def payload(self) -> str:
        return decode_payload(self.data)


@dataclass(frozen=True)
class Bitmap:
    """Packed rows, MSB first, **1 bit = black** whatever the language sent; ``opaque``: white bits
    erase what is below (TSPL overwrite mode) instead of leaving it."""

    x: int
    y: int
    width_bytes: int
    height: int
    data: bytes
    opaque: bool = False
    scale_x: int = 1
    scale_y: int = 1


@dataclass(frozen=True)
class Box:
    """A rectangle ``w × h`` at ``x, y``; ``thickness`` None = filled."""

    x: int
    y: int
    w: int
    h: int
    thickness: int | None = None


Element = Text | Qr | Bitmap | Box


@dataclass
class Label:
    """One finished job: canvas size in dots, what to draw, what it said, what went wrong."""

    language: str
    width: int
    height: int
    elements: list[Element] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    nbytes: int = 0

    @property
    def qr(self) -> list[str]:
        return [e.payload for e in self.elements if isinstance(e, Qr)]

    @property
    def bitmaps(self) -> int:
        return sum(isinstance(e, Bitmap) for e in self.elements)


@dataclass(frozen=True)
class StatusQuery:
    """A real-time status request the printer must answer at once: ``kind`` is ``tspl`` (ESC ! ?),
    ``zpl`` (~HS) or ``escpos-N`` (DLE EOT N)."""

    kind: str


Event = Label | StatusQuery


def decode_payload(data: bytes) -> str:
    """QR bytes as text: UTF-8 when valid (what every encoder of ours sends), else GB18030."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


@functools.lru_cache(maxsize=256)
def qr_modules(data: bytes, ecc: str) -> int | None:
    """Modules per side of the smallest symbol holding ``data`` (as the printer's auto mode picks),
    or None when it does not fit in version 40."""
    import qrcode
    from qrcode.exceptions import DataOverflowError

    code = qrcode.QRCode(error_correction=qr_ecc_constant(ecc), border=0)
    code.add_data(data)
    try:
        code.make(fit=True)
    except DataOverflowError:
        return None
    count: int = code.modules_count
    return count


def qr_ecc_constant(ecc: str) -> int:
    import qrcode.constants

    constant: int = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
                     "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}[ecc]
    return constant


class ByteBuffer:
    """The unparsed bytes every language parser keeps, and how it hands them back or uses them up."""

    _buf: bytearray
    _bytes: int  # consumed since the current job began

    def rest(self) -> bytes:
        """Hands back the unparsed bytes (the stream may switch language between jobs)."""
        rest, self._buf = bytes(self._buf), bytearray()
        return rest

    def _consume(self, n: int) -> None:
        del self._buf[:n]
        self._bytes += n
