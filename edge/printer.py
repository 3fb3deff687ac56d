"""Label printers: a label's layout encoded as TSPL, ZPL or ESC/POS and sent over TCP, usblp or serial.

The printer-language subset and the transports follow the printer spec of issue 5, the same text
the simulated printer (``sim_devices/printer``) is written from; neither imports the other.

Encoding (pure, no I/O): :func:`encode` walks a :class:`edge.labels.Layout` once and hands each
element to the language's :class:`Encoder` (registry :data:`LANGUAGES`).  The decision how text
goes out is made in one place for all languages: ASCII text is always the printer's own font;
other text with ``cjk="font"`` is the printer's resident CJK font (TSPL ``TSS24.BF2`` / ESC/POS
``FS &`` with GB18030 bytes, ZPL ``^A@`` with ``E:SIMSUN.TTF`` and UTF-8) and with ``cjk="bitmap"``
a 1-bit image drawn with our CJK font (TSPL ``BITMAP``, ZPL ``^GFA``, ESC/POS ``GS v 0``).  Text a
language cannot carry natively falls back to the bitmap too: ZPL field data with ``^``/``~`` (no
``^FH`` in our subset), characters outside GBK for the 24-dot GB fonts.  Defaults: TSPL font (the
Chinese label printers all have TSS24.BF2), ZPL bitmap (a Zebra has SIMSUN.TTF only when someone
loaded it), ESC/POS font (Chinese receipt printers have GB18030 built in).

ESC/POS has no x/y: the elements are printed one under the other in the layout's reading order
(mark, title, fields, QR, code — sorting by ``y`` would interleave the columns), left-justified;
boxes and bars (borders, rules) are left out of the stream.

Transports (registry :data:`TRANSPORTS`, by URL scheme): ``tcp://host[:9100]``,
``usblp:///dev/usb/lp0`` and ``serial:///dev/ttyUSB0?baud=9600`` (a pty path works too).  A job is:
open, status query (optional), write, close.  The status reply is parsed by the language's pure
``status_problem``; no answer within ``timeout_s`` is "打印机无响应".
"""

from __future__ import annotations

import abc
import contextlib
import os
import select
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from edge import labels
from edge.errors import PrinterError
from edge.labels import Bar, Bits, Box, Label, Layout, Qr, Text

if TYPE_CHECKING:
    from edge.config import PrinterConfig

CJK_MODES = ("font", "bitmap")
STATUS_TIMEOUT_S = 1.0  # seconds a printer gets to answer the status query: they answer at once or never
CONNECT_TIMEOUT_S = 3.0  # seconds for a TCP connect: a printer on the cart's LAN answers in milliseconds
WRITE_TIMEOUT_S = 30.0  # seconds a job may take to go out: a busy printer takes bytes as it prints
DRAIN_S = 2.0  # seconds to wait for the printer to close after our FIN (it has then read the whole job)
TCP_PORT = 9100  # raw "JetDirect"/AppSocket port
SERIAL_BAUD = 9600  # the usual factory setting of serial label printers
MAX_COPIES = 99


# --- encoders -----------------------------------------------------------------------------------


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
    def status_problem(reply: bytes) -> str | None:
        """What keeps the printer from printing (Chinese, English in brackets), None when ready.

        Raises ``ValueError`` when ``reply`` is too short to tell.
        """


def _gbk(text: str) -> bytes | None:
    """GB18030 bytes of text the 24-dot GB fonts have (the two-byte GBK part), else None."""
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        return None
    return text.encode("gb18030")


