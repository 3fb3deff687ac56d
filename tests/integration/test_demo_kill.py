"""A ``wastecart demo`` killed with SIGKILL runs no clean-up code: every helper process it started
(its private mosquitto) must still die with it, and give its port back."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.demo_proc import running_demo

WAIT_S = 10.0  # s: the demo's first round, and then the broker's exit after the kill


def _children(pid: int) -> set[int]:
    """Every live process whose parent is ``pid`` (from /proc: a Linux-only test, like the feature)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie left for an init that does not reap counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)  # the processes give no signal to wait on: poll /proc briefly, bounded
    return False


@pytest.mark.parametrize("secure", [False, True], ids=["plain", "secure"])
def test_a_demo_killed_with_sigkill_leaves_nothing_running(secure: bool) -> None:
    # the secure demo's broker runs as the mosquitto user: its folder must be reachable (pytest's
    # tmp_path lives under a 0700 folder)
    root = Path(tempfile.mkdtemp(prefix="wc-test-demo-kill-"))
    root.chmod(0o755)
    try:
        with running_demo(root / "demo", *(["--secure"] if secure else [])) as demo:
            found = re.search(r"^broker\s+mqtts?://[^:]+:(\d+)", demo.said, re.M)
            assert found and _listening(int(found[1])), demo.said
            broker_port = int(found[1])
            helpers = _children(demo.proc.pid)
            assert helpers, "the demo started no helper process: nothing to check"
            demo.proc.send_signal(signal.SIGKILL)
            demo.proc.wait(timeout=WAIT_S)
            assert _wait(lambda: not any(_alive(p) for p in helpers), WAIT_S), \
                f"still running after the demo was killed: {[p for p in helpers if _alive(p)]}"
            assert not _listening(broker_port)
    finally:
        shutil.rmtree(root, ignore_errors=True)
