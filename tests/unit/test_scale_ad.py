"""A&D balance/indicator lines and the Chinese ST,GS clones (reference §5.1-5.2), one id ``ad``."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.devices.scales import PROTOCOLS, Reading
from edge.devices.scales.ad import AdParser
from edge.errors import FrameError
from sim_devices.scales.ad import ad_line, even_parity

# (line, weight_g, unit, stable, net, overload, underload, error fragment) — all from §5.1/§5.2
EXAMPLES = [
    (b"ST,+001234.5  g\r\n", 1234, "g", True, None, False, False, None),  # 1234.5 g half-even
    (b"US,-00183.96  g\r\n", -184, "g", False, None, False, False, None),
    (b"QT,+00012345 PC\r\n", None, "PC", True, None, False, False, "PC refused"),
    (b"OL,+999999.9  g\r\n", None, "g", None, None, True, False, None),
    (b"ST,+0001.234 kg\r\n", 1234, "kg", True, None, False, False, None),
    (b"ST,NT,+0012.34kg\r\n", 12_340, "kg", True, True, False, False, None),
    (b"ST,GS,+0012345kg\r\n", 12_345_000, "kg", True, False, False, False, None),
    (b"OL,GS,+    .  kg\r\n", None, "kg", None, False, True, False, None),
    (b"ST,GS,  18.000kg\r\n", 18_000, "kg", True, False, False, False, None),
    (b"US,NT,-  0.200kg\r\n", -200, "kg", False, True, False, False, None),
    (b"ST,GS,+ 123.456   g\r\n", 123, "g", True, False, False, False, None),
    (b"ST,OK,+0001.234 kg\r\n", 1234, "kg", True, None, False, False, None),
]


@pytest.mark.parametrize(("line", "grams", "unit", "stable", "net", "over", "under", "err"), EXAMPLES)
def test_reference_examples(
    line: bytes, grams: int | None, unit: str, stable: bool | None, net: bool | None, over: bool, under: bool,
    err: str | None,
) -> None:
    p = AdParser()
    [r] = p.feed(line)
    assert (r.weight_g, r.unit, r.stable, r.net, r.overload, r.underload) == (grams, unit, stable, net, over, under)
    assert (r.protocol, r.raw, r.tare_g) == ("ad", line[:-1], None)  # raw ends at the CR; the LF is skipped
    assert (r.error is None) == (err is None) and (err is None or err in (r.error or ""))
    assert (p.frames, p.format_errors, p.garbage_bytes) == (1, 0, 0)


@pytest.mark.parametrize(("line", "unit"), [(b"ST,+00012.34 lb", "lb"), (b"ST,+00012.34  %", "%"),
                                            (b"ST,+00012.34 oz", "oz"), (b"ST,GS,+0012.34lb", "lb")])
def test_non_mass_units_are_refused(line: bytes, unit: str) -> None:
    [r] = AdParser().feed(line + b"\r\n")
    assert r.weight_g is None and r.unit == unit and r.error is not None and "refused" in r.error
    with pytest.raises(FrameError):
        r.grams()


def test_tare_line_and_minus_overflow() -> None:
    tare, under = AdParser().feed(b"ST,TR,+0001.000kg\r\nOL,GS,-    .  kg\r\n")
    assert (tare.weight_g, tare.tare_g) == (None, 1000)
    assert (under.weight_g, under.overload, under.underload) == (None, False, True)


@pytest.mark.parametrize("line", [b"ST,GS,+00x2.34kg", b"ST,GS,+0012.34", b"ST,GS,+1 2.34kg", b"ST,GS,+00.12.3kg"])
def test_malformed_lines_are_counted_never_weights(line: bytes) -> None:
    p = AdParser()
    [r] = p.feed(line + b"\r\n")
    assert r.weight_g is None and r.error is not None
    assert (p.frames, p.format_errors) == (0, 1)


def test_7e1_read_as_8n1() -> None:
    data = b"".join(e[0] for e in EXAMPLES)
    wire = even_parity(data)
    assert wire != data
    assert [r.weight_g for r in AdParser().feed(wire)] == [e[1] for e in EXAMPLES]


def test_mid_line_start_noise_and_line_ends() -> None:
    p = AdParser()
    good = b"ST,GS,+0012.34kg"
    readings = p.feed(good[4:] + b"\r\n" + b"\x00\xff" + good + b"\n\r" + good + b"\r" + good + b"\n")
    assert [r.weight_g for r in readings] == [12_340] * 3
    assert p.garbage_bytes == len(good[4:]) + 1 + 2 and p.format_errors == 0


def test_sim_variants_round_trip() -> None:
    for variant in ("indicator", "balance", "clone"):
        for grams in (-1000, 0, 12345, 999_999):
            [r] = AdParser().feed(ad_line(grams, motion=grams == 0, net=grams < 0, variant=variant))
            assert (r.weight_g, r.stable) == (grams, grams != 0)
        assert AdParser().feed(ad_line(1_000_000, variant=variant))[0].overload


def test_registry_line_settings_and_commands() -> None:
    spec = PROTOCOLS["ad"]
    assert (spec.bytesize, spec.parity, spec.stable_flag, spec.poll) == (7, "E", True, None)
    assert (spec.zero, spec.tare) == (b"Z\r\n", b"T\r\n")


STREAM = b"".join(e[0] for e in EXAMPLES) + b"garbage\r\n"


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_split_at_any_positions_gives_the_same_readings(cuts: list[int]) -> None:
    p = AdParser()
    bounds = [0, *sorted(cuts), len(STREAM)]
    readings: list[Reading] = [r for a, b in pairwise(bounds) for r in p.feed(STREAM[a:b])]
    assert readings == AdParser().feed(STREAM)


def test_split_at_every_single_position() -> None:
    whole = AdParser().feed(STREAM)
    for cut in range(len(STREAM) + 1):
        p = AdParser()
        assert p.feed(STREAM[:cut]) + p.feed(STREAM[cut:]) == whole


@given(st.binary(max_size=300))
def test_any_bytes_never_raise_and_weights_only_from_well_formed_lines(data: bytes) -> None:
    """No checksum: a weight can only come from a line with a header, a number and a mass unit."""
    for r in AdParser().feed(data):
        if r.weight_g is not None:
            text = bytes(b & 0x7F for b in r.raw)
            assert text[:2] in (b"ST", b"US") and r.unit in ("g", "kg", "t")
