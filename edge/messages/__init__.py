"""Every word the cart says to a person, as a Chinese/English pair, looked up by key.

Code never carries text: transitions emit a ``Msg`` (a key and its parameters) and exceptions
carry a key and parameters (``edge.errors.EdgeError``); the text is looked up where it is shown
(the kiosk's screen model, a log line, the CLI).  One catalogue, split by who says it, so wording
is reviewed in one place and each message exists in both languages (Chinese is primary:
collectors and nurses read it; English is for maintainers and auditors).  A parameter may itself
be a ``Msg`` or a ``Text`` (a category name, the reason of a refusal): each language takes its own
side of it.  Pure data plus lookup; no I/O.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge import catalogue
from edge.messages import codes, devices, labels, ledger, manifest, rules, screen, shell


@dataclass(frozen=True)
class Text:
    """A bilingual text.  Empty (both parts "") means "nothing to show"; ``in`` looks in both
    languages so callers can test for a phrase without caring which one they know."""

    zh: str = ""
    en: str = ""

    def __bool__(self) -> bool:
        return bool(self.zh or self.en)

    def __contains__(self, part: str) -> bool:
        return part in self.zh or part in self.en

    def __str__(self) -> str:
        return self.zh or self.en

    def as_json(self) -> dict[str, str] | None:
        return {"zh": self.zh, "en": self.en} if self else None

    def line(self) -> str:
        """One line for a log or the command line: ``中文 (English)``."""
        return self.zh if self.zh == self.en or not self.en else f"{self.zh} ({self.en})"


NONE = Text()

# key -> (zh, en); {fields} are filled by t().  Both sides' fields are identical (a test checks).
CATALOGUE: dict[str, tuple[str, str]] = {}
for _part in (screen, rules, codes, devices, labels, ledger, manifest, shell):
    _clash = CATALOGUE.keys() & _part.ENTRIES.keys()
    assert not _clash, f"message keys defined twice: {_clash}"
    CATALOGUE.update(_part.ENTRIES)


@dataclass(frozen=True)
class Msg:
    """A message key with its parameters: what a transition or an exception says, not yet in words."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> Text:
        return t(self.key, **self.params)

    @property
    def zh(self) -> str:
        return self.text.zh

    @property
    def en(self) -> str:
        return self.text.en

    def __bool__(self) -> bool:
        return bool(self.key)

    def __contains__(self, part: str) -> bool:
        return part in self.text or part == self.key

    def __str__(self) -> str:
        return self.text.line()

    def __hash__(self) -> int:
        return hash((self.key, tuple(sorted((k, repr(v)) for k, v in self.params.items()))))

    def as_json(self) -> dict[str, str] | None:
        return self.text.as_json() if self else None


NO_MSG = Msg("")


def msg(key: str, /, **params: Any) -> Msg:
    return Msg(key, params)


def category_name(category: str) -> Text:
    c = catalogue.CATEGORY.get(category)
    return Text(c.zh, c.en) if c else Text(category, category)


def t(key: str, /, **params: Any) -> Text:
    """The catalogue entry ``key`` with its ``{fields}`` filled in (missing fields stay visible;
    an unknown key shows as itself: a typo must not crash the screen, and a test finds them)."""
    if not key:
        return NONE
    zh, en = CATALOGUE.get(key, (key, key))
    return Text(_fill(zh, params, "zh"), _fill(en, params, "en"))


def _fill(template: str, params: Mapping[str, Any], lang: str) -> str:
    values = _Defaulting({k: _side(v, lang) for k, v in params.items()})
    return string.Formatter().vformat(template, (), values)


def _side(value: Any, lang: str) -> str:
    if isinstance(value, Msg):
        value = value.text
    if isinstance(value, Text):
        return value.zh if lang == "zh" else value.en
    return str(value)


class _Defaulting(dict[str, str]):
    """An absent field shows as ``{x}`` instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


_FIELDS = re.compile(r"\{(\w+)\}")


def fields_of(text: str) -> set[str]:
    return set(_FIELDS.findall(text))
