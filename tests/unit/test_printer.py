"""Printer encoders at byte level, status parsing, and the transports against a real socket and a pty."""

from __future__ import annotations

import os
import re
import select
import socket
import threading
import time
import tty
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edge import codes, labels
from edge.devices import printer
from edge.devices.printer import EscPos, Printer, PrinterSettings, Tspl, Zpl
from edge.errors import PrinterError
from edge.labels import Bar, Bitmap, Bits, Box, Layout, MedicalLabel, Qr, Text
from edge.messages import msg

CJK = "类别：感染性废物"
LAYOUT = Layout(800, 560, 203, 100, 70, (
    Text(10, 20, CJK, 24), Text(10, 60, 'A"B', 24), Qr(30, 40, "WC1", 6, 21), Box(1, 2, 100, 50, 3), Bar(5, 6, 7, 8),
    Bitmap(9, 10, Bits(8, 1, b"\xf0")),
))
BAG = codes.encode(codes.Code("B", "H330100001", "B00010203", "I"))
LABEL = MedicalLabel(BAG, org_name="第一人民医院", department="内科", weight_g=1250,
                     produced_at=datetime(2025, 1, 2, 10, 30))
ZPL_READY = (b"\x02030,0,0,0245,000,0,0,0,000,0,0,0\x03\r\n\x02000,0,0,0,0,2,6,0,00000000,1,000\x03\r\n"
             b"\x021234,0\x03\r\n")
READY = {"tspl": b"\x00", "zpl": ZPL_READY, "escpos": b"\x12\x16"}
PAPER_OUT = {"tspl": b"\x04", "zpl": ZPL_READY.replace(b"030,0,0", b"030,1,0"), "escpos": b"\x72\x1e"}


def at(url: str, language: str = "tspl", **settings: object) -> Printer:
    """The printer at ``url``, as the cart's config would describe it."""
    return Printer(PrinterSettings.model_validate({"url": url, "language": language, **settings}))


# --- encoders -----------------------------------------------------------------------------------


def test_tspl_job_byte_for_byte() -> None:
    assert printer.encode(LAYOUT, "tspl", "font") == (
        b"SIZE 100 mm,70 mm\r\nGAP 2 mm,0 mm\r\nDIRECTION 0\r\nREFERENCE 0,0\r\nDENSITY 8\r\nSPEED 4\r\n"
        b"CODEPAGE 936\r\nCLS\r\n"
        b'TEXT 10,20,"TSS24.BF2",0,1,1,"' + CJK.encode("gb18030") + b'"\r\n'
        b'TEXT 10,60,"3",0,1,1,"A\\["]B"\r\n'
        b'QRCODE 30,40,Q,6,A,0,"WC1"\r\n'
        b"BOX 1,2,101,52,3\r\n"
        b"BAR 5,6,7,8\r\n"
        b"BITMAP 9,10,1,1,0,\x0f\r\n"  # 0 bit = black in TSPL: 1111 0000 black-first becomes 0000 1111
        b"PRINT 1,1\r\n"
    )


def test_zpl_job_byte_for_byte() -> None:
    assert printer.encode(LAYOUT, "zpl", "font") == (
        b"^XA^CI28^PW800^LL560^LH0,0\n"
        b"^FO10,20^A@N,24,24,E:SIMSUN.TTF^FD" + CJK.encode("utf-8") + b"^FS\n"
        b'^FO10,60^A0N,24,24^FDA"B^FS\n'
        b"^FO30,40^BQN,2,6^FDQA,WC1^FS\n"
        b"^FO1,2^GB100,50,3^FS\n"
        b"^FO5,6^GB7,8,7^FS\n"
        b"^FO9,10^GFA,1,1,1,F0^FS\n"  # 1 bit = black in ZPL
        b"^XZ\n"
    )


