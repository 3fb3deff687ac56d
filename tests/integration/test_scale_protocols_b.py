"""Yaohua (five ids) and A&D over a real pty: VirtualScale → ScaleReader, and ``wastecart scale read``.

``yaohua-tf1`` is command mode: its commands are ``STX … ETX`` without CR/LF, which
``VirtualScale`` (it splits commands on CR/LF) never hands to the simulator, so its VirtualScale
test is a strict xfail; a small responder here plays the indicator on a raw pty instead, answering
with the simulator's ``answer``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import subprocess
import sys
import threading
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.devices.scales import Reading, ScaleReader
from sim_devices.scales import ScaleState, VirtualScale
from sim_devices.scales.yaohua import Tf1Sim

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 5.0  # s: generous bound for one frame on a loaded CI machine
CLI = [sys.executable, "-m", "wastecart.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
STREAMING = ["yaohua-tf0", "yaohua-eq-r", "yaohua-eq-f", "yaohua-a12", "ad"]
HAS_FLAG = {"ad"}


def _settles(readings: queue.Queue[Reading], protocol: str, load: Callable[[], None]) -> list[Reading]:
    """Readings after ``load()`` until the exact weight (stable, where the protocol says so)."""
    assert readings.get(timeout=WAIT_S).protocol == protocol  # the reader is receiving
    load()
    seen: list[Reading] = []
    while True:
        r = readings.get(timeout=WAIT_S)
        if not seen and r.weight_g in (0, None):
            continue  # frames from before the load arrived
        seen.append(r)
        if r.weight_g == 12345 and (protocol not in HAS_FLAG or r.stable):
            return seen


@pytest.mark.parametrize("protocol", STREAMING)
def test_virtual_scale_settles_to_the_exact_weight(protocol: str) -> None:
    readings: queue.Queue[Reading] = queue.Queue()
    with VirtualScale(protocol, rate_hz=25, seed=7) as sim:
        reader = ScaleReader(sim.path, protocol=protocol, on_reading=readings.put)
        reader.start()
        try:
            seen = _settles(readings, protocol, lambda: sim.set_load(12345, settle_s=0.3, noise_g=20))
        finally:
            reader.stop()
    assert seen[-1].weight_g == 12345 and all(r.protocol == protocol for r in seen)
    assert all(r.error is None for r in seen)
    if protocol in HAS_FLAG:
        assert not any(r.stable for r in seen[:-1])
    # else: ``stable`` comes from the reader's stability detector, not from these frames
    assert reader.crashes == 0


def test_virtual_scale_answers_tf1_polls() -> None:
    readings: queue.Queue[Reading] = queue.Queue()
    with VirtualScale("yaohua-tf1", rate_hz=25, seed=7) as sim:
        reader = ScaleReader(sim.path, protocol="yaohua-tf1", on_reading=readings.put)
        reader.start()
        try:
            readings.get(timeout=2.0)
        finally:
            reader.stop()


@contextlib.contextmanager
def tf1_indicator() -> Iterator[tuple[str, list[ScaleState]]]:
    """A raw pty whose master answers STX…ETX commands with ``Tf1Sim``; yields (path, [state])."""
    master, slave = os.openpty()
    tty.setraw(slave)
    state = [ScaleState(0, motion=False)]
    stop = threading.Event()
    sim = Tf1Sim()

    def serve() -> None:
        pending = b""
        while not stop.is_set():
            if not select.select([master], [], [], 0.05)[0]:
                continue
            try:
                pending += os.read(master, 4096)
            except OSError:  # the slave side closed between sessions
                continue
            *commands, pending = pending.split(b"\x03")
            for command in commands:
                reply = sim.answer(command + b"\x03", state[0])
                if reply:
                    os.write(master, reply)

    thread = threading.Thread(target=serve, name="tf1-indicator", daemon=True)
    thread.start()
    try:
        yield os.ttyname(slave), state
    finally:
        stop.set()
        thread.join()
        os.close(master)
        os.close(slave)


def test_tf1_reader_polls_and_reaches_the_exact_weight() -> None:
    readings: queue.Queue[Reading] = queue.Queue()
    with tf1_indicator() as (path, state):
        reader = ScaleReader(path, protocol="yaohua-tf1", on_reading=readings.put)
        reader.start()
        try:
            def load() -> None:
                state[0] = ScaleState(12_000, motion=True)
                state[0] = ScaleState(12345, motion=False)

            seen = _settles(readings, "yaohua-tf1", load)
        finally:
            reader.stop()
    assert seen[-1].weight_g == 12345 and seen[-1].net is False


def _cli_read(port: str, protocol: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [*CLI, "scale", "read", "--port", port, "--protocol", protocol, "--count", "3", "--json",
         "--timeout", str(WAIT_S)],
        capture_output=True, text=True, env=ENV, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("protocol", STREAMING)
def test_cli_reads_three_json_lines(protocol: str) -> None:
    with VirtualScale(protocol, rate_hz=25) as sim:
        sim.set_load(2500, settle_s=0)
        lines = _cli_read(sim.path, protocol)
    assert len(lines) == 3
    assert all(line["protocol"] == protocol and line["weight_g"] == 2500 for line in lines)


def test_cli_reads_three_json_lines_tf1() -> None:
    with tf1_indicator() as (path, state):
        state[0] = ScaleState(2500, motion=False)
        lines = _cli_read(path, "yaohua-tf1")
    assert len(lines) == 3
    assert all(line["protocol"] == "yaohua-tf1" and line["weight_g"] == 2500 for line in lines)


@pytest.mark.parametrize("variant", ["balance", "clone"])
def test_ad_other_shapes_and_7e1_on_a_pty(variant: str) -> None:
    from sim_devices.scales.ad import AdSim

    readings: queue.Queue[Reading] = queue.Queue()
    with VirtualScale("ad", rate_hz=25, seed=7) as sim:
        sim.sim = AdSim(variant, parity=True)
        reader = ScaleReader(sim.path, protocol="ad", on_reading=readings.put)
        reader.start()
        try:
            seen = _settles(readings, "ad", lambda: sim.set_load(12345, settle_s=0.3, noise_g=20))
        finally:
            reader.stop()
    assert seen[-1].stable and seen[-1].weight_g == 12345
