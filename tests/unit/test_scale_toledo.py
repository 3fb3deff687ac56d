"""Mettler Toledo continuous output parser (reference §3): examples, 7E1, units, robustness."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.devices.scales import PROTOCOLS, Reading
from edge.devices.scales.toledo import ToledoParser, toledo_checksum_ok
from edge.errors import FrameError

# Reference §3.8, checked by hand against §3.2-3.5: all three checksums verify and decode as stated.
REFERENCE_EXAMPLES = [
    (b"\x02;0  12345     0\rw", 1_234_500, True, False, 0),  # 1234.5 kg gross, stable
    (b"\x02,9   2500   150\ro", 25_000, False, True, 1_500),  # 25.00 kg net, motion, tare 1.50 kg
    (b"\x02;2     35     0\r,", -3_500, True, False, 0),  # -3.5 kg gross, stable
]
GOOD = REFERENCE_EXAMPLES[0][0]


def with_chk(body: bytes) -> bytes:
    """Append the §3.5 checksum; written from the reference, independent of the parser."""
    return body + bytes([-sum(b & 0x7F for b in body) & 0x7F])


def frame(swa: int, swb: int, swc: int, shown: bytes = b" 12345", tare: bytes = b"     0") -> bytes:
    return with_chk(bytes([0x02, swa, swb, swc]) + shown + tare + b"\r")


def parse(data: bytes, checksum: bool = True) -> list[Reading]:
    return ToledoParser(checksum=checksum).feed(data)


def even_parity(data: bytes) -> bytes:
    """What a 7E1 device looks like to an 8N1 port: bit 7 carries even parity."""
    return bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in data)


@pytest.mark.parametrize(("data", "grams", "stable", "net", "tare"), REFERENCE_EXAMPLES)
def test_reference_examples(data: bytes, grams: int, stable: bool, net: bool, tare: int) -> None:
    assert toledo_checksum_ok(data)
    [r] = parse(data)
    assert (r.weight_g, r.unit, r.stable, r.net, r.tare_g) == (grams, "kg", stable, net, tare)
    assert (r.overload, r.underload, r.error, r.raw, r.protocol) == (False, False, None, data, "toledo")


def test_checksum_byte_may_be_a_space() -> None:
    data = b"\x02+ ! 50000     0\r "  # §3.5: SWC unit code 001 = g, one decimal → 5000.0 g
    assert [r.weight_g for r in parse(data)] == [5000]


def test_without_checksum_17_bytes() -> None:
    p = ToledoParser(checksum=False)
    readings = p.feed(GOOD[:-1] * 3)
    assert [r.weight_g for r in readings] == [1_234_500] * 3
    assert (p.frames, p.garbage_bytes) == (3, 0)


def test_7e1_bytes_read_as_8n1() -> None:
    data = b"".join(d for d, *_ in REFERENCE_EXAMPLES)
    wire = even_parity(data)
    assert wire != data
    readings = parse(wire)
    assert [r.weight_g for r in readings] == [g for _, g, *_ in REFERENCE_EXAMPLES]
    assert [r.raw for r in readings] == [even_parity(d) for d, *_ in REFERENCE_EXAMPLES]  # raw kept as received


@pytest.mark.parametrize(
    ("swb", "swc", "unit"),
    [(0x20, 0x20, "lb"), (0x30, 0x23, "oz"), (0x30, 0x26, "ton"), (0x30, 0x27, "custom")],
)
def test_non_mass_units_are_refused(swb: int, swc: int, unit: str) -> None:
    [r] = parse(frame(0x2B, swb, swc))
    assert r.weight_g is None and r.tare_g is None
    assert r.unit == unit and r.error is not None and "refused" in r.error
    with pytest.raises(FrameError):
        r.grams()


@pytest.mark.parametrize(
    ("swa", "swc", "shown", "grams", "unit"),
    [
        (0x28, 0x21, b"001234", 123_400, "g"),  # code 0: XXXX00
        (0x29, 0x21, b"  1234", 12_340, "g"),  # code 1: XXXXX0
        (0x2A, 0x21, b"  1234", 1_234, "g"),  # code 2: integer
        (0x2E, 0x21, b"  1235", 0, "g"),  # 0.1235 g rounds half-even to 0
        (0x2D, 0x22, b"  1234", 1_234_000, "t"),  # 1.234 t
        (0x2F, 0x20, b"123456", 1_235, "kg"),  # 1.23456 kg → 1234.56 g → 1235 g
    ],
)
def test_decimal_codes_and_units(swa: int, swc: int, shown: bytes, grams: int, unit: str) -> None:
    [r] = parse(frame(swa, 0x30, swc, shown))
    assert (r.weight_g, r.unit, r.error) == (grams, unit, None)


@pytest.mark.parametrize(("swb", "overload", "underload"), [(0x34, True, False), (0x36, False, True)])
def test_out_of_range_never_a_weight(swb: int, overload: bool, underload: bool) -> None:
    [r] = parse(frame(0x2D, swb, 0x20))
    assert (r.weight_g, r.overload, r.underload) == (None, overload, underload)
    with pytest.raises(FrameError, match="overload" if overload else "underload"):
        r.grams()


def test_expanded_display_is_refused() -> None:
    [r] = parse(frame(0x2D, 0x30, 0x30))
    assert r.weight_g is None and r.error is not None


@pytest.mark.parametrize("shown", [b" 12-45", b"12 345", b"     ", b" 1.345"])
def test_non_digit_weight_is_counted_not_weighed(shown: bytes) -> None:
    p = ToledoParser()
    [r] = p.feed(frame(0x2D, 0x30, 0x20, shown.ljust(6)))
    assert r.weight_g is None and r.error is not None
    assert (p.frames, p.format_errors) == (0, 1)


def test_bad_checksum_is_counted_and_yields_an_error() -> None:
    p = ToledoParser()
    [r] = p.feed(GOOD[:-1] + b"x")
    assert r.weight_g is None and r.error == "checksum mismatch"
    assert (p.frames, p.checksum_errors) == (0, 1)


def test_stream_starting_mid_frame_and_noise_between_frames() -> None:
    p = ToledoParser()
    head, noise = GOOD[7:], b"\x00\xffjunk\r\n"
    assert [r.weight_g for r in p.feed(head + GOOD + noise + GOOD)] == [1_234_500, 1_234_500]
    assert p.garbage_bytes == len(head) + len(noise)
    assert p.checksum_errors == 0


def test_registry_builds_toledo_with_and_without_checksum() -> None:
    assert [r.weight_g for r in PROTOCOLS["toledo"].parser().feed(GOOD)] == [1_234_500]
    assert [r.weight_g for r in PROTOCOLS["toledo-nochk"].parser().feed(GOOD[:-1])] == [1_234_500]
    assert [r.error for r in PROTOCOLS["toledo"].parser().feed(GOOD[:-1] * 2)] == ["checksum mismatch"]


def test_as_json_fields_and_raw_round_trip() -> None:
    [r] = parse(GOOD)
    j = r.as_json()
    assert set(j) == {"weight_g", "unit", "stable", "net", "overload", "underload", "protocol", "raw", "tare_g"}
    assert j["raw"].encode("latin-1") == GOOD


STREAM = b"".join(d for d, *_ in REFERENCE_EXAMPLES) * 2


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_split_at_any_positions_gives_the_same_readings(cuts: list[int]) -> None:
    p = ToledoParser()
    bounds = [0, *sorted(cuts), len(STREAM)]
    readings = [r for a, b in pairwise(bounds) for r in p.feed(STREAM[a:b])]
    assert readings == parse(STREAM)


@given(st.binary(max_size=400), st.booleans())
def test_any_bytes_never_raise_and_weights_only_from_verified_frames(data: bytes, checksum: bool) -> None:
    p = ToledoParser(checksum=checksum)
    for r in p.feed(data):
        if r.weight_g is not None:
            assert len(r.raw) == (18 if checksum else 17)
            assert not checksum or toledo_checksum_ok(r.raw)
    assert p.frames + p.checksum_errors + p.format_errors <= len(data) // p.length


@given(
    st.integers(min_value=1, max_value=len(GOOD) - 1),
    st.integers(min_value=0, max_value=len(GOOD) - 1),
    st.integers(min_value=1, max_value=255),
)
def test_one_corrupted_byte_never_gives_a_wrong_weight(before: int, pos: int, flip: int) -> None:
    """Good frame, corrupted frame, good frame (and a partial one before): only the true weight."""
    bad = bytearray(GOOD)
    bad[pos] ^= flip
    readings = parse(GOOD[-before:] + GOOD + bytes(bad) + GOOD + GOOD)
    assert {r.weight_g for r in readings if r.weight_g is not None} == {1_234_500}
    assert sum(r.weight_g is not None for r in readings) >= 2
