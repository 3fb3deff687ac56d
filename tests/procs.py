"""Running ``wastecart`` commands as their own processes (as deployed: own GILs), for tests and
benches: start, stop with SIGTERM (kill if it hangs), and never leave one behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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
        dump_stacks(proc)
        proc.kill()
        proc.wait()


def dump_stacks(proc: subprocess.Popen[str]) -> None:
    """A process that would not stop: print where each of its threads is (py-spy, a dev dependency),
    so the failing test's captured output says why instead of only that it hung."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        return
    try:
        out = subprocess.run([str(py_spy), "dump", "--pid", str(proc.pid)], capture_output=True, text=True,
                             timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return
    print(f"threads of pid {proc.pid}, which did not stop:\n{out.stdout}{out.stderr}")


@contextmanager
def running(*args: str, **popen: Any) -> Iterator[subprocess.Popen[str]]:
    """``spawn`` for a ``with`` block: whatever the block does, the process is gone after it."""
    proc = spawn(*args, **popen)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            dump_stacks(proc)
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