def test_escpos_stream_follows_the_reading_order_byte_for_byte() -> None:
    assert printer.encode(LAYOUT, "escpos", "font") == (
        b"\x1b@\x1ba\x00"
        b"\x1d!\x00\x1c&" + CJK.encode("gb18030") + b"\n\x1c."
        b'\x1d!\x00A"B\n'
        b"\x1d(k\x04\x001A2\x00\x1d(k\x03\x001C\x06\x1d(k\x03\x001E2"  # model 2, module 6, ECC Q (50)
        b"\x1d(k\x06\x001P0WC1\x1d(k\x03\x001Q0"
        b"\x1dv0\x00\x01\x00\x01\x00\xf0"  # 1 bit = black; the box and the bar are left out
        b"\x1bd\x03\x1dV\x01"
    )


@pytest.mark.parametrize("text", ["感染性废物", "病理性废物·传染病", "医疗废物 HW01 841-001-01"])
def test_gb18030_text_round_trips_from_the_tspl_job(text: str) -> None:
    lay = Layout(800, 560, 203, 100, 70, (Text(0, 0, text, 24),))
    job = printer.encode(lay, "tspl", "font")
    (content,) = re.findall(rb'"TSS24\.BF2",0,1,1,"(.*)"\r\n', job)
    assert content.decode("gb18030") == text


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5) | st.sampled_from('AZ09 -."：'),
               min_size=1, max_size=30))
def test_any_common_chinese_text_round_trips_as_gb18030(text: str) -> None:
    lay = Layout(800, 560, 203, 100, 70, (Text(0, 0, text, 24),))
    if text.isascii():
        return
    (content,) = re.findall(rb'"TSS24\.BF2",0,1,1,"(.*)"\r\n', printer.encode(lay, "tspl", "font"), re.S)
    assert content.replace(b'\\["]', b'"').decode("gb18030") == text
    (line,) = re.findall(rb"\x1c&(.*)\n\x1c\.", printer.encode(lay, "escpos", "font"), re.S)
    assert line.decode("gb18030") == text


def test_text_height_scales_the_resident_font_by_whole_multiples() -> None:
    lay = Layout(800, 560, 203, 100, 70, (Text(0, 0, "医疗废物", 48), Text(0, 60, "AB", 72)))
    tspl = printer.encode(lay, "tspl")
    assert b'TEXT 0,0,"TSS24.BF2",0,2,2,' in tspl and b'TEXT 0,60,"3",0,3,3,"AB"' in tspl
    escpos = printer.encode(lay, "escpos")
    assert b"\x1d!\x11\x1c&" in escpos and b"\x1d!\x22AB\n" in escpos


def test_bitmap_mode_sends_cjk_as_images_and_ascii_as_text() -> None:
    job = printer.encode(LAYOUT, "tspl", "bitmap")
    assert b"TSS24.BF2" not in job and b'TEXT 10,60,"3"' in job
    assert job.count(b"BITMAP ") == 2  # the label's bitmap + the Chinese line


def test_characters_outside_gbk_fall_back_to_a_bitmap_even_in_font_mode() -> None:
    lay = Layout(800, 560, 203, 100, 70, (Text(0, 0, "废物𠀀", 24),))
    for lang in ("tspl", "escpos"):
        job = printer.encode(lay, lang, "font")
        assert b"TSS24" not in job and b"\x1c&" not in job
        assert b"BITMAP 0,0," in job or b"\x1dv0" in job


def test_zpl_text_with_a_caret_becomes_a_bitmap_and_a_qr_with_one_is_refused() -> None:
    lay = Layout(800, 560, 203, 100, 70, (Text(0, 0, "A^B", 24),))
    assert b"^FDA^B" not in printer.encode(lay, "zpl") and b"^GFA," in printer.encode(lay, "zpl")
    with pytest.raises(PrinterError, match="ZPL field data cannot hold"):
        printer.encode(Layout(800, 560, 203, 100, 70, (Qr(0, 0, "A~B", 6, 21),)), "zpl")


def _tspl_bitmaps(job: bytes) -> list[bytes]:
    out, pos = [], 0
    while (m := re.compile(rb"BITMAP \d+,\d+,(\d+),(\d+),0,").search(job, pos)) is not None:
        n = int(m[1]) * int(m[2])
        out.append(job[m.end():m.end() + n])
        assert job[m.end() + n:m.end() + n + 2] == b"\r\n"
        pos = m.end() + n + 2
    return out


