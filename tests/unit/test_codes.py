"""Our QR payloads: round trip, damage detection, other organisations, refusals in Chinese."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge import codes
from edge.errors import CodeError

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
field = st.text(alphabet=ALNUM, min_size=1, max_size=12)


@given(st.sampled_from("SDRV"), field, field)
def test_round_trip(kind: str, org: str, ident: str) -> None:
    code = codes.Code(kind, org, ident)
    assert codes.decode(codes.encode(code), org) == code


@given(field, st.sampled_from(sorted(codes.CATEGORY_LETTERS)))
def test_bag_label_carries_its_category(ident: str, letter: str) -> None:
    got = codes.decode(codes.encode(codes.Code("B", "H1", ident, letter)))
    assert got.category == codes.CATEGORY_LETTERS[letter]


TEXT = codes.encode(codes.Code("B", "H330100001", "B000101", "I"))


@pytest.mark.parametrize("i", range(len(TEXT)))
def test_every_single_wrong_character_is_refused(i: int) -> None:
    for char in ALNUM + ".-_":
        if char != TEXT[i]:
            with pytest.raises(CodeError):
                codes.decode(TEXT[:i] + char + TEXT[i + 1:])


@pytest.mark.parametrize("i", range(len(TEXT) - 1))
def test_every_swap_of_neighbours_is_refused(i: int) -> None:
    swapped = TEXT[:i] + TEXT[i + 1] + TEXT[i] + TEXT[i + 2:]
    if swapped != TEXT:
        with pytest.raises(CodeError):
            codes.decode(swapped)


def test_refusal_reasons_are_clear() -> None:
    with pytest.raises(CodeError, match="不是本系统"):
        codes.decode("https://example.com/x")
    good = codes.encode(codes.Code("S", "H2", "N1"))
    with pytest.raises(CodeError, match="其他机构"):
        codes.decode(good, org="H1")
    with pytest.raises(CodeError, match="校验失败"):
        codes.decode(good[:-1] + ("0" if good[-1] != "0" else "1"))
    with pytest.raises(CodeError, match="类别"):
        codes.decode(codes.encode(codes.Code("B", "H1", "B1", "")))


def test_payload_stays_small() -> None:
    text = codes.encode(codes.Code("B", "H330100001", "B00010203", "I"))
    assert len(text) <= 40
    assert set(text) <= set(ALNUM + ".-_")
