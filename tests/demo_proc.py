"""`wastecart demo` as a newcomer runs it, in a subprocess: started, read until it says it is still
running, and stopped (SIGTERM) afterwards.  Shared by the console tests that start from the demo."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STARTUP_S = 60.0  # s: the demo starts every part and scripts its round before it says it is still running


@dataclass(frozen=True)
class RunningDemo:
    proc: subprocess.Popen[str]
    said: str  # what it printed up to "demo still running": where each part listens
    url: str  # the operator console it printed, and its demo login
    user: str
    password: str


@contextmanager
def running_demo(data: Path, *args: str) -> Iterator[RunningDemo]:
    """The demo on ``data`` with ``args``; yields it with what it printed (a test may kill it)."""
    demo = subprocess.Popen([sys.executable, "-m", "wastecart.cli", "demo", "--rounds", "1", "--port", "0",
                             "--console-port", "0", "--data", str(data), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert demo.stdout is not None
        said = []
        deadline = time.monotonic() + STARTUP_S
        for line in demo.stdout:
            said.append(line)
            if "demo still running" in line or time.monotonic() > deadline:
                break
        found = re.search(r"^dashboard\s+(http://\S+/)\s.*log in as (\S+) / (\S+)", "".join(said), re.M)
        assert found, "".join(said)
        yield RunningDemo(demo, "".join(said), *found.groups())
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=30)
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
            for pipe in (demo.stdin, demo.stdout):
                if pipe is not None:
                    pipe.close()