def _mul(height: int) -> int:
    """Whole multiple of the 24-dot resident fonts that does not exceed ``height`` (widths were planned for it)."""
    return max(1, height // labels.CJK_BASE_DOTS)


class Tspl(Encoder):
    """TSPL/TSPL2 (TSC, Gprinter, Xprinter, HPRT …): CR LF command lines, BITMAP with 0 = black."""

    name = "tspl"
    default_cjk = "font"
    status_query = b"\x1b!?"
    STATUS_BITS: ClassVar[dict[int, str]] = {  # TSPL "ESC ! ?" answer bits; 0x20 (printing) is not a problem
        0x01: "打印头打开 (head open)", 0x02: "打印机卡纸 (paper jam)", 0x04: "打印机缺纸 (paper out)",
        0x08: "碳带用完 (ribbon out)", 0x10: "打印机暂停 (paused)", 0x80: "打印机故障 (printer error)",
    }

    def line(self, command: bytes) -> None:
        self.out += command + b"\r\n"

    @staticmethod
    def quoted(data: bytes) -> bytes:
        return b'"' + data.replace(b'"', b'\\["]') + b'"'

    def begin(self) -> None:
        lay = self.layout
        for command in (f"SIZE {lay.width_mm:g} mm,{lay.height_mm:g} mm", "GAP 2 mm,0 mm", "DIRECTION 0",
                        "REFERENCE 0,0", "DENSITY 8", "SPEED 4", "CODEPAGE 936", "CLS"):
            self.line(command.encode("ascii"))

    def end(self) -> None:
        self.line(b"PRINT 1,1")

    def text_ascii(self, el: Text) -> bool:
        m = _mul(el.height)
        self.line(f'TEXT {el.x},{el.y},"3",0,{m},{m},'.encode("ascii") + self.quoted(el.text.encode("ascii")))
        return True

    def text_cjk(self, el: Text) -> bool:
        data = _gbk(el.text)
        if data is None:
            return False
        m = _mul(el.height)
        self.line(f'TEXT {el.x},{el.y},"TSS24.BF2",0,{m},{m},'.encode("ascii") + self.quoted(data))
        return True

    def qr(self, el: Qr) -> None:
        payload = el.payload.encode("utf-8")
        self.line(f"QRCODE {el.x},{el.y},{labels.QR_ECC},{el.module},A,0,".encode("ascii") + self.quoted(payload))

    def box(self, el: Box) -> None:
        # x_end, y_end: the corner just outside, so the box is ``width`` wide (as ^GB and BAR count)
        self.line(f"BOX {el.x},{el.y},{el.x + el.width},{el.y + el.height},{el.thickness}".encode("ascii"))

    def bar(self, el: Bar) -> None:
        self.line(f"BAR {el.x},{el.y},{el.width},{el.height}".encode("ascii"))

    def bitmap(self, x: int, y: int, bits: Bits) -> None:
        inverted = bytes(b ^ 0xFF for b in bits.data)  # TSPL: a 0 bit prints black
        self.out += f"BITMAP {x},{y},{bits.row_bytes},{bits.height},0,".encode("ascii") + inverted
        self.out += b"\r\n"

    @staticmethod
    def status_complete(reply: bytes) -> bool:
        return len(reply) >= 1

    @staticmethod
    def status_problem(reply: bytes) -> str | None:
        if not reply:
            raise ValueError("no status byte")
        problems = [text for bit, text in Tspl.STATUS_BITS.items() if reply[0] & bit]
        return "，".join(problems) or None


class Zpl(Encoder):
    """ZPL II (Zebra): one ^XA … ^XZ format; ^CI28 makes field data UTF-8; ^GFA with 1 = black."""

    name = "zpl"
    default_cjk = "bitmap"
    status_query = b"~HS"

    @staticmethod
    def carries(text: str) -> bool:
        return "^" not in text and "~" not in text  # our subset has no ^FH escapes

    def begin(self) -> None:
        self.out += f"^XA^CI28^PW{self.layout.width}^LL{self.layout.height}^LH0,0\n".encode("ascii")

    def end(self) -> None:
        self.out += b"^XZ\n"

    def field(self, x: int, y: int, body: str) -> None:
        self.out += f"^FO{x},{y}{body}^FS\n".encode()

    def text_ascii(self, el: Text) -> bool:
        if not self.carries(el.text):
            return False
        self.field(el.x, el.y, f"^A0N,{el.height},{el.height}^FD{el.text}")
        return True

    def text_cjk(self, el: Text) -> bool:
        if not self.carries(el.text):
            return False
        self.field(el.x, el.y, f"^A@N,{el.height},{el.height},E:SIMSUN.TTF^FD{el.text}")
        return True

    def qr(self, el: Qr) -> None:
        if not self.carries(el.payload):
            raise PrinterError(f"二维码内容含 ^ 或 ~，ZPL 无法打印 (QR payload {el.payload!r}: ZPL field data "
                               f"cannot hold ^ or ~)")
        self.field(el.x, el.y, f"^BQN,2,{el.module}^FD{labels.QR_ECC}A,{el.payload}")

    def box(self, el: Box) -> None:
        self.field(el.x, el.y, f"^GB{el.width},{el.height},{el.thickness}")

    def bar(self, el: Bar) -> None:
        self.field(el.x, el.y, f"^GB{el.width},{el.height},{min(el.width, el.height)}")

    def bitmap(self, x: int, y: int, bits: Bits) -> None:
        total = len(bits.data)
        self.field(x, y, f"^GFA,{total},{total},{bits.row_bytes},{bits.data.hex().upper()}")

    @staticmethod
    def status_complete(reply: bytes) -> bool:
        return reply.count(b"\x03") >= 3

    @staticmethod
    def status_problem(reply: bytes) -> str | None:
        frames = [f.split(b"\x02")[-1] for f in reply.split(b"\x03")[:-1]]
        if len(frames) < 2:
            raise ValueError("fewer than two ~HS lines")
        first, second = frames[0].split(b","), frames[1].split(b",")
        if len(first) < 3 or len(second) < 3:
            raise PrinterError(f"打印机状态无法识别 (unexpected ~HS answer {reply[:80]!r})")
        problems = []
        if first[1].strip() == b"1":
            problems.append("打印机缺纸 (paper out)")
        if first[2].strip() == b"1":
            problems.append("打印机暂停 (paused)")
        if second[2].strip() == b"1":
            problems.append("打印头打开 (head open)")
        return "，".join(problems) or None


class EscPos(Encoder):
    """ESC/POS (receipt printers): a stream top to bottom; FS & GB18030 text; GS ( k QR; GS v 0 rasters."""

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
        m = min(8, _mul(height)) - 1
        self.out += b"\x1d!" + bytes([m << 4 | m])

    def text_ascii(self, el: Text) -> bool:
        self.size(el.height)
        self.out += el.text.encode("ascii") + b"\n"
        return True

    def text_cjk(self, el: Text) -> bool:
        data = _gbk(el.text)
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
            raise PrinterError(f"图像宽 {bits.width} 点，超过小票纸宽 {self.PAPER_DOTS} 点 (bitmap wider than the "
                               f"receipt paper)")
        w, h = bits.row_bytes, bits.height
        self.out += b"\x1dv0\x00" + bytes([w & 0xFF, w >> 8, h & 0xFF, h >> 8]) + bits.data

    @staticmethod
    def status_complete(reply: bytes) -> bool:
        return len(reply) >= 2

    @staticmethod
    def status_problem(reply: bytes) -> str | None:
        if not reply:
            raise ValueError("no status byte")
        if reply[0] & 0x60 == 0x60:
            return "打印机缺纸 (paper out)"
        if len(reply) >= 2 and reply[1] & 0x08:
            return "打印机离线 (offline: cover open or error)"
        return None


LANGUAGES: dict[str, type[Encoder]] = {cls.name: cls for cls in (Tspl, Zpl, EscPos)}


def encoder_for(name: str) -> type[Encoder]:
    if name not in LANGUAGES:
        raise PrinterError(f"未知的打印机语言 {name!r} (language: one of {', '.join(LANGUAGES)})")
    return LANGUAGES[name]


def cjk_mode(lang: str, cjk: str | None) -> str:
    """``cjk`` checked, or the language's default when None."""
    if cjk is None:
        return encoder_for(lang).default_cjk
    if cjk not in CJK_MODES:
        raise PrinterError(f"中文打印方式 {cjk!r} 不支持 (cjk: font or bitmap)")
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


# --- transports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A parsed printer URL."""

    url: str
    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""
    baud: int = SERIAL_BAUD


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def read(self, timeout_s: float) -> bytes:
        """What arrives within ``timeout_s`` (b"" when nothing); PrinterError when the printer hung up."""
        ...

    def close(self) -> None: ...


def _refused(target: Target, reason: str) -> PrinterError:
    return PrinterError(f"无法连接打印机 {target.url} ({reason})")


class TcpTransport:
    """Raw TCP (port 9100): the job is the bytes; a graceful close tells the printer the job is complete."""

    def __init__(self, target: Target, connect_timeout_s: float) -> None:
        self.target = target
        try:
            self.sock = socket.create_connection((target.host, target.port), timeout=connect_timeout_s)
        except ConnectionRefusedError as exc:
            raise _refused(target, "connection refused") from exc
        except TimeoutError as exc:
            raise _refused(target, "connection timed out") from exc
        except socket.gaierror as exc:
            raise _refused(target, f"unknown host: {exc.strerror}") from exc
        except OSError as exc:
            raise _refused(target, exc.strerror or str(exc)) from exc

    def write(self, data: bytes) -> None:
        try:
            self.sock.settimeout(WRITE_TIMEOUT_S)
            self.sock.sendall(data)
        except OSError as exc:
            raise PrinterError(f"打印机连接中断 {self.target.url} ({exc.strerror or exc})") from exc

    def read(self, timeout_s: float) -> bytes:
        self.sock.settimeout(timeout_s)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return b""
        except OSError as exc:
            raise PrinterError(f"打印机连接中断 {self.target.url} ({exc.strerror or exc})") from exc
        if not data:
            raise PrinterError(f"打印机断开了连接 {self.target.url} (the printer closed the connection)")
        return data

    def close(self) -> None:
        """FIN after the job, then wait (briefly) for the printer's close: closing with unread bytes
        in our buffer would send a reset, which can cost the printer the end of the job."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + DRAIN_S
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                if not self.sock.recv(4096):
                    break
        except OSError:
            pass  # already gone: the job was written, nothing more to say
        finally:
            self.sock.close()


class UsblpTransport:
    """The Linux usblp character device: written and read on one fd; ``select`` bounds the status wait."""

    def __init__(self, target: Target, _connect_timeout_s: float) -> None:
        self.target = target
        try:
            self.fd = os.open(target.path, os.O_RDWR | os.O_NOCTTY)
        except FileNotFoundError as exc:
            raise _refused(target, "no such device: is the printer plugged in and switched on?") from exc
        except PermissionError as exc:
            raise _refused(target, "permission denied: add the user to the 'lp' group") from exc
        except OSError as exc:
            raise _refused(target, exc.strerror or str(exc)) from exc

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                _, ready, _ = select.select([], [self.fd], [], WRITE_TIMEOUT_S)
                if not ready:
                    raise PrinterError(f"打印机不接收数据 {self.target.url} (no progress for {WRITE_TIMEOUT_S:g} s)")
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            raise PrinterError(f"打印机连接中断 {self.target.url} ({exc.strerror or exc})") from exc

    def read(self, timeout_s: float) -> bytes:
        try:
            ready, _, _ = select.select([self.fd], [], [], timeout_s)
            return os.read(self.fd, 4096) if ready else b""
        except OSError as exc:
            raise PrinterError(f"打印机连接中断 {self.target.url} ({exc.strerror or exc})") from exc

    def close(self) -> None:
        os.close(self.fd)


class SerialTransport:
    """A serial port (8N1) through pyserial; a pty path works the same (the simulator, tests)."""

    def __init__(self, target: Target, _connect_timeout_s: float) -> None:
        import serial

        self.target = target
        try:
            self.port = serial.Serial(target.path, baudrate=target.baud, bytesize=8, parity="N", stopbits=1,
                                      timeout=0, write_timeout=WRITE_TIMEOUT_S)
            self.port.reset_input_buffer()  # an old answer must not be taken for this job's status
        except (serial.SerialException, ValueError) as exc:
            raise _refused(target, str(exc)) from exc
        self._error = serial.SerialException

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except self._error as exc:
            raise PrinterError(f"打印机连接中断 {self.target.url} ({exc})") from exc

    def read(self, timeout_s: float) -> bytes:
        try:
            self.port.timeout = timeout_s
            data: bytes = self.port.read(1)
            if data and self.port.in_waiting:
                data += self.port.read(self.port.in_waiting)
            return data
        except self._error as exc:
            raise PrinterError(f"打印机连接中断 {self.target.url} ({exc})") from exc

    def close(self) -> None:
        self.port.close()


def _tcp_target(url: str) -> Target:
    p = urlsplit(url)
    try:
        port = p.port or TCP_PORT
    except ValueError as exc:
        raise PrinterError(f"打印机地址 {url!r} 端口错误 (bad port)") from exc
    if not p.hostname or p.path not in ("", "/") or p.query:
        raise PrinterError(f"打印机地址 {url!r} 格式错误 (expected tcp://host:9100)")
    return Target(url, "tcp", host=p.hostname, port=port)


def _device_target(url: str) -> Target:
    p = urlsplit(url)
    path = unquote(p.path)
    if p.netloc or not path.startswith("/dev/"):
        raise PrinterError(f"打印机地址 {url!r} 格式错误 (expected {p.scheme}:///dev/…, three slashes)")
    query = dict(parse_qsl(p.query, keep_blank_values=True))
    allowed = {"baud"} if p.scheme == "serial" else set()
    if set(query) - allowed:
        raise PrinterError(f"打印机地址 {url!r} 含未知参数 {', '.join(sorted(set(query) - allowed))} "
                           f"(known: {', '.join(sorted(allowed)) or 'none'})")
    baud = SERIAL_BAUD
    if "baud" in query:
        if not query["baud"].isdigit() or int(query["baud"]) <= 0:
            raise PrinterError(f"打印机地址 {url!r} 波特率错误 (baud must be a positive integer)")
        baud = int(query["baud"])
    return Target(url, p.scheme, path=path, baud=baud)


# scheme -> (URL parser, transport): the one list of ways to reach a printer.
TRANSPORTS: dict[str, tuple[Callable[[str], Target], Callable[[Target, float], Transport]]] = {
    "tcp": (_tcp_target, TcpTransport),
    "usblp": (_device_target, UsblpTransport),
    "serial": (_device_target, SerialTransport),
}


def parse_url(url: str) -> Target:
    """Check a printer URL without connecting (config validation uses this); PrinterError says why."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError as exc:
        raise PrinterError(f"打印机地址 {url!r} 格式错误 ({exc})") from exc
    if scheme not in TRANSPORTS:
        raise PrinterError(f"打印机地址 {url!r} 不支持 (scheme must be one of {', '.join(TRANSPORTS)}: "
                           f"tcp://host:9100, usblp:///dev/usb/lp0, serial:///dev/ttyUSB0?baud=9600)")
    return TRANSPORTS[scheme][0](url)


@contextlib.contextmanager
def connect(url: str, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[Transport]:
    target = parse_url(url)
    transport = TRANSPORTS[target.scheme][1](target, connect_timeout_s)
    try:
        yield transport
    finally:
        transport.close()


def query_status(transport: Transport, lang: str, url: str, timeout_s: float = STATUS_TIMEOUT_S) -> None:
    """Ask the printer whether it can print; PrinterError when it cannot or does not answer in ``timeout_s``."""
    enc = encoder_for(lang)
    transport.write(enc.status_query)
    reply = b""
    deadline = time.monotonic() + timeout_s
    while not enc.status_complete(reply) and (left := deadline - time.monotonic()) > 0:
        reply += transport.read(left)
    try:
        problem = enc.status_problem(reply)
    except ValueError as exc:
        raise PrinterError(f"打印机无响应 {url} (no answer to the status query within {timeout_s:g} s; a printer "
                           f"that never answers can be configured with status = false)") from exc
    if problem:
        raise PrinterError(f"{problem} — {url}")


# --- the printer --------------------------------------------------------------------------------


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
    """A label printer at ``url`` speaking ``language``; everything is checked here, nothing connects yet."""

    def __init__(self, url: str, language: str = "tspl", dpi: int = 203, cjk: str | None = None,
                 status: bool = True, timeout_s: float = STATUS_TIMEOUT_S,
                 sizes_mm: dict[type, tuple[float, float]] | None = None) -> None:
        parse_url(url)
        self.url = url
        self.language = encoder_for(language).name
        if dpi not in labels.DOTS_PER_MM:
            raise PrinterError(f"分辨率 {dpi} dpi 不支持 (dpi: one of {', '.join(map(str, labels.DOTS_PER_MM))})")
        self.dpi = dpi
        self.cjk = cjk_mode(language, cjk)
        self.status = status
        if timeout_s <= 0:
            raise PrinterError(f"超时 {timeout_s} 不合法 (timeout_s must be > 0)")
        self.timeout_s = timeout_s
        self.sizes_mm = dict(sizes_mm or {})

    @classmethod
    def from_config(cls, cfg: PrinterConfig) -> Printer:
        if cfg.url is None:
            raise PrinterError("未配置打印机 (printer.url is not set)")
        return cls(cfg.url, cfg.language, cfg.dpi, cfg.cjk, cfg.status, cfg.timeout_s,
                   {labels.MedicalLabel: cfg.medical_mm, labels.HazardousLabel: cfg.industrial_mm})

    def job(self, label: Label, copies: int = 1) -> bytes:
        """The bytes :meth:`print_label` sends: the label's job ``copies`` times (one job per label)."""
        if not 1 <= copies <= MAX_COPIES:
            raise PrinterError(f"份数 {copies} 超出范围 (copies: 1-{MAX_COPIES})")
        lay = labels.layout(label, self.dpi, self.sizes_mm.get(type(label)))
        return encode(lay, self.language, self.cjk) * copies

    def print_label(self, label: Label, copies: int = 1) -> PrintResult:
        """Lay out, encode, connect, check the status, send, close."""
        data = self.job(label, copies)
        with connect(self.url) as transport:
            if self.status:
                query_status(transport, self.language, self.url, self.timeout_s)
            transport.write(data)
        return PrintResult(self.url, self.language, self.cjk, copies, len(data))
