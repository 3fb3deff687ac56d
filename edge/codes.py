"""Our QR payloads (DESIGN §4): versioned, typed, checked, short uppercase alphanumeric.

Two forms, told apart by the first field (the tag: "W", C = checked / S = signed, format 1)::

    WC1.<kind>.<org>.<ident>[.<extra>].<check>           unsigned
    WS1.<kind>.<org>.<ident>[.<extra>].<mac>.<check>      signed: mac = 6 base-36 characters

Only characters of QR's alphanumeric mode (fields are A-Z 0-9 and '-'; '_' is accepted because
ids may hold it, but it costs byte mode), so a code stays at version 2–3 at error correction Q.
``check`` is two base-36 characters of a weighted sum modulo 1271 (as ISO 7064 MOD 1271-36) over
everything before it, the mac included: every single wrong character and every swap of two
neighbours is caught, so a damaged or mistyped code is rejected as *damaged*, never misread.
``mac`` is HMAC-SHA256 with the organisation's key over ``WS1.<kind>.<org>.<ident>[.<extra>]``,
truncated: a code whose check characters are right but whose mac is not was made by someone
without the key (*forged*).  The tag fixes where the mac is, so parsing never guesses.

Order of the verdicts, each with its own reason: not ours → damaged → bad field → other
organisation → missing mac (when required) / forged → bag without category.  A book without a
key accepts signed codes without verifying their mac (the transition: carts get the key later).

Kinds: S staff badge, D department handover code, B bag / container label (extra = category
letter), R storage room, V vehicle.  Configured external formats (a hospital badge, a platform
URL) are regular expressions tried after ours; a ``Code`` says which one it came from.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge import catalogue, wire
from edge.errors import CodeError

VERSION = "WC1"  # unsigned
SIGNED = "WS1"  # with a MAC of the organisation's key
SOURCE = "wastecart"  # Code.source of our own payloads
KINDS = {"S": "staff badge", "D": "department", "B": "bag label", "R": "storage room", "V": "vehicle"}
# Category letter on a bag label -> wire category enum, and back (the letters are edge.catalogue's).
CATEGORY_LETTERS = {c.letter: c.id for c in catalogue.CATEGORIES}
LETTER_OF = {c.id: c.letter for c in catalogue.CATEGORIES}
_FIELD = wire.ID_PATTERN
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VALUES = {c: i for i, c in enumerate(_B36 + ".-_")}
_MOD = 1271  # 31 × 41, coprime with the radix 36 and > any character difference: no blind spots
# MAC length (base-36 characters): 36**6 ≈ 2**31.  The key never leaves the organisation, so a
# forger cannot test guesses offline: each guess is a label printed and scanned at a cart by a
# person (seconds each, every miss shown and logged as forged) — at one guess a second, non-stop,
# a hit takes ~34 years on average.  Longer would push the worst case (10-char org, 12-char
# ident, bag) past version 3-Q's 47 alphanumeric characters.
MAC_CHARS = 6
_MAC = re.compile(rf"^[0-9A-Z]{{{MAC_CHARS}}}$")
MIN_KEY_BYTES = 16  # 128 bits: below that the key, not the truncated MAC, is the weak point
_HEX_KEY = re.compile(rb"(?:[0-9A-Fa-f]{2})+")

# The verdicts of CodeBook.decode: message keys (edge.messages.codes has their words).
NOT_OURS = "code.not_ours"
DAMAGED = "code.damaged"
FORGED = "code.forged"
NO_MAC = "code.no_mac"
BAD_FIELD = "code.bad_field"
NO_CATEGORY = "code.no_category"
OTHER_ORG = "code.other_org"  # with org=


@dataclass(frozen=True)
class Code:
    kind: str
    org: str
    ident: str
    extra: str = ""
    source: str = SOURCE  # "wastecart" or the name of the configured external format

    @property
    def category(self) -> str | None:
        return CATEGORY_LETTERS.get(self.extra) if self.kind == "B" else None


def check_chars(text: str) -> str:
    n = 0
    for c in text:
        n = (n * 36 + _VALUES[c]) % _MOD
    return _B36[n // 36] + _B36[n % 36]


def mac_chars(key: bytes, body: str) -> str:
    """Truncated HMAC-SHA256 in base 36; 64 bits reduced mod 36**6, so the bias is ~1e-10."""
    return base36(int.from_bytes(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()[:8], "big"), MAC_CHARS)


def base36(n: int, width: int) -> str:
    """The last ``width`` base-36 digits of ``n`` (zero-padded): QR alphanumeric, uppercase."""
    out = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return out


def load_mac_key(path: Path) -> bytes:
    """The organisation's MAC key: a file of hex digits (whitespace around ignored) or raw bytes.

    Raises CodeError naming the file, so a cart with a missing or weak key stops at start-up.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CodeError("code.key_unreadable", path=path, reason=exc.strerror) from exc
    key = bytes.fromhex(raw.strip().decode("ascii")) if _HEX_KEY.fullmatch(raw.strip()) else raw
    if len(key) < MIN_KEY_BYTES:
        raise CodeError("code.key_short", path=path, size=len(key), min=MIN_KEY_BYTES)
    return key


