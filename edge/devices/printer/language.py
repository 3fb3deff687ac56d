"""What a printer language is: the abstract :class:`Encoder` each of ``tspl``, ``zpl`` and ``escpos`` implements.

Pure, no I/O.  An encoder only has primitives (a text line, a QR code, a box, a bitmap …); which
one each layout element becomes is decided once for all languages in ``encoder.encode``.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from edge import labels
from edge.labels import Bar, Bits, Box, Layout, Qr, Text


class Encoder(abc.ABC):
    """One printer language: primitives that append to ``out``; :func:`encode` decides what to call.

    ``text_ascii`` / ``text_cjk`` return False when they cannot carry that text; it is then sent as a bitmap.
    """

    name: ClassVar[str]
    default_cjk: ClassVar[str]
    status_query: ClassVar[bytes]

    def __init__(self, lay: Layout) -> None:
        self.layout = lay
        self.out = bytearray()

    @abc.abstractmethod
    def begin(self) -> None: ...

    @abc.abstractmethod
    def end(self) -> None: ...

    @abc.abstractmethod
    def text_ascii(self, el: Text) -> bool: ...

    @abc.abstractmethod
    def text_cjk(self, el: Text) -> bool: ...

    @abc.abstractmethod
    def qr(self, el: Qr) -> None: ...

    @abc.abstractmethod
    def box(self, el: Box) -> None: ...

    @abc.abstractmethod
    def bar(self, el: Bar) -> None: ...

    @abc.abstractmethod
    def bitmap(self, x: int, y: int, bits: Bits) -> None: ...

    @staticmethod
    @abc.abstractmethod
    def status_complete(reply: bytes) -> bool:
        """The whole answer to ``status_query`` is in ``reply``."""

    @staticmethod
    @abc.abstractmethod
    def status_problems(reply: bytes) -> tuple[str, ...]:
        """What keeps the printer from printing, as message keys (``printer.paper_out`` …); () when ready.

        Raises ``ValueError`` when ``reply`` is too short to tell.
        """


def gbk(text: str) -> bytes | None:
    """GB18030 bytes of text the 24-dot GB fonts have (the two-byte GBK part), else None."""
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        return None
    return text.encode("gb18030")


def font_multiple(height: int) -> int:
    """Whole multiple of the 24-dot resident fonts that does not exceed ``height`` (widths were planned for it)."""
    return max(1, height // labels.CJK_BASE_DOTS)
