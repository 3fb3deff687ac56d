"""The device-independent drawing of a label: a few elements in printer dots.

A :class:`Layout` is the contract between ``edge.labels.layout`` (which places a label's content)
and everything that draws it: ``edge.labels.raster`` (PNG, bitmaps) and the TSPL, ZPL and ESC/POS
encoders in ``edge.devices.printer``, so the screen preview and every printer show one label.
Pure data (no Pillow, no qrcode), so an encoder can import it without the drawing libraries.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import LabelError

QR_ECC = "Q"  # error correction: 25 % of the symbol may be dirty or creased and it still reads


@dataclass(frozen=True)
class Bits:
    """A 1-bit image: rows of ``row_bytes`` bytes, most significant bit first, **1 = black**."""

    width: int
    height: int
    data: bytes

    @property
    def row_bytes(self) -> int:
        return (self.width + 7) // 8

    def __post_init__(self) -> None:
        if len(self.data) != self.row_bytes * self.height:
            raise LabelError("label.bitmap_size", width=self.width, height=self.height, size=len(self.data),
                             expected=self.row_bytes * self.height)


@dataclass(frozen=True)
class Text:
    """One line of text; ``(x, y)`` is the top-left of its ``height``-dot line box."""

    x: int
    y: int
    text: str
    height: int


@dataclass(frozen=True)
class Qr:
    """A QR symbol at error correction ``QR_ECC``; ``(x, y)`` is the top-left of the symbol (quiet zone outside)."""

    x: int
    y: int
    payload: str
    module: int  # dots per module
    modules: int  # modules per side (from the version our encoder chose: the printers choose the same)

    @property
    def side(self) -> int:
        return self.module * self.modules


@dataclass(frozen=True)
class Box:
    """A rectangle outline; the lines lie inside ``width`` × ``height``."""

    x: int
    y: int
    width: int
    height: int
    thickness: int


@dataclass(frozen=True)
class Bar:
    """A filled black rectangle."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Bitmap:
    """A 1-bit image placed with its top-left at ``(x, y)``: the warning and hazard marks."""

    x: int
    y: int
    bits: Bits


Element = Text | Qr | Box | Bar | Bitmap


@dataclass(frozen=True)
class Layout:
    """A label in printer dots: what every renderer and encoder draws.

    ``elements`` are in reading order (mark, title, fields, QR, code): a stream printer without
    x/y (ESC/POS) prints them in this order, one under the other.
    """

    width: int
    height: int
    dpi: int
    width_mm: float
    height_mm: float
    elements: tuple[Element, ...]
