"""The README works: every `wastecart …` command and `make` target it names exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wastecart.cli import build

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")


def commands() -> list[list[str]]:
    found = []
    for line in README.splitlines():
        m = re.search(r"wastecart ((?:[a-z][a-z-]*(?:\|[a-z|]+)?(?:\s|$))+)", line)
        if m:
            words = m.group(1).split()
            for alt in words[1].split("|") if len(words) > 1 and "|" in words[1] else [None]:
                found.append([words[0]] + ([alt] if alt else words[1:2] if len(words) > 1 else []))
    return [list(c) for c in sorted({tuple(c) for c in found})]


def test_readme_names_commands() -> None:
    assert ["demo"] in commands()
    assert ["sim", "platform"] in commands()


@pytest.mark.parametrize("words", commands(), ids=" ".join)
def test_readme_command_exists(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    parser = build().parser
    with pytest.raises(SystemExit) as info:
        parser.parse_args([*words, "--help"])
    assert info.value.code == 0
    assert "usage: wastecart" in capsys.readouterr().out


@pytest.mark.parametrize("target", sorted(set(re.findall(r"^make (\w+)", README, re.M))))
def test_readme_make_targets_exist(target: str) -> None:
    assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), re.M), f"Makefile has no '{target}' target"


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in README.split("##")[0]
