"""Running ``wastecart`` commands as their own processes (as deployed: own GILs), for tests and
benches: start, stop with SIGTERM (kill if it hangs), and never leave one behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STOP_TIMEOUT_S = 30.0  # a gateway drains its queue on SIGTERM; past this it is killed


def spawn(*args: str, **popen: Any) -> subprocess.Popen[str]:
    """``wastecart ARGS…`` with stdout piped (where each command prints where it listens)."""
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.DEVNULL, "text": True, **popen}
    return subprocess.Popen([sys.executable, "-m", "wastecart.cli", *args], **options)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running(*args: str, **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """``spawn`` for a ``with`` block: whatever the block does, the process is gone after it."""
    proc = spawn(*args, **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
