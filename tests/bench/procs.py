"""Starting and stopping ``wastecart`` commands as their own processes, as deployed (own GILs)."""

from __future__ import annotations

import signal
import subprocess
import sys

STOP_TIMEOUT_S = 30.0  # a gateway drains its queue on SIGTERM; past this it is killed


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "wastecart.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