def encode(code: Code, key: bytes | None = None) -> str:
    """Our payload for ``code``; signed (``WS1``) when a key is given."""
    if code.kind not in KINDS:
        raise CodeError("code.unknown_kind", kind=repr(code.kind), kinds="".join(KINDS))
    fields = [SIGNED if key else VERSION, code.kind, code.org, code.ident] + ([code.extra] if code.extra else [])
    for f in fields[2:]:
        if not _FIELD.match(f):
            raise CodeError("code.bad_value", field=repr(f))
    body = ".".join(fields)
    if key:
        body += "." + mac_chars(key, body)
    return f"{body}.{check_chars(body)}"


def decode(text: str, org: str | None = None) -> Code:
    """Parse one of our payloads (no key, no external formats); CodeError says why it is refused."""
    return CodeBook(org).decode(text)


def category_name(value: str) -> str:
    """A category letter (I, S, …) or wire name (INFECTIOUS, …) -> the wire name; ValueError if neither."""
    if value in CATEGORY_LETTERS:
        return CATEGORY_LETTERS[value]
    if value in LETTER_OF:
        return value
    raise ValueError(f"unknown category {value!r}; use a letter of {''.join(CATEGORY_LETTERS)} "
                     f"or one of {', '.join(sorted(LETTER_OF))}")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """An external format's regex; ValueError if it does not compile or has no ``(?P<ident>…)``."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    if "ident" not in compiled.groupindex:
        raise ValueError("needs a named group (?P<ident>…) for the code's number")
    return compiled


@dataclass(frozen=True)
class ExternalFormat:
    """A configured foreign payload: ``pattern`` must match the whole text."""

    name: str  # shown to people and recorded as Code.source, e.g. "医院工牌"
    pattern: re.Pattern[str]
    kind: str
    category: str | None = None  # fixed wire category (bags), unless the pattern has a ``category`` group


class CodeBook:
    """What this cart accepts: its organisation, optional MAC key and policy, external formats."""

    def __init__(self, org: str | None = None, *, key: bytes | None = None, require_mac: bool = False,
                 external: Sequence[ExternalFormat] = ()) -> None:
        if require_mac and not key:
            raise CodeError("code.require_mac_without_key")
        self.org = org
        self.key = key
        self.require_mac = require_mac
        self.external = tuple(external)

    def encode(self, code: Code) -> str:
        return encode(code, self.key)

    def decode(self, text: str) -> Code:
        """Our payload or a configured format -> Code; CodeError's key (one of the verdicts above) is why not."""
        text = text.strip()
        if text.split(".", 1)[0] in (VERSION, SIGNED):
            return self._ours(text)
        for fmt in self.external:
            m = fmt.pattern.fullmatch(text)
            if m:
                return self._external(fmt, m)
        raise CodeError(NOT_OURS)

    def _ours(self, text: str) -> Code:
        parts = text.split(".")
        signed = parts[0] == SIGNED
        if not set(text) <= _VALUES.keys() or len(parts) < 5 + signed:
            raise CodeError(NOT_OURS)
        body, _, check = text.rpartition(".")
        if check != check_chars(body):
            raise CodeError(DAMAGED)
        fields = parts[1:-1]
        mac = fields.pop() if signed else None
        kind, code_org, ident, *extra = fields
        if (kind not in KINDS or len(extra) > 1 or not all(_FIELD.match(f) for f in (code_org, ident, *extra))
                or (mac is not None and not _MAC.match(mac))):
            raise CodeError(BAD_FIELD)
        if self.org is not None and code_org != self.org:
            raise CodeError(OTHER_ORG, org=code_org)
        if mac is None:
            if self.require_mac:
                raise CodeError(NO_MAC)
        elif self.key is not None and not hmac.compare_digest(mac, mac_chars(self.key, body.rpartition(".")[0])):
            raise CodeError(FORGED)
        if kind == "B" and (not extra or extra[0] not in CATEGORY_LETTERS):
            raise CodeError(NO_CATEGORY)
        return Code(kind, code_org, ident, extra[0] if extra else "")

    def _external(self, fmt: ExternalFormat, m: re.Match[str]) -> Code:
        ident = m.group("ident") or ""
        if not _FIELD.match(ident):
            raise CodeError("code.external_ident", format=fmt.name, ident=repr(ident))
        category = fmt.category
        if "category" in m.re.groupindex and m.group("category") is not None:
            try:
                category = category_name(m.group("category"))
            except ValueError:
                raise CodeError("code.external_category", format=fmt.name, category=repr(m.group("category"))) \
                    from None
        letter = LETTER_OF[category] if category and fmt.kind == "B" else ""
        return Code(fmt.kind, self.org or "", ident, letter, fmt.name)
