"""Imports flow one way (DESIGN §2): gateway → edge.wire only; sim_devices → nothing of ours;
edge.wire → stdlib + cryptography.  Checked on the source, so a lazy import inside a function
counts too."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("edge", "gateway", "sim_devices", "wastecart")


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", sources("gateway"), ids=str)
def test_gateway_imports_only_the_wire_contract_from_edge(path: Path) -> None:
    for name in imports(path):
        top = name.split(".")[0]
        if top == "edge":
            assert name in ("edge", "edge.wire") or name.startswith("edge.wire."), f"{path.name} imports {name}"
        assert top not in ("sim_devices", "wastecart"), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", sources("sim_devices"), ids=str)
def test_simulators_share_no_code_with_what_they_simulate(path: Path) -> None:
    bad = {n for n in imports(path) if n.split(".")[0] in ("edge", "gateway", "wastecart")}
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", sources("edge"), ids=str)
def test_edge_does_not_reach_into_the_gateway_or_the_cli(path: Path) -> None:
    bad = {n for n in imports(path) if n.split(".")[0] in ("gateway", "sim_devices", "wastecart")}
    assert not bad, f"{path.name} imports {bad}"


def test_wire_contract_needs_only_stdlib_and_cryptography() -> None:
    for name in imports(ROOT / "edge" / "wire.py"):
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or top in ("cryptography", "__future__") or name in (
            "edge", "edge.wire"), f"edge/wire.py imports {name}"


def test_the_check_sees_imports() -> None:
    """Guard against a check that could not fail: it does see gateway's import of the wire module."""
    found = set().union(*(imports(p) for p in sources("gateway")))
    assert "edge.wire" in found or "edge" in found


def test_gateway_path_needs_none_of_the_cart_extras() -> None:
    """A gateway host installs no OpenCV, zxing, pyzbar or pyserial (the ``edge`` extra)."""
    import subprocess

    code = ("import sys; from wastecart.cli import build; build(); import gateway.app, wastecart.cmd_gateway; "
            "bad = {'cv2', 'zxingcpp', 'pyzbar', 'serial', 'qrcode', 'numpy'} & set(sys.modules); "
            "print(', '.join(sorted(bad))); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, f"imported at CLI/gateway start: {proc.stdout.strip()} {proc.stderr}"
