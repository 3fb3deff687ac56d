"""CAS 22-byte continuous format (reference §6.1): example, units, status cross-check, robustness."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.devices.scales import PROTOCOLS, Reading
from edge.devices.scales.cas import CasParser


def frame(
    h1: bytes = b"ST", h2: bytes = b"GS", lamp: int | None = None, data: bytes = b"000013.5", unit: bytes = b"kg"
) -> bytes:
    """H1,H2,ID LAMP,DDDDDDDD UU CR LF, written from §6.1 (LAMP: bit 7 1, bit 6 stable, bit 2 gross, bit 1 tare)."""
    if lamp is None:
        lamp = 0x80 | (0x40 if h1 == b"ST" else 0) | (0x02 if h2 == b"NT" else 0x04)
    return h1 + b"," + h2 + b",1" + bytes([lamp]) + b"," + data + b" " + unit + b"\r\n"


GOOD = frame()  # the reference's data example "000013.5" in kg: 13.5 kg
DATA_AND_UNIT = range(9, 20)
FRAME = re.compile(rb"(ST|US),(GS|NT),[\x20-\x7e][\x80-\xff], *[+-]? *[0-9]+(\.[0-9]+)? ( g|kg| t)\r\n")


def parse(data: bytes) -> list[Reading]:
    return CasParser().feed(data)


def test_reference_example() -> None:
    assert len(GOOD) == 22
    [r] = parse(GOOD)
    assert (r.weight_g, r.unit, r.stable, r.net, r.error, r.raw, r.protocol) == (
        13_500,
        "kg",
        True,
        False,
        None,
        GOOD,
        "cas",
    )


@pytest.mark.parametrize(
    ("f", "grams", "unit", "stable", "net"),
    [
        (frame(b"US", b"NT", data=b"-012.345"), -12_345, "kg", False, True),
        (frame(data=b"  -0.500"), -500, "kg", True, False),
        (frame(data=b"0001.234", unit=b" t"), 1_234_000, "t", True, False),
        (frame(data=b"00012345", unit=b" g"), 12_345, "g", True, False),
    ],
)
def test_signs_units_status(f: bytes, grams: int, unit: str, stable: bool, net: bool) -> None:
    [r] = parse(f)
    assert (r.weight_g, r.unit, r.stable, r.net, r.error) == (grams, unit, stable, net, None)


def test_overload() -> None:
    [r] = parse(frame(b"OL", data=b"  OVER  "))
    assert (r.weight_g, r.overload, r.error) == (None, True, None)


@pytest.mark.parametrize("unit", [b"lb", b"oz", b"pc"])
def test_other_units_are_refused_by_name(unit: bytes) -> None:
    [r] = parse(frame(unit=unit))
    assert r.weight_g is None and r.error == f"unit {unit.decode()} refused: only kg, g and t are recorded"


@pytest.mark.parametrize(
    "f",
    [
        frame(lamp=0x84),  # says stable in H1, motion in LAMP
        frame(b"US", lamp=0xC4),
        frame(lamp=0x44),  # LAMP bit 7 clear (e.g. read with 7 data bits)
        frame(data=b"0013.5.0"),
        frame(data=b"00 13.50"),
        frame(data=b"0001-3.5"),
        frame(data=b"        "),
    ],
)
def test_malformed_frames_are_counted_never_weighed(f: bytes) -> None:
    p = CasParser()
    readings = p.feed(f)
    assert [r.weight_g for r in readings] == [None] and readings[0].error is not None
    assert (p.format_errors, p.frames) == (1, 0)


def test_terminator_out_of_place_is_a_false_start_not_a_frame() -> None:
    p = CasParser()
    assert p.feed(GOOD.replace(b"kg\r", b"kg\n") + GOOD) == parse(GOOD)
    assert (p.format_errors, p.garbage_bytes) == (0, 22)


def test_mid_frame_start_noise_and_false_headers() -> None:
    p = CasParser()
    head, noise = GOOD[4:], b"\x00ST,GS,\xffjunk\r\n"
    assert [r.weight_g for r in p.feed(head + GOOD + noise + GOOD)] == [13_500, 13_500]
    assert p.format_errors == 0 and p.garbage_bytes == len(head) + len(noise)


def test_registered_spec() -> None:
    spec = PROTOCOLS["cas"]
    assert (spec.baud, spec.bytesize, spec.parity, spec.stable_flag) == (9600, 8, "N", True)
    assert (spec.start, spec.poll, spec.zero, spec.tare) == (None, None, None, None)


STREAM = GOOD + frame(b"US", b"NT", data=b"-012.345") + frame(b"OL", data=b"  OVER  ") + frame(unit=b"lb") + GOOD


def test_split_at_every_single_position() -> None:
    whole = parse(STREAM)
    assert len(whole) == 5
    for cut in range(len(STREAM) + 1):
        p = CasParser()
        assert p.feed(STREAM[:cut]) + p.feed(STREAM[cut:]) == whole


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_split_at_any_positions_gives_the_same_readings(cuts: list[int]) -> None:
    p = CasParser()
    bounds = [0, *sorted(cuts), len(STREAM)]
    assert [r for a, b in pairwise(bounds) for r in p.feed(STREAM[a:b])] == parse(STREAM)


@given(st.binary(max_size=400))
def test_any_bytes_never_raise_and_weights_only_from_well_formed_frames(data: bytes) -> None:
    p = CasParser()
    for r in p.feed(data):
        if r.weight_g is not None:
            assert FRAME.fullmatch(r.raw), r.raw
            assert bool(r.raw[7] & 0x40) == (r.raw[:2] == b"ST")
    assert p.frames + p.format_errors <= len(data) // 22


@given(st.integers(min_value=0, max_value=len(GOOD) - 1), st.integers(min_value=1, max_value=255))
def test_one_corrupted_byte(pos: int, flip: int) -> None:
    """No checksum: a corrupted byte in the data or unit field can give another plausible weight
    (a digit, a moved point, ``kg`` → `` g``).  Corrupting the status (H1 or the LAMP stable bit
    alone) is caught by their cross-check; elsewhere: same weight, an error, or nothing."""
    bad = bytearray(GOOD)
    bad[pos] ^= flip
    readings = parse(GOOD + bytes(bad) + GOOD)
    weights = [r.weight_g for r in readings if r.weight_g is not None]
    assert weights[0] == weights[-1] == 13_500
    if pos not in DATA_AND_UNIT:
        assert set(weights) == {13_500}
        assert all(r.stable for r in readings if r.weight_g is not None) or pos in (0, 1, 7)