def _ones(data: bytes) -> float:
    return sum(bin(b).count("1") for b in data) / (8 * len(data))


def test_bitmap_polarity_of_a_real_label_matches_the_spec() -> None:
    lay = labels.layout(LABEL)
    tspl = b"".join(_tspl_bitmaps(printer.encode(lay, "tspl", "bitmap")))
    zpl = bytes.fromhex("".join(m.decode() for m in re.findall(rb"\^GFA,\d+,\d+,\d+,([0-9A-F]+)\^FS",
                                                                printer.encode(lay, "zpl", "bitmap"))))
    assert _ones(tspl) > 0.6  # labels are mostly white: TSPL 1 = white
    assert _ones(zpl) < 0.4  # ZPL 1 = black
    assert abs(_ones(tspl) + _ones(zpl) - 1) < 1e-9  # the same dots, inverted


def test_gfa_byte_counts_are_right() -> None:
    job = printer.encode(labels.layout(LABEL), "zpl", "bitmap")
    fields = re.findall(rb"\^GFA,(\d+),(\d+),(\d+),([0-9A-F]*)\^FS", job)
    assert len(fields) >= 5
    for total, again, row, data in fields:
        assert int(total) == int(again) == len(data) // 2 and int(total) % int(row) == 0


def test_escpos_raster_wider_than_the_paper_is_refused() -> None:
    wide = Layout(800, 560, 203, 100, 70, (Bitmap(0, 0, Bits(600, 1, bytes(75))),))
    with pytest.raises(PrinterError, match="超过小票纸宽 576 点"):
        printer.encode(wide, "escpos")


def test_unknown_language_and_cjk_mode_are_clear_errors() -> None:
    with pytest.raises(PrinterError, match=r"未知的打印机语言 'epl'（可选 tspl, zpl, escpos） "
                                          r"\(unknown printer language 'epl': one of tspl, zpl, escpos\)"):
        printer.encode(LAYOUT, "epl")
    with pytest.raises(PrinterError, match="cjk: font or bitmap"):
        printer.encode(LAYOUT, "tspl", "outline")


# --- status parsing (pure) ----------------------------------------------------------------------


@pytest.mark.parametrize(("enc", "reply", "problem"), [
    (Tspl, b"\x00", None), (Tspl, b"\x20", None), (Tspl, b"\x04", "打印机缺纸 (paper out)"),
    (Tspl, b"\x05", "打印头打开 (head open)，打印机缺纸 (paper out)"),
    (Zpl, ZPL_READY, None), (Zpl, PAPER_OUT["zpl"], "打印机缺纸 (paper out)"),
    (Zpl, ZPL_READY.replace(b"000,0,0,0,0,2", b"000,0,1,0,0,2"), "打印头打开 (head open)"),
    (EscPos, b"\x12\x16", None), (EscPos, b"\x72\x1e", "打印机缺纸 (paper out)"),
    (EscPos, b"\x12\x1e", "打印机离线 (offline: cover open or error)"), (EscPos, b"\x12", None),
])
def test_status_replies(enc: type[printer.Encoder], reply: bytes, problem: str | None) -> None:
    words = "，".join(str(msg(key)) for key in enc.status_problems(reply))  # the keys, in words
    assert (words or None) == problem


@pytest.mark.parametrize(("enc", "partial"), [(Tspl, b""), (Zpl, ZPL_READY[:40]), (EscPos, b"")])
def test_a_partial_status_reply_cannot_be_judged(enc: type[printer.Encoder], partial: bytes) -> None:
    assert not enc.status_complete(partial)
    with pytest.raises(ValueError, match=r"status|line"):
        enc.status_problems(partial)


# --- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "target"), [
    ("tcp://10.0.0.5", printer.Target("tcp://10.0.0.5", "tcp", host="10.0.0.5", port=9100)),
    ("tcp://printer:9101/", printer.Target("tcp://printer:9101/", "tcp", host="printer", port=9101)),
    ("usblp:///dev/usb/lp0", printer.Target("usblp:///dev/usb/lp0", "usblp", path="/dev/usb/lp0")),
    ("serial:///dev/pts/7?baud=115200", printer.Target("serial:///dev/pts/7?baud=115200", "serial",
                                                       path="/dev/pts/7", baud=115200)),
])
def test_printer_urls(url: str, target: printer.Target) -> None:
    assert printer.parse_url(url) == target


