"""The simulated printer's parsers (TSPL, ZPL, ESC/POS), written from the language subset
(/tmp/spec/printer.md): hand-written jobs, polarity, GB18030/UTF-8 text, status queries,
malformed commands → warnings, and any split of the bytes giving the same events."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_devices.printer import Bitmap, Box, Label, PrinterStream, Qr, StatusQuery, Text, status_reply
from sim_devices.printer.escpos import EscPosParser
from sim_devices.printer.model import Event
from sim_devices.printer.render import render
from sim_devices.printer.stream import classify
from sim_devices.printer.tspl import TsplParser, split_args
from sim_devices.printer.zpl import ZplParser

PAYLOAD = "WC1.B.H1.B1.I.7Q"
CJK = "医疗废物 感染性"

TSPL_JOB = (b"SIZE 60 mm,40 mm\r\nGAP 2 mm,0 mm\r\nDIRECTION 0\r\nREFERENCE 0,0\r\nDENSITY 8\r\nSPEED 4\r\n"
            b"CODEPAGE 936\r\nCLS\r\n"
            b'QRCODE 24,24,Q,6,A,0,"WC1.B.H1.B1.I.7Q"\r\n'
            b'TEXT 240,24,"3",0,1,1,"BAG B1"\r\n'
            b'TEXT 240,60,"TSS24.BF2",0,2,2,"' + CJK.encode("gb18030") + b'"\r\n'
            b"BAR 240,120,200,4\r\nBOX 230,140,460,300,2\r\n"
            b"BITMAP 300,200,2,3,0," + b"\x00\xff\x0f\xf0\xff\x00" + b"\r\n"
            b"PRINT 1,1\r\n")

ZPL_JOB = ("^XA^CI28^PW600^LL400^LH0,0^FX a comment\r\n"
           "^FO40,40^BQN,2,6^FDQA,WC1.B.H1.B1.I.7Q^FS\r\n"
           f"^FO300,40^A@N,32,32,E:SIMSUN.TTF^FD{CJK}^FS\r\n"
           "^FO300,100^A0N,30,20^FDBag B1^FS\r\n"
           "^FO300,200^GB200,60,3^FS^FO300,280^GB200,10,10^FS\r\n"
           "^FO300,320^GFA,6,6,2,FF00F00F00FF^FS\r\n"
           "^XZ\r\n").encode()


def qr_block(fn: int, args: bytes) -> bytes:
    body = b"1" + bytes([fn]) + args
    return b"\x1d(k" + len(body).to_bytes(2, "little") + body


ESCPOS_JOB = (b"\x1b@\x1ba\x01\x1bE\x01\x1d!\x11HELLO\n\x1d!\x00\x1bE\x00"
              b"\x1c&" + CJK.encode("gb18030") + b"\x1c.\n"
              + qr_block(0x41, b"2\x00") + qr_block(0x43, b"\x06") + qr_block(0x45, b"2")
              + qr_block(0x50, b"0" + PAYLOAD.encode()) + qr_block(0x51, b"0")
              + b"\x1ba\x00left\n"
              + b"\x1dv0\x00\x02\x00\x02\x00" + b"\xff\x00\x0f\xf0"
              + b"\x1bd\x03\x1dVA\x10")


def parse(parser: TsplParser | ZplParser | EscPosParser, data: bytes) -> list[Event]:
    """All events of ``data`` then the end of the stream; a parser stops after each job (so a
    stream can re-detect the language) and ``feed(b"")`` goes on from where it stopped."""
    events: list[Event] = []
    chunk = parser.feed(data)
    while chunk:
        events += chunk
        chunk = parser.feed(b"") if any(isinstance(e, Label) for e in chunk) else []
    return events + parser.close()


def one_label(events: list[Event]) -> Label:
    labels = [e for e in events if isinstance(e, Label)]
    assert len(labels) == 1, events
    return labels[0]


# ---------------------------------------------------------------------------------------- TSPL


def test_tspl_label() -> None:
    label = one_label(parse(TsplParser(), TSPL_JOB))
    assert (label.language, label.width, label.height) == ("tspl", 480, 320)  # 60×40 mm at 8 dots/mm
    assert label.qr == [PAYLOAD] and label.texts == ["BAG B1", CJK] and label.bitmaps == 1
    assert label.warnings == [] and label.nbytes == len(TSPL_JOB)
    qr, text, cjk, bar, box, bitmap = label.elements
    assert qr == Qr(24, 24, PAYLOAD.encode(), 6, "Q")
    assert text == Text(240, 24, "BAG B1", 24, 1.0) and cjk == Text(240, 60, CJK, 48, 1.0)
    assert bar == Box(240, 120, 200, 4) and box == Box(230, 140, 230, 160, 2)
    assert isinstance(bitmap, Bitmap) and (bitmap.x, bitmap.y, bitmap.width_bytes, bitmap.height) == (300, 200, 2, 3)


def test_tspl_bitmap_zero_bit_is_black() -> None:
    bitmap = one_label(parse(TsplParser(), TSPL_JOB)).elements[-1]
    assert isinstance(bitmap, Bitmap)
    assert bitmap.data == b"\xff\x00\xf0\x0f\x00\xff" and bitmap.opaque  # normalised: 1 = black


def test_tspl_quote_escape_inches_and_bare_lf() -> None:
    job = b'SIZE 3,2\nCLS\nTEXT 10,10,"2",0,1,1,"say \\["]hi\\["], ok"\nPRINT 1\n'
    label = one_label(parse(TsplParser(), job))
    assert (label.width, label.height) == (609, 406)  # inches at 203 dpi
    assert label.texts == ['say "hi", ok'] and label.warnings == []
    assert split_args(b'1, 2 ,"a,b"') == [b"1", b"2", b"a,b"]


RARE = "𠀀鿰€"  # GB18030 four-byte sequences (bytes 0x30-0x39 inside) and a two-byte one


def test_gb18030_four_byte_characters() -> None:
    encoded = RARE.encode("gb18030")
    assert len(encoded) == 10
    tspl = one_label(parse(TsplParser(), b'CLS\r\nTEXT 1,1,"TSS24.BF2",0,1,1,"' + encoded + b'"\r\nPRINT 1,1\r\n'))
    escpos = one_label(parse(EscPosParser(), b"\x1c&" + encoded + b"\n\x1dV\x00"))
    zpl = one_label(parse(ZplParser(), f"^XA^CI28^FO1,1^A@N,24,24^FD{RARE}^FS^XZ".encode()))
    assert tspl.texts == escpos.texts == zpl.texts == [RARE]


def test_tspl_status_query_is_answered_before_the_label_ends() -> None:
    p = TsplParser()
    assert p.feed(b"SIZE 60 mm,40 mm\r\nCLS\r\nTEXT 1,1,") == []
    assert p.feed(b"\x1b!") == []
    assert p.feed(b"?") == [StatusQuery("tspl")]  # in the middle of a line, at once
    label = one_label(p.feed(b'"3",0,1,1,"X"\r\nPRINT 1,1\r\n'))
    assert label.texts == ["X"] and label.warnings == []


@pytest.mark.parametrize(("line", "fragment"), [
    (b"FOO 1,2", "FOO: unknown TSPL command"),
    (b'QRCODE 10,10,X,6,A,0,"abc"', "QRCODE: malformed"),
    (b'QRCODE 10,10,Q,60,A,0,"abc"', "QRCODE: malformed"),
    (b'TEXT 10,10,"3",0,1,1,"unclosed', "TEXT: malformed"),
    (b'TEXT 10,10,"NOPE.TTF",0,1,1,"x"', "TEXT: malformed"),
    (b"BAR 1,2,three,4", "BAR: malformed"),
    (b"SIZE 60 mm", "SIZE: malformed"),
    (b"BITMAP 1,2,x,4,0,", "BITMAP: malformed header"),
])
def test_tspl_malformed_commands_are_warnings(line: bytes, fragment: str) -> None:
    job = b"SIZE 60 mm,40 mm\r\nCLS\r\n" + line + b'\r\nTEXT 1,1,"3",0,1,1,"after"\r\nPRINT 1,1\r\n'
    label = one_label(parse(TsplParser(), job))
    assert any(fragment in w for w in label.warnings), label.warnings
    assert label.texts == ["after"]  # the printer went on


def test_tspl_print_without_cls_and_without_size_warns() -> None:
    p = TsplParser()
    first = one_label(parse(p, b'TEXT 1,1,"3",0,1,1,"one"\r\nPRINT 1,1\r\n'))
    assert (first.width, first.height) == (0, 0) and "PRINT without SIZE" in first.warnings[0]
    second = one_label(parse(p, b'TEXT 1,40,"3",0,1,1,"two"\r\nPRINT 1,1\r\n'))
    assert second.texts == ["one", "two"]  # the image buffer lives until CLS, as on the printer
    assert any("without CLS" in w for w in second.warnings)


def test_tspl_unknown_escape_and_unfinished_label() -> None:
    p = TsplParser()
    assert p.feed(b"\x1b!R") == []
    assert p.close() == []  # no PRINT: nothing printed
    label = one_label(parse(p, b"CLS\r\nPRINT 1,1\r\n"))
    assert any("ESC '!R'" in w for w in label.warnings)


# ---------------------------------------------------------------------------------------- ZPL


def test_zpl_label() -> None:
    label = one_label(parse(ZplParser(), ZPL_JOB))
    assert (label.language, label.width, label.height) == ("zpl", 600, 400)
    assert label.qr == [PAYLOAD] and label.texts == [CJK, "Bag B1"] and label.bitmaps == 1
    assert label.warnings == [] and label.nbytes == len(ZPL_JOB.rstrip())
    qr, cjk, text, outline, filled, graphic = label.elements
    assert qr == Qr(40, 40, PAYLOAD.encode(), 6, "Q")
    assert cjk == Text(300, 40, CJK, 32, 1.0) and text == Text(300, 100, "Bag B1", 30, round(20 / 30, 3))
    assert outline == Box(300, 200, 200, 60, 3) and filled == Box(300, 280, 200, 10, None)
    assert graphic == Bitmap(300, 320, 2, 3, bytes.fromhex("FF00F00F00FF"))  # 1 = black, as sent


def test_zpl_defaults_latin1_and_unknown_commands() -> None:
    job = "^XA^FO10,10^A0N,20,20^FDcafé^FS^PQ2^XZ".encode("latin-1")
    label = one_label(parse(ZplParser(), job))
    assert (label.width, label.height) == (812, 812)
    assert label.texts == ["café"]
    assert any("without ^CI28" in w for w in label.warnings)
    assert any("^PQ: unknown ZPL command" in w for w in label.warnings)


@pytest.mark.parametrize(("command", "fragment"), [
    ("^FO10,10^GFA,8,8,2,FF00^FS", "^GF: malformed"),
    ("^FO10,10^GFA,4,4,2,:Z0F^FS", "^GF: malformed"),
    ("^FO10,10^BQN,2,6^FDXA,abc^FS", "^FS: malformed"),
    ("^FO10,10^BQN,2,6^FDQAabc^FS", "^FS: malformed"),
    ("^FO10,10^BQN,2,60^FDQA,abc^FS", "^BQ: malformed"),
    ("^PWabc", "^PW: malformed"),
    ("~JR", "~JR: ignored"),
    ("stray", "stray bytes"),
])
def test_zpl_malformed_commands_are_warnings(command: str, fragment: str) -> None:
    job = f"^XA{command}^FO1,1^A0N,20,20^FDafter^FS^XZ".encode()
    label = one_label(parse(ZplParser(), job))
    assert any(fragment in w for w in label.warnings), label.warnings
    assert label.texts == ["after"]


def test_zpl_status_query_needs_nothing_after_it() -> None:
    p = ZplParser()
    assert p.feed(b"^XA^FO10,10^A0N,20,20^FDx^FS~H") == []
    assert p.feed(b"S") == [StatusQuery("zpl")]
    assert one_label(p.feed(b"^XZ")).texts == ["x"]  # ^XZ ends the job without waiting for more


# ---------------------------------------------------------------------------------------- ESC/POS


def test_escpos_receipt_layout() -> None:
    label = one_label(parse(EscPosParser(), ESCPOS_JOB))
    assert (label.language, label.width) == ("escpos", 576)
    assert label.qr == [PAYLOAD] and label.texts == ["HELLO", CJK, "left"] and label.bitmaps == 1
    assert label.warnings == [] and label.nbytes == len(ESCPOS_JOB)
    hello, cjk, qr, left, raster = label.elements
    assert hello == Text((576 - 5 * 24) // 2, 0, "HELLO", 48, 1.0)  # GS ! 0x11: 24×48 cells, centred
    cjk_width = 7 * 24 + 12  # 7 Chinese glyphs and one ASCII space
    assert cjk == Text((576 - cjk_width) // 2, 54, CJK, 24, 1.0)
    assert isinstance(qr, Qr) and (qr.module, qr.ecc, qr.data) == (6, "Q", PAYLOAD.encode())
    side = (21 + 8) * 6  # version 1 at Q, with its quiet zone inside the paper
    assert (qr.x, qr.y) == ((576 - side) // 2 + 24, 84 + 24)
    assert left == Text(0, 84 + side, "left", 24, 1.0)
    assert raster == Bitmap(0, 84 + side + 30, 2, 2, b"\xff\x00\x0f\xf0")  # 1 = black, as sent
    assert label.height == 84 + side + 30 + 2 + 3 * 30  # ESC d 3: three line feeds


def test_escpos_status_queries_and_cut() -> None:
    p = EscPosParser()
    assert p.feed(b"\x10\x04") == []
    assert p.feed(b"\x04\x10\x04\x01") == [StatusQuery("escpos-4"), StatusQuery("escpos-1")]
    assert p.feed(b"\x1b@\x1dV\x00") == []  # a cut with nothing printed is not a job
    assert one_label(p.feed(b"hi\n\x1dV\x01more\n")).texts == ["hi"]
    assert p.rest() == b"more\n"


def test_escpos_close_ends_a_job_with_content() -> None:
    p = EscPosParser()
    assert p.feed(b"\x1b@no newline") == []
    assert one_label(p.close()).texts == ["no newline"]
    assert EscPosParser().close() == []


@pytest.mark.parametrize(("data", "fragment"), [
    (b"\x1b\x7e\x01", "ESC ~: unknown ESC/POS command"),
    (b"\x1d(k\x03\x000A\x00", "only cn=49"),
    (b"\x1d(k\x03\x001E\x07", "QR error correction: malformed"),
    (b"\x1d(k\x03\x001Q0", "no symbol stored"),
    (b"\xe4\xb8\xad\n", "outside Chinese mode"),
    (b"\x1bp\x00\x10\x10", "ESC p: not simulated"),
    (b"\x07", "control byte 0x07"),
])
def test_escpos_malformed_commands_are_warnings(data: bytes, fragment: str) -> None:
    label = one_label(parse(EscPosParser(), b"\x1b@" + data + b"after\n\x1dV\x00"))
    assert any(fragment in w for w in label.warnings), label.warnings
    assert label.texts[-1].endswith("after")


# ---------------------------------------------------------------------------------------- the stream


def test_language_detection_and_redetection_between_jobs() -> None:
    s = PrinterStream()
    events = s.feed(b"\r\n" + TSPL_JOB + ZPL_JOB + ESCPOS_JOB + b"\x1b!?" + TSPL_JOB) + s.close()
    assert [e.language if isinstance(e, Label) else e.kind for e in events] == [
        "tspl", "zpl", "escpos", "tspl", "tspl"]


def test_a_leading_tspl_status_query_does_not_make_an_escpos_stream() -> None:
    s = PrinterStream()
    assert s.feed(b"\x1b") == [] and s.feed(b"!") == []
    assert s.feed(b"?") == [StatusQuery("tspl")] and s.language is None
    assert one_label(s.feed(TSPL_JOB)).language == "tspl"


def test_receipts_that_start_with_text_stay_escpos() -> None:
    s = PrinterStream()
    events = s.feed(b"\x1b@one\n\x1dV\x00two\n\x1dV\x00SIZE 10 mm,10 mm\r\nCLS\r\nPRINT 1,1\r\n")
    assert [(e.language, e.texts) for e in events if isinstance(e, Label)] == [
        ("escpos", ["one"]), ("escpos", ["two"]), ("tspl", [])]
    assert classify(b"SIZ", "escpos") is None and classify(b"SIZ", "escpos", final=True) == "escpos"


@pytest.mark.parametrize(("kind", "ok", "paper_out"), [
    ("tspl", b"\x00", b"\x04"), ("escpos-4", b"\x12", b"\x72"), ("escpos-1", b"\x16", b"\x1e")])
def test_status_bytes(kind: str, ok: bytes, paper_out: bytes) -> None:
    assert (status_reply(kind, "ok"), status_reply(kind, "paper_out")) == (ok, paper_out)


def test_zpl_host_status_lines() -> None:
    ok = status_reply("zpl", "ok").split(b"\r\n")
    assert ok[:3] == [b"\x02030,0,0,0245,000,0,0,0,000,0,0,0\x03", b"\x02000,0,0,0,0,2,6,0,00000000,1,000\x03",
                      b"\x021234,0\x03"] and ok[3] == b""
    assert status_reply("zpl", "paper_out").split(b",")[1] == b"1"


JOBS = [TSPL_JOB, ZPL_JOB, ESCPOS_JOB,
        b"\x1b!?" + TSPL_JOB.replace(b"CLS\r\n", b"CLS\r\n\x1b!?") + b"~HS" + ZPL_JOB + b"\x10\x04\x04" + ESCPOS_JOB]


@settings(max_examples=60, deadline=None)
@given(job=st.sampled_from(JOBS), cuts=st.lists(st.integers(0, max(map(len, JOBS))), max_size=24))
def test_any_split_gives_the_same_events(job: bytes, cuts: list[int]) -> None:
    whole = PrinterStream()
    expected = whole.feed(job) + whole.close()
    split = PrinterStream()
    got: list[Event] = []
    points = sorted({c for c in cuts if c < len(job)} | {0, len(job)})
    for a, b in pairwise(points):
        got += split.feed(job[a:b])
    assert got + split.close() == expected
    assert sum(isinstance(e, Label) for e in expected) >= 1


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_never_raises(data: bytes) -> None:
    for prefix in (b"", b"^XA", b"\x1b@", b"SIZE 10 mm,10 mm\r\n"):
        s = PrinterStream()
        s.feed(prefix + data)
        s.close()


# ---------------------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("job", [
    b"SIZE 2 mm,1 mm\r\nCLS\r\nBITMAP 0,0,1,1,0,\x0f\r\nPRINT 1,1\r\n",  # TSPL: 0 bit = black
    b"^XA^PW16^LL8^FO0,0^GFA,1,1,1,F0^FS^XZ",  # ZPL: 1 bit = black
    b"\x1dv0\x00\x01\x00\x01\x00\xf0\x1dV\x00",  # ESC/POS: 1 bit = black
])
def test_rendered_bitmap_polarity(job: bytes) -> None:
    s = PrinterStream(width_dots=16)
    label = one_label(s.feed(job) + s.close())
    image, warnings = render(label, None)
    row = [image.getpixel((x, 0)) for x in range(8)]
    assert row == [0, 0, 0, 0, 255, 255, 255, 255] and warnings == []


def test_without_a_cjk_font_text_is_drawn_with_a_warning() -> None:
    label = one_label(parse(TsplParser(), TSPL_JOB))
    image, warnings = render(label, None)
    assert image.size == (480, 320) and any("no CJK TrueType font" in w for w in warnings)
