"""`wastecart scale read --protocol auto` through a real pty, for every simulated protocol.

Found by hand before this test existed: command-mode protocols answered one probe only (too few
frames to be sure), 7E1 protocols could not be opened on a pty, and a reversed "=" stream was read
as the forward format — 5,200 g for 2,500 g.  Formats that read different weights from the same
bytes must be refused, never guessed (reference §4.3).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sim_devices.scales import SIMS, VirtualScale

NEVER_GUESSED = {"yaohua-eq-r", "yaohua-eq-f"}  # the same bytes, different weights


@pytest.mark.parametrize("protocol", sorted(SIMS))
def test_auto_detects_and_reads_or_refuses_to_guess(protocol: str) -> None:
    with VirtualScale(protocol, rate_hz=20) as scale:
        scale.set_load(2500, settle_s=0)
        proc = subprocess.run(
            [sys.executable, "-m", "wastecart.cli", "scale", "read", "--port", scale.path, "--protocol", "auto",
             "--baud", "9600", "--count", "1", "--json", "--timeout", "10"],
            capture_output=True, text=True, timeout=90, check=False)
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert lines, proc.stderr
    found = lines[0]
    if protocol in NEVER_GUESSED:
        assert found["conflicting"], found
        assert "--protocol" in lines[1]["error"]
        assert proc.returncode == 1
        return
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert found["detected"] == protocol or protocol in found["ambiguous_with"], found
    assert not found["conflicting"]
    assert lines[1]["weight_g"] == 2500
