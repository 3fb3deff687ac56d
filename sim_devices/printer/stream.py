"""One byte stream (a TCP connection or the pty): language detection, re-detection between jobs,
and the status bytes a printer in a given state answers.  Pure: no I/O here.
"""

from __future__ import annotations

import re
from typing import Protocol

from sim_devices.printer import tspl
from sim_devices.printer.escpos import PAPER_DOTS, EscPosParser
from sim_devices.printer.model import Event, Label, StatusQuery
from sim_devices.printer.tspl import TsplParser
from sim_devices.printer.zpl import ZplParser

STATES = ("ok", "offline", "paper_out")
LANGUAGES = ("tspl", "zpl", "escpos")
TSPL_STATUS = b"\x1b!?"
_WHITESPACE = b" \t\r\n"
_WORD = re.compile(rb"[A-Za-z]+")
_WORD_MAX = 12  # bytes: longer than any TSPL command word; enough to tell a command from text

# The answers, from the language subset (docs: /tmp/spec/printer.md, condensed in the package docstring).
_ZPL_HS = ("\x02030,{paper},0,0245,000,0,0,0,000,0,0,0\x03\r\n"
           "\x02000,0,0,0,0,2,6,0,00000000,1,000\x03\r\n"
           "\x021234,0\x03\r\n")


class Parser(Protocol):
    """What every language parser offers the stream."""

    language: str

    def feed(self, data: bytes) -> list[Event]: ...

    def close(self) -> list[Event]: ...

    def at_boundary(self) -> bool: ...

    def rest(self) -> bytes: ...


def status_reply(kind: str, state: str) -> bytes:
    """The bytes answering a status query of ``kind`` (``tspl``, ``zpl``, ``escpos-N``) in ``state``.

    Paper out: TSPL bit 2, ZPL field 2 of the first ``~HS`` line, ESC/POS roll-paper end (bits 5
    and 6 of DLE EOT 4) and offline (DLE EOT 1, an Epson stops when its paper runs out)."""
    paper_out = state == "paper_out"
    if kind == "tspl":
        return b"\x04" if paper_out else b"\x00"
    if kind == "zpl":
        return _ZPL_HS.format(paper=int(paper_out)).encode("ascii")
    if kind == "escpos-1":
        return b"\x1e" if paper_out else b"\x16"
    if kind == "escpos-2":
        return b"\x32" if paper_out else b"\x12"  # bit 5: stopped by paper end
    if kind == "escpos-4":
        return b"\x72" if paper_out else b"\x12"
    if kind == "escpos-3":
        return b"\x12"  # no error
    raise ValueError(f"unknown status query {kind!r}")


def new_parser(language: str, width_dots: int = PAPER_DOTS) -> Parser:
    if language == "tspl":
        return TsplParser()
    if language == "zpl":
        return ZplParser()
    if language == "escpos":
        return EscPosParser(width_dots)
    raise ValueError(f"unknown printer language {language!r}")


def classify(data: bytes, current: str | None, final: bool = False) -> str | None:
    """The language of a job starting with ``data`` (whitespace already skipped); None = need more.

    ``^``/``~`` → ZPL; ESC, FS, GS, DLE → ESC/POS; otherwise TSPL for a new stream.  Between jobs
    of an ESC/POS or ZPL stream, plain text switches to TSPL only when it starts with a TSPL
    command word, so a receipt that begins with text stays ESC/POS."""
    first = data[0]
    if first in b"^~":
        return "zpl"
    if first in (0x1B, 0x1C, 0x1D, 0x10):
        return "escpos"
    if current in (None, "tspl"):
        return "tspl"
    m = _WORD.match(data)
    word = m.group() if m else b""
    if len(word) == len(data) and len(word) < _WORD_MAX and not final:
        return None  # the word may go on
    return "tspl" if word.decode("ascii").upper() in tspl.COMMANDS else current


class PrinterStream:
    """Bytes in, events out, for one connection; the language is detected from the first
    non-whitespace bytes and again at each job boundary (a pty carries job after job)."""

    def __init__(self, width_dots: int = PAPER_DOTS) -> None:
        self.width_dots = width_dots
        self._pending = bytearray()
        self._parser: Parser | None = None

    @property
    def language(self) -> str | None:
        return self._parser.language if self._parser else None

    def at_boundary(self) -> bool:
        """No job in progress (nothing received since the last one ended, whitespace apart)."""
        return not self._pending.strip(_WHITESPACE) and (self._parser is None or self._parser.at_boundary())

    def feed(self, data: bytes) -> list[Event]:
        self._pending += data
        return self._pump(final=False)

    def close(self) -> list[Event]:
        """End of stream: the parser finishes what it can (an ESC/POS job with content ends)."""
        events = self._pump(final=True)
        if self._pending and self._parser is None:
            self._pending.clear()
        if self._parser is not None:
            if self._pending:
                events += self._parser.feed(bytes(self._pending))
                self._pending.clear()
            events += self._parser.close()
        return events

    def _pump(self, final: bool) -> list[Event]:
        events: list[Event] = []
        pending = self._pending
        while pending:
            if self._parser is None or self._parser.at_boundary():
                start = len(pending) - len(pending.lstrip(_WHITESPACE))
                if start == len(pending):
                    if self._parser is None:
                        pending.clear()  # whitespace before anything: meaningless
                        break
                elif pending[start:start + 3] == TSPL_STATUS:
                    events.append(StatusQuery("tspl"))
                    del pending[:start + 3]
                    continue
                elif len(pending) - start < 3 and TSPL_STATUS.startswith(bytes(pending[start:])) and not final:
                    break  # maybe ESC ! ? arriving: it must not start an ESC/POS stream
                else:
                    current = self._parser.language if self._parser else None
                    language = classify(bytes(pending[start:]), current, final)
                    if language is None:
                        break
                    if language != current:
                        self._parser = new_parser(language, self.width_dots)
                        del pending[:start]  # whitespace between jobs is not the new job's
            assert self._parser is not None
            data = bytes(pending)
            pending.clear()
            produced = self._parser.feed(data)
            events += produced
            if any(isinstance(e, Label) for e in produced):
                pending += self._parser.rest()  # the next job may be in another language
        return events
