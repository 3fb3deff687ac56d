"""MT-SICS, OHAUS and CAS over a real pty: VirtualScale → ScaleReader, commands, and the CLI."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
from pathlib import Path

import pytest
from serial import Serial

from edge.devices.scales import Reading, ScaleReader, open_port
from edge.devices.scales.mtsics import MtSicsParser
from sim_devices.scales import VirtualScale

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 5.0  # s: generous bound for one reading on a loaded CI machine
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PROTOCOLS = ["mt-sics", "ohaus", "cas"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_load_settles_to_the_exact_weight(protocol: str) -> None:
    readings: queue.Queue[Reading] = queue.Queue()
    with VirtualScale(protocol, rate_hz=25, seed=7) as sim:
        reader = ScaleReader(sim.path, protocol=protocol, on_reading=readings.put)
        reader.start()
        try:
            first = readings.get(timeout=WAIT_S)
            assert (first.weight_g, first.stable, first.protocol) == (0, True, protocol)
            sim.set_load(12345, settle_s=0.3, noise_g=20)
            seen: list[Reading] = []
            while not (seen and seen[-1].stable):
                r = readings.get(timeout=WAIT_S)
                assert r.error is None, r
                if seen or not (r.stable and r.weight_g == 0):  # skip frames sent before the load
                    seen.append(r)
        finally:
            reader.stop()
    assert seen[-1].weight_g == 12345
    assert len(seen) >= 2 and not any(r.stable for r in seen[:-1])
    assert reader.crashes == 0


def _lines(port: Serial, parser: MtSicsParser, until: int) -> list[Reading]:
    """Readings from a pyserial port until ``until`` have arrived (reads block ≤ READ_TIMEOUT_S)."""
    out: list[Reading] = []
    for _ in range(int(WAIT_S / 0.2)):
        out += parser.feed(port.read(64))
        if len(out) >= until:
            return out
    raise AssertionError(f"only {len(out)} readings")


def test_mt_sics_sir_streams_tare_and_reset() -> None:
    with VirtualScale("mt-sics", rate_hz=25) as sim:
        sim.set_load(2500, settle_s=0)
        port = open_port(sim.path, 9600)
        try:
            parser = MtSicsParser()
            port.write(b"SIR\r\n")
            assert {r.weight_g for r in _lines(port, parser, 5)} == {2500}  # one answer + the stream
            port.write(b"T\r\n")
            while parser.tare_g is None:
                _lines(port, parser, 1)
            assert parser.tare_g == 2500
            after = _lines(port, parser, 3)[-1]
            assert (after.weight_g, after.net, after.tare_g) == (0, True, 2500)
            port.write(b"@\r\n")
            while parser.serial is None:
                _lines(port, parser, 0)
            assert parser.serial == "1126493049"
            port.write(b"XYZ\r\n")
            assert any(r.error and r.error.startswith("ES") for r in _lines(port, parser, 1))
        finally:
            port.close()
    assert sim.commands[:3] == [b"SIR", b"T", b"@"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cli_reads_three_json_lines(protocol: str) -> None:
    with VirtualScale(protocol, rate_hz=25) as sim:
        sim.set_load(2500, settle_s=0)
        done = subprocess.run(
            [sys.executable, "-m", "wastecart.cli", "scale", "read", "--port", sim.path, "--protocol", protocol,
             "--count", "3", "--json", "--timeout", str(WAIT_S)],
            capture_output=True, text=True, env=ENV, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 3
    for line in lines:
        assert (line["protocol"], line["weight_g"], line["stable"], line["unit"]) == (protocol, 2500, True, "kg")
