"""Fixtures for the fault-injection tests: a ``Stack`` of real processes per test, always torn down.

Part of ``make test`` (about a minute); alone: ``make faults``.  The disk-full test needs root for a
tmpfs (CI runs as root).  ``WASTECART_CHAOS_KILLS`` sets how often the cart is SIGKILLed (``make chaos``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import TLS, Stack


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the TLS broker (``WASTECART_FAULTS_TLS=1``) the broker refuses a peer without a certificate
    before any of the open-broker attacks can start: those tests are deselected, not skipped."""
    if not TLS:
        return
    chosen = [i for i in items if i.get_closest_marker("open_broker") is None]
    if len(chosen) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.get_closest_marker("open_broker")])
        items[:] = chosen


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def make_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """``make_stack(**options)`` -> a started-on-demand ``Stack`` in tmp_path; closed after the test,
    pass or fail, and checked to have left no process behind."""
    stacks: list[Stack] = []
    seen_pids: set[int] = set()

    def make(**options: Any) -> Stack:
        stack = Stack(tmp_path / f"stack{len(stacks) + 1}", **options)
        stacks.append(stack)
        return stack

    yield make

    for stack in stacks:
        seen_pids.update(stack.all_pids)
        if request.node.stash.get(_FAILED, False):  # the assertion message has the log tails
            sys.stderr.write(f"\nfull logs: {stack.logs}\n" + "\n".join(stack.events) + "\n")
        stack.close()
    stray = sorted(pid for pid in seen_pids if _alive(pid))
    assert not stray, f"processes left running after the test: {stray}"
