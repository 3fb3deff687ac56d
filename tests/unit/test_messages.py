"""The message catalogue: every key the code says exists in both languages, and every entry is said.

Code carries keys (``msg("ok.saved_handover", seq=…)``, ``CodeError("code.damaged")``); a typo in a
key would only show on a screen as the key itself, so this reads the source for every key it uses.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from edge import messages
from edge.errors import CodeError, EdgeError
from edge.messages import Msg, Text, msg, t

ROOT = Path(__file__).resolve().parents[2]
KEY_CALLS = {"msg", "t", "Msg"}  # and every call of a name ending in "Error" from edge.errors
DYNAMIC = ("title.", "prompt.")  # keys built from a step's name (tests/unit/test_workflow_view.py checks them)


def said() -> dict[str, str]:
    """key -> where it is said (file:line), for every literal key passed to a message call in edge/."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "edge").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func.id if isinstance(node.func, ast.Name) else (
                node.func.attr if isinstance(node.func, ast.Attribute) else "")
            first = node.args[0]
            if (func in KEY_CALLS or func.endswith("Error")) and isinstance(first, ast.Constant) \
                    and isinstance(first.value, str) and first.value:
                found.setdefault(first.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_key_said_is_in_the_catalogue() -> None:
    assert said()["agent.no_printer"].startswith("edge/agent.py")  # the scan does find keys
    missing = {k: where for k, where in said().items() if k not in messages.CATALOGUE}
    # ValueError / TypeError texts (not ours) may be plain words; ours must be keys.
    ours = {k: w for k, w in missing.items() if "." in k and " " not in k and k.isascii()}
    assert not ours, f"message keys not in the catalogue: {ours}"


def test_every_entry_is_said_somewhere() -> None:
    source = "\n".join(p.read_text("utf-8") for p in (ROOT / "edge").rglob("*.py"))
    unused = [k for k in messages.CATALOGUE
              if not k.startswith(DYNAMIC) and f'"{k}"' not in source and f"'{k}'" not in source]
    assert not unused, f"catalogue entries nothing says: {unused}"


def test_entries_have_both_languages_with_the_same_fields() -> None:
    for key, (zh, en) in messages.CATALOGUE.items():
        assert zh.strip() and en.strip(), key
        assert messages.fields_of(zh) == messages.fields_of(en), key


def test_a_parameter_in_words_takes_each_languages_side() -> None:
    reason = Text("磁盘已满", "disk full")
    expected = Text("保存失败，请重试：磁盘已满", "Could not save, try again: disk full")
    assert t("err.commit_failed", reason=reason) == expected
    nested = msg("err.commit_failed", reason=msg("agent.wrong_pin"))
    assert (nested.zh, nested.en) == ("保存失败，请重试：PIN 错误，请重新输入", "Could not save, try again: wrong PIN")


def test_an_error_carries_its_key_and_reads_as_one_line() -> None:
    exc = EdgeError("agent.no_printer")
    assert exc.key == "agent.no_printer" and exc.msg == Msg("agent.no_printer", {})
    assert str(exc) == "未配置打印机，请扫描已有标签 (no printer configured)"
    with pytest.raises(CodeError) as info:
        raise CodeError("err.foreign_org", org="H2")
    assert info.value.msg.text == t("err.foreign_org", org="H2") and "H2" in str(info.value)


def test_an_unknown_key_shows_as_itself_and_never_raises() -> None:
    assert t("no.such.key") == Text("no.such.key", "no.such.key")
    assert not msg("") and msg("").as_json() is None
