"""Yaohua XK3190 parsers (reference §4): examples, XOR, 7E1, "=" formats, A12, robustness."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.devices.scales import PROTOCOLS, Reading
from edge.devices.scales.yaohua import (
    YaohuaA12Parser,
    YaohuaEqParser,
    YaohuaTf0Parser,
    YaohuaTf1Parser,
    yaohua_command,
    yaohua_xor,
)
from edge.errors import FrameError
from sim_devices.scales.base import ScaleState
from sim_devices.scales.yaohua import Tf1Sim, a12_frame, eq_frame, tf0_frame

# §4.1, checked by hand: XOR of bytes 2..9 is 0x1B, 0x19, 0x1B as stated; unit assumed kg.
TF0_EXAMPLES = [
    (b"\x02+00000001B\x03", 0),
    (b"\x02+001560019\x03", 1_560_000),
    (b"\x02+00200021B\x03", 20_000),
]
TF0 = TF0_EXAMPLES[1][0]
TF1_REPLY = b"\x02AB+00156001A\x03"  # §4.2 constructed example: XOR of "AB+0015600" is 0x1A
A12 = b"WG004.139kg3D\r\n"  # §4.4 manual example: XOR of bytes 1..11 is 0x3D


def even_parity(data: bytes) -> bytes:
    """A 7E1 device read by an 8N1 port: bit 7 carries even parity."""
    return bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in data)


def xor_ok(frame: bytes, lo: int, hi: int) -> bool:
    """Independent of the parser: XOR of frame[lo:hi] (7-bit) equals the two hex chars after it."""
    x = 0
    for b in frame[lo:hi]:
        x ^= b & 0x7F
    return bytes(b & 0x7F for b in frame[hi : hi + 2]) == b"%02X" % x


# ---- tF=0 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "grams"), TF0_EXAMPLES)
def test_tf0_reference_examples(data: bytes, grams: int) -> None:
    assert xor_ok(data, 1, 9)
    assert yaohua_xor(data[1:9]) == data[9:11]
    [r] = YaohuaTf0Parser().feed(data)
    assert (r.weight_g, r.unit, r.stable, r.net, r.error, r.raw, r.protocol) == (
        grams, "kg", None, None, None, data, "yaohua-tf0")


def test_tf0_negative_and_sim_frames_agree() -> None:
    for grams in (-1000, 0, 12345, 999_999, 5_000_000):
        [r] = YaohuaTf0Parser().feed(tf0_frame(grams))
        assert r.weight_g == grams


def test_tf0_bad_checksum_counted_never_a_weight() -> None:
    p = YaohuaTf0Parser()
    bad = TF0[:3] + b"9" + TF0[4:]  # one digit changed, XOR not updated
    [r] = p.feed(bad)
    assert (r.weight_g, r.error) == (None, "checksum mismatch")
    assert (p.frames, p.checksum_errors) == (0, 1)
    with pytest.raises(FrameError):
        r.grams()


def test_tf0_malformed_field_with_good_checksum_is_a_format_error() -> None:
    body = b"+00 5607"  # a blank digit, dp 7
    p = YaohuaTf0Parser()
    [r] = p.feed(b"\x02" + body + yaohua_xor(body) + b"\x03")
    assert r.weight_g is None and r.error is not None and "malformed" in r.error
    assert (p.frames, p.format_errors) == (0, 1)


def test_tf0_7e1_read_as_8n1() -> None:
    data = b"".join(d for d, _ in TF0_EXAMPLES)
    wire = even_parity(data)
    assert wire != data
    readings = YaohuaTf0Parser().feed(wire)
    assert [r.weight_g for r in readings] == [g for _, g in TF0_EXAMPLES]
    assert [r.raw for r in readings] == [even_parity(d) for d, _ in TF0_EXAMPLES]


def test_tf0_mid_frame_start_and_garbage() -> None:
    p = YaohuaTf0Parser()
    head, noise = TF0[5:], b"\x00\xff\x02junk\x03"
    assert [r.weight_g for r in p.feed(head + TF0 + noise + TF0)] == [1_560_000] * 2
    assert p.garbage_bytes == len(head) + len(noise)
    assert p.checksum_errors == 0


# ---- tF=1 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "literal"), [("A", b"\x02AA00\x03"), ("B", b"\x02AB03\x03"), ("C", b"\x02AC02\x03"), ("D", b"\x02AD05\x03")]
)
def test_tf1_commands_match_the_manual_literals(cmd: str, literal: bytes) -> None:
    assert yaohua_command("A", cmd) == literal


def test_tf1_spec_polls_read_gross_and_never_zero_or_tare() -> None:
    spec = PROTOCOLS["yaohua-tf1"]
    assert spec.poll == b"\x02AB03\x03"
    assert (spec.zero, spec.tare, spec.start, spec.stable_flag) == (None, None, None, False)


def test_tf1_reference_reply() -> None:
    assert xor_ok(TF1_REPLY, 1, 11)
    [r] = YaohuaTf1Parser().feed(TF1_REPLY)
    assert (r.weight_g, r.net, r.stable, r.error) == (1_560_000, False, None, None)


def test_tf1_echo_handshake_other_address_and_eot() -> None:
    p = YaohuaTf1Parser()
    other = b"\x02BB+0015600" + yaohua_xor(b"BB+0015600") + b"\x03"
    eot = b"\x02A\x04" + yaohua_xor(b"A\x04") + b"\x03"
    readings = p.feed(b"\x02AB03\x03" + b"\x02AA00\x03" + other + eot + TF1_REPLY)
    assert [r.weight_g for r in readings] == [None, 1_560_000]
    assert readings[0].error is not None and "EOT" in readings[0].error
    assert p.ignored == 3


def test_tf1_sim_answers_and_parser_decodes_gross_tare_net() -> None:
    sim, s = Tf1Sim(), ScaleState(grams=2000, motion=False, net=True, tare_g=500)
    p = YaohuaTf1Parser()
    for cmd, field in (("B", "weight_g"), ("C", "tare_g"), ("D", "weight_g")):
        reply = sim.answer(yaohua_command("A", cmd), s)
        assert reply is not None
        [r] = p.feed(reply)
        assert getattr(r, field) == {"B": 2500, "C": 500, "D": 2000}[cmd]
    assert sim.answer(b"\x02AB04\x03", s) is None  # wrong XOR: no answer
    assert sim.answer(b"\x02BB00\x03", s) is None  # another address
    assert sim.answer(b"AB03", s) is not None  # STX/ETX stripped by a line splitter still works


def test_tf1_bad_checksum_and_cut_frame() -> None:
    p = YaohuaTf1Parser()
    bad = TF1_REPLY.replace(b"156", b"157")
    readings = p.feed(TF1_REPLY[:6] + bad + TF1_REPLY)
    assert [(r.weight_g, r.error) for r in readings] == [(None, "checksum mismatch"), (1_560_000, None)]
    assert p.garbage_bytes == 6 and p.checksum_errors == 1


def test_tf1_7e1_read_as_8n1() -> None:
    assert [r.weight_g for r in YaohuaTf1Parser().feed(even_parity(TF1_REPLY))] == [1_560_000]


# ---- "=" formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reversed_digits", "frame", "grams"),
    [
        (True, b"=000.3000", 3000),  # §4.3 table, R1
        (True, b"=00.1000-", -1000),
        (False, b"=0003.000", 3000),  # §4.3 table, F
        (False, b"=-0001.00", -1000),
    ],
)
def test_eq_reference_examples(reversed_digits: bool, frame: bytes, grams: int) -> None:
    p = YaohuaEqParser(reversed_digits)
    readings = p.feed(frame * 4 + b"=")
    assert {r.weight_g for r in readings} == {grams}
    assert all(r.stable is None and r.error is None for r in readings)


def test_eq_r0_eight_byte_frames_example() -> None:
    """§4.3: ``=00.0120`` (R0) reversed is ``0210.00`` → 210.00 (kg assumed)."""
    readings = YaohuaEqParser(True).feed(b"=00.0120" * 4 + b"=")
    assert [r.weight_g for r in readings] == [210_000] * 2  # the first two decide R0 vs R1


def test_eq_same_bytes_differ_by_configuration() -> None:
    """``=0003.000`` is 3.000 forward and 0.3 reversed: why the two ids are configured, not guessed."""
    data = b"=0003.000" * 4 + b"="
    assert {r.weight_g for r in YaohuaEqParser(False).feed(data)} == {3000}
    assert {r.weight_g for r in YaohuaEqParser(True).feed(data)} == {300}


@pytest.mark.parametrize("reversed_digits", [True, False])
def test_eq_sim_round_trip(reversed_digits: bool) -> None:
    for grams in (-1000, 0, 12345, 999_999):
        data = eq_frame(grams, reversed_digits=reversed_digits) * 4 + b"="
        assert {r.weight_g for r in YaohuaEqParser(reversed_digits).feed(data)} == {grams}


@pytest.mark.parametrize(
    "bad",
    [b"=0003.0x0", b"=00.3.000", b"=1003.000", b"=0003.00", b"=00003.000", b"=0.......", b"=000000 0"],
)
def test_eq_detectable_corruption_is_a_format_error(bad: bytes) -> None:
    good = b"=0003.000"
    p = YaohuaEqParser(False)
    readings = p.feed(good * 3 + bad + good + b"=")
    assert {r.weight_g for r in readings if r.weight_g is not None} == {3000}
    assert p.format_errors + p.garbage_bytes >= 1  # too long for a frame: its "=" is garbage


def test_eq_r_dropped_byte_after_lock_is_an_error_not_an_r0_frame() -> None:
    good = eq_frame(12345, reversed_digits=True)
    p = YaohuaEqParser(True)
    readings = p.feed(good * 3 + good[:-1] + good * 2 + b"=")
    assert [r.weight_g for r in readings] == [12345, None, 12345, 12345]


def test_eq_digit_flip_is_not_detectable() -> None:
    """Honest limit: no checksum, so ``0``→``1`` in a digit is a plausible wrong weight (§4.3)."""
    readings = YaohuaEqParser(False).feed(b"=0003.000=0003.001=")
    assert [r.weight_g for r in readings] == [3000, 3001]


# ---- A12 --------------------------------------------------------------------------------------------


def test_a12_reference_examples() -> None:
    assert xor_ok(A12, 0, 11)
    assert xor_ok(b"         OL23\r\n", 0, 11) and xor_ok(b"         LO23\r\n", 0, 11)
    p = YaohuaA12Parser()
    r, ol, lo = p.feed(A12 + b"         OL23\r\n" + b"         LO23\r\n")
    assert (r.weight_g, r.unit, r.net, r.stable, r.error) == (4139, "kg", False, None, None)
    assert (ol.weight_g, ol.overload, ol.underload) == (None, True, False)
    assert (lo.weight_g, lo.overload, lo.underload) == (None, False, True)
    with pytest.raises(FrameError, match="overload"):
        ol.grams()


def test_a12_lower_case_unchecked_variants() -> None:
    lines = b"ww000.000lb\nwn-0000.1kg\nwt000.000kg\nwn0003.17kg\n"
    lb, neg, tare, net = YaohuaA12Parser().feed(lines)
    assert lb.weight_g is None and lb.error is not None and "lb refused" in lb.error
    assert (neg.weight_g, neg.net) == (-100, True)
    assert (tare.weight_g, tare.tare_g) == (None, 0)
    assert (net.weight_g, net.net) == (3170, True)


def test_a12_bad_or_missing_checksum() -> None:
    p = YaohuaA12Parser()
    bad, missing = p.feed(b"WG004.138kg3D\r\nWG004.139kg\r\n")
    assert (bad.weight_g, bad.error) == (None, "checksum mismatch")
    assert missing.weight_g is None and missing.error is not None
    assert (p.checksum_errors, p.format_errors, p.frames) == (1, 1, 0)


def test_a12_7e1_and_sim_round_trip() -> None:
    data = b"".join(a12_frame(g, net=g % 2 == 1) for g in (-20, 0, 12345, 999_999))
    readings = YaohuaA12Parser().feed(even_parity(data))
    assert [(r.weight_g, r.net) for r in readings] == [(-20, False), (0, False), (12345, True), (999_999, True)]
    assert YaohuaA12Parser().feed(a12_frame(1_000_000))[0].overload


def test_a12_no_space_before_point_means_integer() -> None:
    body = b"WG001234 kg"
    [r] = YaohuaA12Parser().feed(body + yaohua_xor(body) + b"\r\n")
    assert r.weight_g == 1_234_000


# ---- all five: registry, split invariance, random bytes ---------------------------------------------

STREAMS: dict[str, bytes] = {
    "yaohua-tf0": b"".join(d for d, _ in TF0_EXAMPLES) * 2,
    "yaohua-tf1": (TF1_REPLY + b"\x02AB03\x03") * 3,
    "yaohua-eq-r": b"=000.3000=00.1000-" * 4 + b"=",
    "yaohua-eq-f": b"=0003.000=-0001.00" * 4 + b"=",
    "yaohua-a12": (A12 + b"         OL23\r\nwn-0000.1kg\n") * 2,
}


def test_registry_ids_line_settings_and_no_stable_flag() -> None:
    for pid in STREAMS:
        spec = PROTOCOLS[pid]
        assert (spec.bytesize, spec.parity, spec.stable_flag, spec.zero, spec.tare) == (8, "N", False, None, None)
        assert spec.parser().feed(STREAMS[pid])[-1].protocol == pid
    assert all(PROTOCOLS[p].poll is None for p in STREAMS if p != "yaohua-tf1")


@given(st.sampled_from(sorted(STREAMS)), st.lists(st.integers(min_value=0, max_value=200), max_size=12))
def test_split_at_any_positions_gives_the_same_readings(pid: str, cuts: list[int]) -> None:
    stream = STREAMS[pid]
    p = PROTOCOLS[pid].parser()
    bounds = [0, *sorted(min(c, len(stream)) for c in cuts), len(stream)]
    readings: list[Reading] = [r for a, b in pairwise(bounds) for r in p.feed(stream[a:b])]
    assert readings == PROTOCOLS[pid].parser().feed(stream)


@pytest.mark.parametrize("pid", sorted(STREAMS))
def test_split_at_every_single_position(pid: str) -> None:
    stream = STREAMS[pid]
    whole = PROTOCOLS[pid].parser().feed(stream)
    for cut in range(len(stream) + 1):
        p = PROTOCOLS[pid].parser()
        assert p.feed(stream[:cut]) + p.feed(stream[cut:]) == whole


@given(st.binary(max_size=300), st.sampled_from(sorted(STREAMS)))
def test_any_bytes_never_raise_and_weights_only_from_verified_frames(data: bytes, pid: str) -> None:
    for r in PROTOCOLS[pid].parser().feed(data):
        if r.weight_g is None:
            continue
        raw = bytes(b & 0x7F for b in r.raw)
        if pid == "yaohua-tf0":
            assert len(raw) == 12 and xor_ok(raw, 1, 9)
        elif pid == "yaohua-tf1":
            assert len(raw) == 14 and xor_ok(raw, 1, 11)
        elif pid == "yaohua-a12" and raw[:1] == b"W":
            assert xor_ok(raw, 0, 11)


@given(
    st.sampled_from(["yaohua-tf0", "yaohua-tf1", "yaohua-a12"]),
    st.integers(min_value=0, max_value=40),
    st.integers(min_value=1, max_value=127),
)
def test_one_corrupted_byte_never_gives_a_wrong_weight(pid: str, pos: int, flip: int) -> None:
    good = {"yaohua-tf0": TF0, "yaohua-tf1": TF1_REPLY, "yaohua-a12": A12}[pid]
    truth = {r.weight_g for r in PROTOCOLS[pid].parser().feed(good)}
    bad = bytearray(good)
    bad[pos % len(good)] ^= flip
    readings = PROTOCOLS[pid].parser().feed(good[3:] + good + bytes(bad) + good + good)
    assert {r.weight_g for r in readings if r.weight_g is not None} == truth
    assert sum(r.weight_g is not None for r in readings) >= 2