@pytest.mark.parametrize(("url", "message"), [
    ("http://x", "scheme must be one of tcp, usblp, serial"),
    ("tcp://", "expected tcp://host:9100"),
    ("tcp://h:port", "bad port"),
    ("usblp://dev/usb/lp0", "three slashes"),
    ("serial:///dev/ttyUSB0?baud=fast", "baud must be a positive integer"),
    ("serial:///dev/ttyUSB0?parity=E", "含未知参数 parity"),
])
def test_bad_printer_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(PrinterError, match=re.escape(message)):
        printer.parse_url(url)


def test_printer_settings_are_checked_up_front() -> None:
    with pytest.raises(ValidationError, match=r"dpi\n  Input should be 203 or 300"):
        at("tcp://h", dpi=600)
    with pytest.raises(ValidationError, match=r"language\n  Input should be 'tspl', 'zpl' or 'escpos'"):
        at("tcp://h", "pcl")
    with pytest.raises(PrinterError, match=r"未配置打印机 \(printer.url is not set\)"):
        Printer(PrinterSettings())
    with pytest.raises(PrinterError, match=r"份数 0 超出范围"):
        at("tcp://h").job(LABEL, copies=0)
    assert at("tcp://h", "zpl").cjk == "bitmap" and at("tcp://h", "escpos").cjk == "font"


# --- transports ---------------------------------------------------------------------------------


class FakeTcpPrinter:
    """One TCP connection: answers the status query with ``answer`` (None: never) and keeps every byte."""

    def __init__(self, query: bytes, answer: bytes | None) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.query, self.answer = query, answer
        self.received = bytearray()
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        conn, _ = self.server.accept()
        answered = False
        with conn:
            while chunk := conn.recv(65536):
                self.received += chunk
                if self.answer is not None and not answered and self.query in self.received:
                    conn.sendall(self.answer)
                    answered = True
        self.server.close()
        self.done.set()


@pytest.mark.parametrize("lang", ["tspl", "zpl", "escpos"])
def test_tcp_status_answered_then_the_job_arrives_whole(lang: str) -> None:
    fake = FakeTcpPrinter(printer.encoder_for(lang).status_query, READY[lang])
    result = at(fake.url, lang).print_label(LABEL, copies=2)
    assert fake.done.wait(5)
    job = at(fake.url, lang).job(LABEL)
    assert bytes(fake.received) == printer.encoder_for(lang).status_query + job + job
    assert (result.language, result.copies, result.bytes) == (lang, 2, 2 * len(job))
    assert str(result).startswith(f"已发送 2 张标签到 {fake.url}")


@pytest.mark.parametrize("lang", ["tspl", "zpl", "escpos"])
def test_tcp_paper_out_is_reported_and_nothing_is_sent(lang: str) -> None:
    query = printer.encoder_for(lang).status_query
    fake = FakeTcpPrinter(query, PAPER_OUT[lang])
    url = re.escape(fake.url)
    with pytest.raises(PrinterError, match=f"^打印机缺纸 — 打印机 {url} \\(paper out — printer {url}\\)$"):
        at(fake.url, lang).print_label(LABEL)
    assert fake.done.wait(5)
    assert bytes(fake.received) == query


def test_tcp_printer_that_does_not_answer_times_out() -> None:
    fake = FakeTcpPrinter(Tspl.status_query, None)
    t0 = time.monotonic()
    with pytest.raises(PrinterError, match=r"^打印机无响应 tcp://.* within 0.3 s; .* status = false\)$"):
        at(fake.url, timeout_s=0.3).print_label(LABEL)
    assert 0.3 <= time.monotonic() - t0 < 3
    assert fake.done.wait(5) and bytes(fake.received) == Tspl.status_query


def test_status_can_be_skipped() -> None:
    fake = FakeTcpPrinter(Tspl.status_query, None)
    at(fake.url, status=False).print_label(LABEL)
    assert fake.done.wait(5) and bytes(fake.received) == at(fake.url).job(LABEL)


