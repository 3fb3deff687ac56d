"""A label's layout as one printer job: the language registry, :func:`encoder_for` and :func:`encode`.

Pure, no I/O.  :func:`encode` walks a :class:`edge.labels.Layout` once and hands each element to
the language's :class:`~edge.devices.printer.language.Encoder`.  The decision how text goes out is
made here, once, for all languages: ASCII text is always the printer's own font; other text with
``cjk="font"`` is the printer's resident CJK font (TSPL ``TSS24.BF2`` / ESC/POS ``FS &`` with
GB18030 bytes, ZPL ``^A@`` with ``E:SIMSUN.TTF`` and UTF-8) and with ``cjk="bitmap"`` a 1-bit image
drawn with our CJK font (TSPL ``BITMAP``, ZPL ``^GFA``, ESC/POS ``GS v 0``).  Text a language cannot
carry natively falls back to the bitmap too: ZPL field data with ``^``/``~``, characters outside
GBK for the 24-dot GB fonts.
"""

from __future__ import annotations

from edge import labels
from edge.devices.printer.escpos import EscPos
from edge.devices.printer.language import Encoder
from edge.devices.printer.tspl import Tspl
from edge.devices.printer.zpl import Zpl
from edge.errors import PrinterError
from edge.labels import Bar, Box, Layout, Qr, Text

CJK_MODES = ("font", "bitmap")

# name -> encoder: the one list of languages, in the order they are offered (tspl is the default).
LANGUAGES: dict[str, type[Encoder]] = {cls.name: cls for cls in (Tspl, Zpl, EscPos)}


def encoder_for(name: str) -> type[Encoder]:
    if name not in LANGUAGES:
        raise PrinterError("printer.language", name=name, known=", ".join(LANGUAGES))
    return LANGUAGES[name]


def cjk_mode(lang: str, cjk: str | None) -> str:
    """``cjk`` checked, or the language's default when None."""
    if cjk is None:
        return encoder_for(lang).default_cjk
    if cjk not in CJK_MODES:
        raise PrinterError("printer.cjk", cjk=cjk)
    return cjk


def encode(lay: Layout, lang: str, cjk: str | None = None) -> bytes:
    """The layout as one job (one label) in printer language ``lang``."""
    enc = encoder_for(lang)(lay)
    mode = cjk_mode(lang, cjk)
    enc.begin()
    for el in lay.elements:  # reading order: what a stream printer prints top to bottom
        if isinstance(el, Text):
            native = enc.text_ascii(el) if el.text.isascii() else mode == "font" and enc.text_cjk(el)
            if not native:
                enc.bitmap(el.x, el.y, labels.text_bits(el.text, el.height))
        elif isinstance(el, Qr):
            enc.qr(el)
        elif isinstance(el, Box):
            enc.box(el)
        elif isinstance(el, Bar):
            enc.bar(el)
        else:
            enc.bitmap(el.x, el.y, el.bits)
    enc.end()
    return bytes(enc.out)
