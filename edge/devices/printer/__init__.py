"""Label printers: a label's layout encoded as TSPL, ZPL or ESC/POS and sent over TCP, usblp or serial.

The printer-language subset and the transports follow the printer spec of issue 5, the same text
the simulated printer (``sim_devices/printer``) is written from; neither imports the other.

The rooms: ``language`` (the abstract :class:`Encoder`), one module per language (``tspl``,
``zpl``, ``escpos``), ``encoder`` (the language registry and :func:`encode`), ``urls`` (the URL
schemes, pure), ``transports`` (tcp / usblp / serial, and the one place their errors become
:class:`PrinterError`), ``settings`` (``[printer]`` of the config).  Here: the front class
:class:`Printer` — lay out, encode, connect, ask the status, send, close.

A job is: open, status query (optional), write, close.  The status reply is parsed by the
language's pure ``status_problems``; no answer within ``timeout_s`` is "打印机无响应".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge import labels
from edge.devices.printer.encoder import CJK_MODES, LANGUAGES, cjk_mode, encode, encoder_for
from edge.devices.printer.escpos import EscPos
from edge.devices.printer.language import Encoder
from edge.devices.printer.settings import PrinterSettings
from edge.devices.printer.transports import TRANSPORTS, Connection, connect
from edge.devices.printer.tspl import Tspl
from edge.devices.printer.urls import SCHEMES, Target, parse_url
from edge.devices.printer.zpl import Zpl
from edge.errors import PrinterError
from edge.labels import Label
from edge.messages import Text, t

STATUS_TIMEOUT_S = 1.0  # seconds a printer gets to answer the status query: they answer at once or never
MAX_COPIES = 99

__all__ = ["CJK_MODES", "LANGUAGES", "MAX_COPIES", "SCHEMES", "STATUS_TIMEOUT_S", "TRANSPORTS", "Connection",
           "Encoder", "EscPos", "PrintResult", "Printer", "PrinterSettings", "Target", "Tspl", "Zpl", "cjk_mode",
           "connect", "encode", "encoder_for", "parse_url", "query_status"]


def query_status(conn: Connection, lang: str, timeout_s: float = STATUS_TIMEOUT_S) -> None:
    """Ask the printer whether it can print; PrinterError when it cannot or does not answer in ``timeout_s``."""
    enc = encoder_for(lang)
    conn.write(enc.status_query)
    reply = b""
    deadline = time.monotonic() + timeout_s
    while not enc.status_complete(reply) and (left := deadline - time.monotonic()) > 0:
        reply += conn.read(left)
    try:
        problems = enc.status_problems(reply)
    except ValueError as exc:
        raise PrinterError("printer.no_answer", url=conn.url, seconds=f"{timeout_s:g}") from exc
    if problems:
        words = [t(key) for key in problems]
        both = Text("，".join(w.zh for w in words), ", ".join(w.en for w in words))
        raise PrinterError("printer.not_ready", problem=both, url=conn.url)


@dataclass(frozen=True)
class PrintResult:
    url: str
    language: str
    cjk: str
    copies: int
    bytes: int

    def __str__(self) -> str:
        return (f"已发送 {self.copies} 张标签到 {self.url} (sent {self.copies} label(s): {self.language}, "
                f"cjk={self.cjk}, {self.bytes} bytes)")


class Printer:
    """The printer ``settings`` describe (checked when they were loaded); nothing connects yet."""

    def __init__(self, settings: PrinterSettings) -> None:
        if settings.url is None:
            raise PrinterError("printer.no_url")
        self.settings = settings
        self.url = settings.url
        self.language = settings.language
        self.dpi = settings.dpi
        self.cjk = cjk_mode(settings.language, settings.cjk)
        self.status = settings.status
        self.timeout_s = settings.timeout_s
        # label type -> (width, height) in mm; the command line may override one for a single job
        self.sizes_mm: dict[type, tuple[float, float]] = {
            labels.MedicalLabel: settings.medical_mm, labels.HazardousLabel: settings.industrial_mm}

    def job(self, label: Label, copies: int = 1) -> bytes:
        """The bytes :meth:`print_label` sends: the label's job ``copies`` times (one job per label)."""
        if not 1 <= copies <= MAX_COPIES:
            raise PrinterError("printer.copies", copies=copies, most=MAX_COPIES)
        lay = labels.layout(label, self.dpi, self.sizes_mm.get(type(label)))
        return encode(lay, self.language, self.cjk) * copies

    def print_label(self, label: Label, copies: int = 1) -> PrintResult:
        """Lay out, encode, connect, check the status, send, close."""
        data = self.job(label, copies)
        with connect(self.url) as conn:
            if self.status:
                query_status(conn, self.language, self.timeout_s)
            conn.write(data)
        return PrintResult(self.url, self.language, self.cjk, copies, len(data))