def test_connection_refused_is_one_clear_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    with pytest.raises(PrinterError, match=rf"^无法连接打印机 {url}：连接被拒绝 \(cannot connect to printer {url}: "
                                           rf"connection refused\)$"):
        at(url).print_label(LABEL)


class FakePtyPrinter:
    """The printer end of a raw pty: answers the status query, keeps every byte."""

    def __init__(self, query: bytes, answer: bytes) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no line discipline: bytes pass as they are (a usblp fd has none)
        self.path = os.ttyname(self.slave)
        self.query, self.answer = query, answer
        self.received = bytearray()
        self.changed = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        answered = False
        while not self.stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)  # s: how soon stop is seen
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            with self.changed:
                self.received += chunk
                self.changed.notify_all()
            if not answered and self.query in self.received:
                os.write(self.master, self.answer)
                answered = True

    def wait_for(self, n: int) -> bytes:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.received) >= n, 5), f"{len(self.received)} of {n} bytes"
            return bytes(self.received)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def pty_printer(request: pytest.FixtureRequest) -> Iterator[FakePtyPrinter]:
    lang: str = request.param
    fake = FakePtyPrinter(printer.encoder_for(lang).status_query, READY[lang])
    yield fake
    fake.close()


@pytest.mark.parametrize(("pty_printer", "scheme"), [("escpos", "serial"), ("tspl", "usblp")],
                         indirect=["pty_printer"])
def test_serial_and_usblp_transports_on_a_pty(pty_printer: FakePtyPrinter, scheme: str) -> None:
    lang = "escpos" if scheme == "serial" else "tspl"
    device = at(f"{scheme}://{pty_printer.path}" + ("?baud=115200" if scheme == "serial" else ""), lang)
    device.print_label(LABEL)
    job = device.job(LABEL)
    query = printer.encoder_for(lang).status_query
    assert pty_printer.wait_for(len(query) + len(job)) == query + job


def test_missing_usblp_device_names_the_url() -> None:
    with pytest.raises(PrinterError, match=r"^无法连接打印机 usblp:///dev/usb/lp97：设备不存在.* \(cannot connect to "
                                          r"printer usblp:///dev/usb/lp97: no such device"):
        at("usblp:///dev/usb/lp97").print_label(LABEL)


def test_missing_serial_port_names_the_url() -> None:
    with pytest.raises(PrinterError, match=r"^无法连接打印机 serial:///dev/ttyNOPE0："):
        at("serial:///dev/ttyNOPE0").print_label(LABEL)


# --- configuration ------------------------------------------------------------------------------


def test_printer_config_is_checked_with_the_dotted_key(tmp_path: Path) -> None:
    from edge.config import EdgeConfig
    from wastecart import config

    base = {"org": "H1", "cart": "C1", "data": str(tmp_path), "roster.version": "t1",
            "roster.org_name": "杭州市第一人民医院"}
    for key, value, message in (
        ("printer.url", "lpt://1", r"printer\.url: .*scheme must be one of tcp, usblp, serial"),
        ("printer.language", "epl", r"printer\.language: "),
        ("printer.dpi", 600, r"printer\.dpi: "),
        ("printer.cjk", "outline", r"printer\.cjk: "),
        ("printer.industrial_mm", [80, 80], r"printer\.industrial_mm: .*HJ 1276 labels are at least 100×100 mm"),
        ("printer.colour", "red", r"printer\.colour: Extra inputs are not permitted"),
    ):
        with pytest.raises(config.ConfigError, match=message):
            config.load(EdgeConfig, None, {**base, key: value})
    cfg = config.load(EdgeConfig, None, {**base, "printer.url": "tcp://10.0.0.9", "printer.language": "zpl",
                                         "printer.medical_mm": [80, 60]})
    device = Printer(cfg.printer)
    assert (device.url, device.language, device.cjk, device.dpi, device.status) == (
        "tcp://10.0.0.9", "zpl", "bitmap", 203, True)
    assert b"^PW640^LL480" in device.job(LABEL)
    assert config.load(EdgeConfig, None, base).printer.url is None
