"""The layout keeps its promises (DESIGN §2, CONVENTIONS 1, 11, 12): imports flow one way, rooms stay small.

- gateway → only ``edge.wire``, ``edge.mqtt``, ``edge.tls`` and ``edge.worker`` of the cart's code;
- sim_devices → nothing of ours (a simulator that shares the parser it tests hides parser bugs);
- edge.wire → stdlib + cryptography;
- no import cycles among our modules, type-checking and lazy imports included;
- devices never import the config (the composition root hands them their settings);
- the config imports no service (no thread, socket, database or device driver behind a setting);
- no module in edge/ or gateway/ over 500 lines.

Checked on the source, so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("edge", "gateway", "sim_devices", "wastecart")
MAX_LINES = 500
GATEWAY_MAY_USE = ("edge.wire", "edge.mqtt", "edge.tls", "edge.worker", "edge.catalogue", "edge.backoff")
# What runs: threads, sockets, SQLite, drivers.  A settings model may not pull one of these in.
SERVICES = ("edge.app", "edge.agent", "edge.ledger.store", "edge.ledger.uplink", "edge.kiosk.server",
            "edge.kiosk.handler", "edge.mqtt", "edge.devices.camera", "edge.devices.scanner",
            "edge.devices.actuator", "edge.devices.scales.reader", "edge.devices.printer.transports")


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


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The modules of ours ``path`` imports: ``from pkg import name`` is pkg.name when that is a module
    (importing a submodule is not an import of its package's own code), else pkg."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names}
            found |= subs & modules if subs <= modules else (subs & modules) | {node.module}
    return found & modules


@cache
def graph() -> dict[str, set[str]]:
    """Our modules -> the modules of ours each imports."""
    modules = {module_name(p): p for top in ("edge", "gateway", "wastecart") for p in sources(top)}
    return {name: imported_modules(path, set(modules)) - {name} for name, path in modules.items()}


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph().get(todo.pop(), set()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("path", sources("gateway"), ids=str)
def test_gateway_imports_only_the_shared_modules_from_edge(path: Path) -> None:
    for name in imports(path):
        top = name.split(".")[0]
        if top == "edge":
            assert name == "edge" or any(name == m or name.startswith(m + ".") for m in GATEWAY_MAY_USE) or \
                name in {f"edge.{m.split('.')[1]}" for m in GATEWAY_MAY_USE}, f"{path.name} imports {name}"
        assert top not in ("sim_devices", "wastecart"), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", sources("sim_devices"), ids=str)
def test_simulators_share_no_code_with_what_they_simulate(path: Path) -> None:
    bad = {n for n in imports(path) if n.split(".")[0] in ("edge", "gateway", "wastecart")}
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", sources("edge"), ids=str)
def test_edge_does_not_reach_into_the_gateway_or_the_cli(path: Path) -> None:
    bad = {n for n in imports(path) if n.split(".")[0] in ("gateway", "sim_devices", "wastecart")}
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", sources("edge/wire"), ids=str)
def test_wire_contract_needs_only_stdlib_and_cryptography(path: Path) -> None:
    for name in imports(path):
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or top in ("cryptography", "__future__") or name == "edge" or \
            name.startswith("edge.wire"), f"{path.name} imports {name}"


def test_the_modules_the_gateway_shares_need_no_cart_code() -> None:
    """edge.mqtt, edge.tls and edge.worker stay as small as the wire contract: they import nothing else
    of edge (edge.mqtt applies edge.tls; edge.tls needs nothing of ours)."""
    allowed = {"mqtt": {"edge", "edge.wire", "edge.tls"}, "tls": set(), "worker": {"edge", "edge.wire"}}
    for shared, may in allowed.items():
        ours = {n for n in imports(ROOT / "edge" / f"{shared}.py") if n.split(".")[0] in OURS}
        assert ours <= may, f"edge/{shared}.py imports {ours}"
    assert "edge.tls" in imports(ROOT / "edge" / "mqtt.py")  # the check sees the import it allows


def test_no_import_cycles() -> None:
    """Every import of ours counts (type-checking and lazy ones too): a cycle is a layout that lies."""
    cycles = sorted(m for m in graph() if m in reachable(m))
    assert not cycles, f"modules on an import cycle: {cycles}"


@pytest.mark.parametrize("path", sources("edge/devices"), ids=str)
def test_devices_never_import_the_config(path: Path) -> None:
    bad = {n for n in imports(path) if n.startswith(("edge.config", "edge.app", "edge.agent", "wastecart.config"))}
    assert not bad, f"{path.name} imports {bad}: the composition root hands a device its settings"


def test_config_imports_no_service() -> None:
    """Validating a config starts no thread, opens no socket or file: what it reaches has no service."""
    reached = reachable("edge.config") | reachable("gateway.config")
    assert not reached & set(SERVICES), sorted(reached & set(SERVICES))


@pytest.mark.parametrize("path", sources("edge") + sources("gateway"), ids=str)
def test_every_module_is_a_room_you_can_name(path: Path) -> None:
    lines = len(path.read_text("utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES}): split it"


def test_the_checks_see_imports() -> None:
    """Guard against checks that could not fail: they do see what is there."""
    assert "edge.wire" in set().union(*(imports(p) for p in sources("gateway")))
    assert "edge.workflow.machine" in graph()["edge.workflow"] and "edge.config" in reachable("edge.app")
    assert "edge.devices.scales.reader" in reachable("edge.devices.scales")


def test_gateway_path_needs_none_of_the_cart_extras() -> None:
    """A gateway host installs no OpenCV, zxing, pyzbar or pyserial (the ``edge`` extra)."""
    import subprocess

    code = ("import sys; from wastecart.cli import build; build(); import gateway.app, wastecart.cmd_gateway; "
            "bad = {'cv2', 'zxingcpp', 'pyzbar', 'serial', 'qrcode', 'numpy'} & set(sys.modules); "
            "print(', '.join(sorted(bad))); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, f"imported at CLI/gateway start: {proc.stdout.strip()} {proc.stderr}"
