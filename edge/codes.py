"""Our QR payloads (DESIGN §4): versioned, typed, checked, short uppercase alphanumeric.

``WC1.<kind>.<org>.<ident>[.<extra>].<check>`` — only characters of QR's alphanumeric mode, so a
code stays small (version 2–3 at error correction Q).  ``check`` is two base-36 characters of a
weighted sum modulo 1271 (as ISO 7064 MOD 1271-36): every single wrong character and every swap
of two neighbours is caught, so a damaged or mistyped code is rejected, never misread.  (A MAC
with a per-organisation key, and configured external formats, come with the QR issue.)

Kinds: S staff badge, D department handover code, B bag / container label (extra = category
letter), R storage room, V vehicle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge.errors import CodeError

VERSION = "WC1"
KINDS = {"S": "staff badge", "D": "department", "B": "bag label", "R": "storage room", "V": "vehicle"}
# Category letter on a bag label -> wire category enum.
CATEGORY_LETTERS = {
    "I": "INFECTIOUS", "S": "SHARPS", "P": "PATHOLOGICAL", "D": "PHARMACEUTICAL", "C": "CHEMICAL",
}
_FIELD = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VALUES = {c: i for i, c in enumerate(_B36 + ".-_")}
_MOD = 1271  # 31 × 41, coprime with the radix 36 and > any character difference: no blind spots


@dataclass(frozen=True)
class Code:
    kind: str
    org: str
    ident: str
    extra: str = ""

    @property
    def category(self) -> str | None:
        return CATEGORY_LETTERS.get(self.extra) if self.kind == "B" else None


def check_chars(text: str) -> str:
    n = 0
    for c in text:
        n = (n * 36 + _VALUES[c]) % _MOD
    return _B36[n // 36] + _B36[n % 36]


def encode(code: Code) -> str:
    fields = [VERSION, code.kind, code.org, code.ident] + ([code.extra] if code.extra else [])
    for f in fields[2:]:
        if not _FIELD.match(f):
            raise CodeError(f"字段 {f!r} 不合法 (field must be 1-32 of A-Z 0-9 _ -)")
    body = ".".join(fields)
    return f"{body}.{check_chars(body)}"


def decode(text: str, org: str | None = None) -> Code:
    """Parse a scanned payload; CodeError says in Chinese (and English) why it is refused."""
    parts = text.strip().split(".")
    if len(parts) < 5 or parts[0] != VERSION or not set(text.strip()) <= _VALUES.keys():
        raise CodeError("不是本系统的二维码 (not a wastecart code)")
    body, check = ".".join(parts[:-1]), parts[-1]
    if check != check_chars(body):
        raise CodeError("二维码校验失败，可能已损坏 (check characters do not match: damaged or altered)")
    kind, code_org, ident, *extra = parts[1:-1]
    if kind not in KINDS or len(extra) > 1 or not all(_FIELD.match(f) for f in (code_org, ident, *extra)):
        raise CodeError("二维码格式错误 (unknown kind or bad field)")
    if kind == "B" and (not extra or extra[0] not in CATEGORY_LETTERS):
        raise CodeError("袋标签缺少废物类别 (bag label without a valid category letter)")
    if org is not None and code_org != org:
        raise CodeError(f"其他机构的二维码 ({code_org})，不能使用 (code of another organisation)")
    return Code(kind, code_org, ident, extra[0] if extra else "")
