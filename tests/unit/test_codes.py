"""Our QR payloads: round trip, damage detection, MAC, other organisations, external formats,
refusals in Chinese, and the size of the symbol."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from edge import catalogue, codes, messages
from edge.errors import CodeError

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
field = st.text(alphabet=ALNUM, min_size=1, max_size=12)
keys = st.binary(min_size=16, max_size=64)
KEY = bytes(range(32))
ORG = "H330100001"


def reason(book: codes.CodeBook, text: str) -> str:
    with pytest.raises(CodeError) as info:
        book.decode(text)
    return str(info.value)


def said(key: str) -> str:
    """The line a refusal with message key ``key`` reads as (what ``reason`` returns)."""
    return str(CodeError(key))


@given(st.sampled_from("SDRV"), field, field)
def test_round_trip(kind: str, org: str, ident: str) -> None:
    code = codes.Code(kind, org, ident)
    assert codes.decode(codes.encode(code), org) == code


@given(field, st.sampled_from(sorted(codes.CATEGORY_LETTERS)))
def test_bag_label_carries_its_category(ident: str, letter: str) -> None:
    got = codes.decode(codes.encode(codes.Code("B", "H1", ident, letter)))
    assert got.category == codes.CATEGORY_LETTERS[letter]
    assert got.source == "wastecart"


@given(st.sampled_from("SDBRV"), field, field, keys, st.booleans())
def test_signed_round_trip(kind: str, org: str, ident: str, key: bytes, require: bool) -> None:
    code = codes.Code(kind, org, ident, "C" if kind == "B" else "")
    book = codes.CodeBook(org, key=key, require_mac=require)
    text = book.encode(code)
    assert text.startswith("WS1.")
    assert book.decode(text) == code
    assert codes.decode(text, org) == code  # no key: the MAC is not verified (transition), the check is


UNSIGNED = codes.encode(codes.Code("B", ORG, "B000101", "I"))
SIGNED = codes.encode(codes.Code("B", ORG, "B000101", "I"), KEY)
CASES = [(UNSIGNED, codes.CodeBook()), (SIGNED, codes.CodeBook(ORG, key=KEY, require_mac=True))]
DAMAGE = {said(codes.DAMAGED), said(codes.NOT_OURS)}  # never "forged" or another reason: damage is damage


@pytest.mark.parametrize(("text", "book"), CASES, ids=["unsigned", "signed"])
def test_every_single_wrong_character_is_refused_as_damage(text: str, book: codes.CodeBook) -> None:
    assert book.decode(text)
    for i in range(len(text)):
        for char in ALNUM + ".-_":
            if char != text[i]:
                assert reason(book, text[:i] + char + text[i + 1:]) in DAMAGE, (i, char)


@pytest.mark.parametrize(("text", "book"), CASES, ids=["unsigned", "signed"])
def test_every_swap_of_neighbours_is_refused_as_damage(text: str, book: codes.CodeBook) -> None:
    for i in range(len(text) - 1):
        swapped = text[:i] + text[i + 1] + text[i] + text[i + 2:]
        if swapped != text:
            assert reason(book, swapped) in DAMAGE, i


def resealed(text: str, mac: str) -> str:
    """``text`` with another MAC and correct check characters: what a forger without the key makes."""
    body = text.rsplit(".", 2)[0] + "." + mac
    return f"{body}.{codes.check_chars(body)}"


def test_every_single_change_of_the_mac_is_a_forgery() -> None:
    book = codes.CodeBook(ORG, key=KEY)
    mac = SIGNED.split(".")[-2]
    for i in range(codes.MAC_CHARS):
        for char in ALNUM:
            if char != mac[i]:
                assert reason(book, resealed(SIGNED, mac[:i] + char + mac[i + 1:])) == said(codes.FORGED)


@given(keys, field)
def test_a_code_signed_with_another_key_is_forged(other: bytes, ident: str) -> None:
    assume(other != KEY)
    text = codes.encode(codes.Code("S", ORG, ident), other)
    assert reason(codes.CodeBook(ORG, key=KEY), text) == said(codes.FORGED)


def test_refusal_reasons_are_clear_and_distinct() -> None:
    book = codes.CodeBook(ORG, key=KEY)
    strict = codes.CodeBook(ORG, key=KEY, require_mac=True)
    assert reason(book, "https://example.com/x").startswith("不是本系统或已登记格式的二维码")
    good = codes.encode(codes.Code("S", ORG, "N1"), KEY)
    assert reason(book, good[:-1] + ("0" if good[-1] != "0" else "1")).startswith("二维码已损坏或被涂改，请重新打印")
    assert reason(book, resealed(good, "000000")).startswith("防伪校验失败：二维码不是本机构签发的")
    other = codes.encode(codes.Code("S", "H2", "N1"), b"another organisation's key!")
    assert reason(book, other).startswith("其他机构的二维码 (H2)")
    assert reason(codes.CodeBook("H1"), codes.encode(codes.Code("S", "H2", "N1"))).startswith("其他机构")
    unsigned = codes.encode(codes.Code("S", ORG, "N1"))
    assert book.decode(unsigned) == codes.Code("S", ORG, "N1")  # require_mac off: old labels still work
    assert reason(strict, unsigned).startswith("缺少防伪码")
    assert reason(book, codes.encode(codes.Code("B", ORG, "B1", ""), KEY)).startswith("袋标签缺少废物类别")
    assert reason(book, resealed(good, "ABC")) == said(codes.BAD_FIELD)  # a MAC of the wrong length
    for text in ("WC1.X.H1.N1", "WS1.S.H1.N1"):  # unknown kind; signed without a MAC field
        assert reason(book, f"{text}.{codes.check_chars(text)}") in (said(codes.BAD_FIELD), said(codes.NOT_OURS))


def test_refusals_carry_a_message_key_and_their_parameters() -> None:
    """The kiosk and the CLI look the words up; the key and the parameters are what the code says."""
    other = codes.encode(codes.Code("S", "H2", "N1"))
    with pytest.raises(CodeError) as info:
        codes.CodeBook(ORG).decode(other)
    assert (info.value.key, info.value.params) == (codes.OTHER_ORG, {"org": "H2"})
    source = Path(codes.__file__).read_text("utf-8")
    raised = set(re.findall(r'CodeError\("([a-z_.]+)"', source))
    verdicts = {codes.NOT_OURS, codes.DAMAGED, codes.FORGED, codes.NO_MAC, codes.BAD_FIELD, codes.NO_CATEGORY,
                codes.OTHER_ORG}
    assert len(raised) >= 7 and raised | verdicts <= messages.CATALOGUE.keys()
    assert "CodeError(f" not in source  # no text in exceptions: a key and parameters


def test_every_category_of_the_catalogue_has_its_letter_on_bag_codes() -> None:
    for c in catalogue.CATEGORIES:
        assert codes.decode(codes.encode(codes.Code("B", "H1", "B1", c.letter))).category == c.id
        assert codes.LETTER_OF[c.id] == c.letter


def test_encode_refuses_what_it_cannot_write() -> None:
    with pytest.raises(CodeError, match="kind"):
        codes.encode(codes.Code("X", "H1", "N1"))
    with pytest.raises(CodeError, match="不合法"):
        codes.encode(codes.Code("S", "H1", "n1"))
    with pytest.raises(CodeError, match="key"):
        codes.CodeBook("H1", require_mac=True)


# The symbol stays small -------------------------------------------------------------------------

TYPICAL = [
    codes.Code("B", ORG, "B00010203", "I"),
    codes.Code("B", "H" * 10, "B" * 12, "S"),  # longest typical: 10-char org, 12-char ident
    codes.Code("S", "H" * 10, "9" * 12),
    codes.Code("D", "H1", "D01"),
    codes.Code("V", "H" * 10, "ZJA12345-X9"),
]


@pytest.mark.parametrize("code", TYPICAL, ids=str)
@pytest.mark.parametrize("key", [None, KEY], ids=["unsigned", "signed"])
def test_typical_codes_fit_qr_version_3_at_ecc_q(code: codes.Code, key: bytes | None) -> None:
    import qrcode
    from qrcode.constants import ERROR_CORRECT_Q

    text = codes.encode(code, key)
    assert set(text) <= set(ALNUM + ".-")  # QR alphanumeric mode (and uppercase)
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_Q)
    qr.add_data(text)
    qr.make(fit=True)
    assert qr.version <= 3, (text, qr.version)


# Configured external formats -----------------------------------------------------------------

BADGE = codes.ExternalFormat("医院工牌", re.compile(r"^EMP(?P<ident>\d{6})$"), "S")
PLATFORM = codes.ExternalFormat(
    "平台袋码", re.compile(r"^https://zgm\.example\.cn/w\?c=(?P<ident>[A-Z0-9]{8,20})$"), "B", "INFECTIOUS")
WITH_CATEGORY = codes.ExternalFormat("旧袋标签", re.compile(r"(?P<category>[A-Z]+)-(?P<ident>\d{4,8})"), "B")
BOOK = codes.CodeBook(ORG, key=KEY, require_mac=True, external=[BADGE, PLATFORM, WITH_CATEGORY])


@given(st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_hospital_badge(number: str) -> None:
    assert BOOK.decode(f"EMP{number}\r\n") == codes.Code("S", ORG, number, "", "医院工牌")


@given(st.text(alphabet=ALNUM, min_size=8, max_size=20))
def test_platform_url_is_a_bag_with_its_fixed_category(ident: str) -> None:
    code = BOOK.decode(f"https://zgm.example.cn/w?c={ident}")
    assert (code.kind, code.org, code.ident, code.category, code.source) == ("B", ORG, ident, "INFECTIOUS", "平台袋码")


@given(st.sampled_from(sorted(codes.CATEGORY_LETTERS) + sorted(codes.LETTER_OF)),
       st.text(alphabet="0123456789", min_size=4, max_size=8))
def test_category_group_takes_letters_and_names(category: str, number: str) -> None:
    assert BOOK.decode(f"{category}-{number}").category == codes.category_name(category)


def test_external_refusals() -> None:
    assert reason(BOOK, "EMP12345") == said(codes.NOT_OURS)  # five digits: the badge pattern must match in full
    assert reason(BOOK, "https://zgm.example.cn/w?c=ABCDEFGH&x=1") == said(codes.NOT_OURS)
    assert "无法识别" in reason(BOOK, "X-1234")
    lower = codes.CodeBook(ORG, external=[codes.ExternalFormat("小写", re.compile(r"u(?P<ident>[a-z]+)"), "S")])
    assert "不能用作记录编号" in reason(lower, "uabc")  # the ident goes into signed records as is
    # ours is tried first, with its own reasons, even if a pattern would match it
    greedy = codes.CodeBook(ORG, external=[codes.ExternalFormat("全部", re.compile(r"(?P<ident>.*)"), "S")])
    assert reason(greedy, UNSIGNED[:-1] + "#") == said(codes.NOT_OURS)
    assert greedy.decode("ANYTHING").source == "全部"


def test_patterns_and_categories_are_checked() -> None:
    assert codes.compile_pattern(r"^EMP(?P<ident>\d+)$").groupindex == {"ident": 1}
    with pytest.raises(ValueError, match="not a valid regular expression"):
        codes.compile_pattern(r"^EMP(?P<ident>\d+$")
    with pytest.raises(ValueError, match=r"\(\?P<ident>"):
        codes.compile_pattern(r"^EMP(\d+)$")
    with pytest.raises(ValueError, match="unknown category 'X'"):
        codes.category_name("X")


# The key file ----------------------------------------------------------------------------------

def test_key_file_hex_or_raw(tmp_path: Path) -> None:
    hexfile, rawfile = tmp_path / "k.hex", tmp_path / "k.bin"
    hexfile.write_text(KEY.hex() + "\n")
    rawfile.write_bytes(b"\xff" + KEY[1:])
    assert codes.load_mac_key(hexfile) == KEY
    assert codes.load_mac_key(rawfile) == b"\xff" + KEY[1:]


def test_key_file_missing_or_short_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CodeError, match=f"{tmp_path / 'none'}: cannot read"):
        codes.load_mac_key(tmp_path / "none")
    short = tmp_path / "short"
    short.write_text("00" * 15)
    with pytest.raises(CodeError, match=rf"{short}: key too short \(15 bytes, need at least 16"):
        codes.load_mac_key(short)
