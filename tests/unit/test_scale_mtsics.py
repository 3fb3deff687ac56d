"""MT-SICS parser (reference §2): examples, answers, units, 7E1, robustness."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.devices.scales import PROTOCOLS, Reading
from edge.devices.scales.mtsics import MtSicsParser
from edge.errors import FrameError

# Reference §2.2 and §2.4, checked by hand: (line, grams, stable).  -0.68 g rounds half-even to -1 g.
REFERENCE_EXAMPLES = [
    (b"S S     100.00 g\r\n", 100, True),
    (b"S D    -0.6800 g\r\n", -1, False),
    (b"S D 1.234 g\r\n", 1, False),  # an emulator's single spaces (§2.2)
]
GOOD = b"S S     12.345 kg\r\n"
VALUE_AND_UNIT = range(3, 17)  # byte positions of the value field and the unit in GOOD
WEIGHT_LINE = re.compile(rb"S[ \t]+[SD][ \t]+[+-]?[0-9]+(\.[0-9]+)?[ \t]+(g|kg|t)")  # written from §2.2


def parse(data: bytes) -> list[Reading]:
    return MtSicsParser().feed(data)


def even_parity(data: bytes) -> bytes:
    return bytes(b | 0x80 if bin(b).count("1") % 2 else b for b in data)


@pytest.mark.parametrize(("line", "grams", "stable"), REFERENCE_EXAMPLES)
def test_reference_examples(line: bytes, grams: int, stable: bool) -> None:
    [r] = parse(line)
    assert (r.weight_g, r.unit, r.stable, r.error, r.protocol) == (grams, "g", stable, None, "mt-sics")
    assert r.raw == line.rstrip(b"\r\n")
    assert (r.net, r.tare_g) == (None, None)  # MT-SICS has no net flag; tare not yet seen


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"S I", "S I: not executable"),
        (b"ES", "ES: syntax error"),
        (b"ET", "ET: transmission error"),
        (b"EL", "EL: logical error"),
        (b"Z I", "Z I: not executable"),
        (b"Z +", "Z +: upper limit"),
        (b"T -", "T -: lower limit"),
        (b"TA L", "TA L: logical error"),
    ],
)
def test_device_errors_are_error_readings(line: bytes, text: str) -> None:
    p = MtSicsParser()
    [r] = p.feed(line + b"\r\n")
    assert r.weight_g is None and r.error is not None and r.error.startswith(text)
    assert (p.frames, p.device_errors, p.format_errors) == (1, 1, 0)
    with pytest.raises(FrameError):
        r.grams()


@pytest.mark.parametrize(("line", "over"), [(b"S +", True), (b"S -", False)])
def test_overload_and_underload(line: bytes, over: bool) -> None:
    [r] = parse(line + b"\r\n")
    assert (r.weight_g, r.overload, r.underload, r.error) == (None, over, not over, None)


def test_acknowledgements_yield_nothing_and_track_tare_zero_and_serial() -> None:
    p = MtSicsParser()
    assert p.feed(b"Z A\r\n") == [] and p.zero_acks == 1
    assert p.feed(b"T S     100.00 g\r\n") == [] and p.tare_g == 100
    [r] = p.feed(b"S S      0.00 g\r\n")
    assert (r.weight_g, r.net, r.tare_g) == (0, True, 100)
    assert p.feed(b"TA A 2.486 kg\r\n") == [] and p.tare_g == 2486
    assert p.feed(b"TAC A\r\n") == [] and p.tare_g == 0
    [r] = p.feed(b"S S 5 g\r\n")
    assert (r.net, r.tare_g) == (False, 0)
    assert p.feed(b'I4 A "1126493049"\r\nI0 B 0 "I0"\r\nI0 A 0 "@"\r\n') == []
    assert p.serial == "1126493049"
    assert (p.frames, p.format_errors, p.device_errors) == (9, 0, 0)


@pytest.mark.parametrize("unit", ["lb", "oz", "ozt", "ct", "mg", "pcs", "%"])
def test_other_units_are_refused_by_name(unit: str) -> None:
    [r] = parse(b"S S 12.5 " + unit.encode() + b"\r\n")
    assert r.weight_g is None and r.unit == unit and r.error == f"unit {unit} refused: only kg, g and t are recorded"


@pytest.mark.parametrize(
    "line",
    [
        b"S S 1,5 g",
        b"S S 12.3",
        b"S S 1.2.3 g",
        b"S S 12.3 g g",
        b"S Q 1 g",
        b"S S - 1 g",
        b"S S .5 g",
        b"s s 1 g",
        b"S",
        b"X",
        b"S S 1\x00 g",
        b"T S abc g",
        b"Z",
    ],
)
def test_malformed_lines_are_counted_never_weighed(line: bytes) -> None:
    p = MtSicsParser()
    readings = p.feed(b"\r\n" + line + b"\r\n")
    assert [r.weight_g for r in readings] == [None]
    assert readings[0].error is not None and p.format_errors == 1 and p.frames == 0


def test_terminators_cr_lf_crlf_lfcr_and_xon_xoff() -> None:
    p = MtSicsParser()
    data = b"S S 1 g\rS S 2 g\nS S 3 g\r\nS S 4 g\n\rS \x11S 5 g\x13\r\n"
    assert [r.weight_g for r in p.feed(data)] == [1, 2, 3, 4, 5]
    assert (p.garbage_bytes, p.format_errors) == (2, 0)


def test_7e1_read_as_8n1() -> None:
    data = b"".join(line for line, *_ in REFERENCE_EXAMPLES)
    wire = even_parity(data)
    assert wire != data
    readings = parse(wire)
    assert [r.weight_g for r in readings] == [g for _, g, _ in REFERENCE_EXAMPLES]
    assert readings[0].raw == even_parity(REFERENCE_EXAMPLES[0][0]).rstrip(even_parity(b"\r\n"))


def test_stream_starting_mid_line_drops_the_tail_as_garbage() -> None:
    p = MtSicsParser()
    tail = GOOD[5:]
    assert [r.weight_g for r in p.feed(tail + GOOD)] == [12345]
    assert (p.garbage_bytes, p.format_errors) == (len(tail) - 2, 0)


def test_endless_line_is_dropped_and_resyncs() -> None:
    p = MtSicsParser()
    assert p.feed(b"x" * 1000) == []
    # the first line after the overflow is accepted only because it parses: an MT-SICS line starts
    # with its command id, so the tail of a cut line never does
    assert [r.weight_g for r in p.feed(b"S S 1 g\r\n" + GOOD)] == [1, 12345]
    assert p.garbage_bytes >= 1000


def test_registered_spec() -> None:
    spec = PROTOCOLS["mt-sics"]
    assert (spec.baud, spec.bytesize, spec.parity, spec.stable_flag) == (9600, 8, "N", True)
    assert (spec.start, spec.poll, spec.zero, spec.tare) == (None, b"SI\r\n", b"Z\r\n", b"T\r\n")
    assert [r.weight_g for r in spec.parser().feed(GOOD)] == [12345]


STREAM = b"".join(line for line, *_ in REFERENCE_EXAMPLES) + b"T S 1 kg\r\nS I\r\n" + GOOD + b"ES\r\n"


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_split_at_any_positions_gives_the_same_readings(cuts: list[int]) -> None:
    p = MtSicsParser()
    bounds = [0, *sorted(cuts), len(STREAM)]
    assert [r for a, b in pairwise(bounds) for r in p.feed(STREAM[a:b])] == parse(STREAM)


def test_split_at_every_single_position() -> None:
    whole = parse(STREAM)
    for cut in range(len(STREAM) + 1):
        p = MtSicsParser()
        assert p.feed(STREAM[:cut]) + p.feed(STREAM[cut:]) == whole


@given(st.binary(max_size=400))
def test_any_bytes_never_raise_and_weights_only_from_grammar_lines(data: bytes) -> None:
    for r in parse(data):
        if r.weight_g is not None:
            text = bytes(b & 0x7F for b in r.raw).replace(b"\x11", b"").replace(b"\x13", b"")
            assert WEIGHT_LINE.fullmatch(text.strip(b" \t")), r.raw


@given(st.integers(min_value=0, max_value=len(GOOD) - 1), st.integers(min_value=1, max_value=255))
def test_one_corrupted_byte(pos: int, flip: int) -> None:
    """No checksum: a corrupted byte in the value or unit field can give another plausible weight
    (e.g. 12.345 → 13.345, kg → t).  Anywhere else: the same weight, an error, or nothing."""
    bad = bytearray(GOOD)
    bad[pos] ^= flip
    readings = parse(GOOD + bytes(bad) + GOOD)
    weights = [r.weight_g for r in readings if r.weight_g is not None]
    assert weights[0] == weights[-1] == 12345
    if pos not in VALUE_AND_UNIT:
        assert set(weights) == {12345}
