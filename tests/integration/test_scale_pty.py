"""The scale over a real pty: VirtualScale → ScaleReader, and the two CLI commands as processes."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge.devices.scales import Reading, ScaleReader
from sim_devices.scales import VirtualScale

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 5.0  # s: generous bound for one frame / state change on a loaded CI machine
CLI = [sys.executable, "-m", "wastecart.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[VirtualScale]:
    with VirtualScale(rate_hz=25, seed=7, link=str(tmp_path / "scale0")) as scale:
        yield scale


def test_load_settles_to_the_exact_weight(sim: VirtualScale) -> None:
    readings: queue.Queue[Reading] = queue.Queue()
    reader = ScaleReader(sim.path, on_reading=readings.put)
    reader.start()
    try:
        assert readings.get(timeout=WAIT_S).weight_g == 0  # streaming; the platform is empty
        sim.set_load(12345, settle_s=0.3, noise_g=20)
        seen: list[Reading] = []
        while not (seen and seen[-1].stable):
            r = readings.get(timeout=WAIT_S)
            if seen or not (r.stable and r.weight_g == 0):  # skip frames sent before the load
                seen.append(r)
    finally:
        reader.stop()
    assert seen[-1].weight_g == 12345
    assert len(seen) >= 2 and not any(r.stable for r in seen[:-1])
    assert reader.state == "disconnected" and reader.crashes == 0


def test_reader_reconnects_when_the_port_comes_back(sim: VirtualScale) -> None:
    link = sim.link
    assert link is not None
    events: queue.Queue[str | int | None] = queue.Queue()
    reader = ScaleReader(
        link, on_reading=lambda r: events.put(r.weight_g), on_state=events.put, reconnect_s=0.05
    )

    def next_state() -> str | int | None:
        while isinstance(item := events.get(timeout=WAIT_S), int):
            pass
        return item

    reader.start()
    try:
        assert [next_state(), next_state()] == ["connecting", "connected"]
        sim.stop()  # the indicator is unplugged: the pty and the link vanish
        assert next_state() == "disconnected"
        assert reader.last_error is not None
        with VirtualScale(rate_hz=25, link=link) as again:
            again.set_load(500, settle_s=0)
            while events.get(timeout=WAIT_S) != 500:
                pass
    finally:
        reader.stop()


@contextmanager
def _cli_sim(*extra: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``wastecart sim scale`` as a process; yields it and the pty path from its first line."""
    with subprocess.Popen(
        [*CLI, "sim", "scale", "--protocol", "toledo", "--rate", "25", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.fullmatch(r"scale \(toledo\) on (\S+)\n", first)
        try:
            assert match, first
            yield proc, match.group(1)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=WAIT_S)
        assert proc.returncode == 0, err


def _read(port: str, *extra: str, timeout: float = WAIT_S,
          protocol: str = "toledo") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "scale", "read", "--port", port, "--protocol", protocol, "--json", "--timeout", str(timeout), *extra],
        capture_output=True, text=True, env=ENV, timeout=60, check=False,
    )  # fmt: skip


def test_cli_reads_n_json_lines_from_the_cli_sim() -> None:
    with _cli_sim("--weight", "2500") as (proc, port):
        done = _read(port, "--count", "3")
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        assert len(lines) == 3
        for line in lines:
            assert {k: line[k] for k in ("weight_g", "unit", "stable", "net", "overload", "protocol")} == {
                "weight_g": 2500, "unit": "kg", "stable": True, "net": False, "overload": False,
                "protocol": "toledo",
            }  # fmt: skip
            assert line["raw"].startswith("\x02")
        assert proc.stdin is not None
        proc.stdin.write("777\n")  # a person typing a load into the simulator
        proc.stdin.flush()
        done = _read(port, "--count", "60")  # 2.4 s at 25 Hz; the sim settles in 0.6 s
        weights = [(j["weight_g"], j["stable"]) for j in map(json.loads, done.stdout.splitlines())]
        assert weights[-1] == (777, True)


def test_cli_bad_port_is_one_line_error() -> None:
    done = _read("/dev/does-not-exist-scale", "--count", "1")
    assert done.returncode != 0
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert "/dev/does-not-exist-scale" in line


def test_cli_silent_port_times_out_with_exit_1() -> None:
    master, slave = os.openpty()  # a port that exists but where no indicator talks
    try:
        done = _read(os.ttyname(slave), timeout=0.5)
    finally:
        os.close(master)
        os.close(slave)
    assert done.returncode == 1
    assert "error" in json.loads(done.stdout)


def test_cli_reports_an_unplug_then_times_out(sim: VirtualScale) -> None:
    with subprocess.Popen(
        [*CLI, "scale", "read", "--port", sim.path, "--protocol", "toledo", "--json", "--timeout", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["weight_g"] == 0
        sim.stop()  # unplugged while reading
        out, err = proc.communicate(timeout=30)
    errors = [j["error"] for j in map(json.loads, out.splitlines()) if "error" in j]
    assert proc.returncode == 1, err
    assert errors[0].startswith("disconnected") and errors[-1].startswith("no frame")
    assert len(errors) == 2 and "Traceback" not in err


def test_cli_auto_detects_toledo_then_reads() -> None:
    with _cli_sim("--weight", "4321") as (_, port):
        done = _read(port, "--count", "2", protocol="auto")
    assert done.returncode == 0, done.stderr
    first, *lines = map(json.loads, done.stdout.splitlines())
    assert first["detected"] == "toledo" and first["confidence"] >= 0.8
    assert first["ambiguous_with"] == ["toledo-nochk"]  # the 17 bytes of a 18-byte frame read fine too
    assert [(j["weight_g"], j["protocol"]) for j in lines] == [(4321, "toledo"), (4321, "toledo")]


def test_cli_auto_finds_the_indicator_baud_and_7e1() -> None:
    """A 2400-baud 7E1 indicator: the pty carries the reader's speed, the sim garbles other speeds."""
    with _cli_sim("--weight", "800", "--line-baud", "2400", "--seven-e1") as (_, port):
        done = _read(port, "--count", "1", protocol="auto")
    assert done.returncode == 0, done.stderr
    first, reading = map(json.loads, done.stdout.splitlines())
    assert (first["detected"], first["baud"], first["framing"]) == ("toledo", 2400, "7E1")
    assert reading["weight_g"] == 800


def test_cli_sim_plays_a_script(tmp_path: Path) -> None:
    script = tmp_path / "bag.txt"
    script.write_text("load 2222 settle=0.2 noise=30\nwait 0.3\ndrift +1/s  # creep\n")
    with _cli_sim("--script", str(script)) as (_, port):
        done = _read(port, "--count", "40")  # 1.6 s at 25 Hz
    weights = [(j["weight_g"], j["stable"]) for j in map(json.loads, done.stdout.splitlines())]
    assert (2222, True) in weights


def test_cli_sim_rejects_a_bad_script_line(tmp_path: Path) -> None:
    script = tmp_path / "bad.txt"
    script.write_text("load 10\nfly 3\n")
    done = subprocess.run([*CLI, "sim", "scale", "--script", str(script)], capture_output=True, text=True,
                          env=ENV, timeout=60, check=False)
    assert done.returncode != 0
    assert "line 2" in done.stderr and "Traceback" not in done.stderr
