"""The platform failing 30 % of requests and down for a while; the platform slower than the
gateway's timeout (unknown outcomes): every record accepted once, re-deliveries only as counted."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from tests.faults.harness import Stack

pytestmark = pytest.mark.fault

FINISH_S = 60.0


def test_platform_flaky_and_down(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(carts=3, records=150, rate=100, platform_args=["--error-rate", "0.3"]).start()
    total = 3 * 150
    stack.wait_platform_count(int(total * 0.3))
    stack.control(down=True)
    threading.Event().wait(3.0)  # the outage: a fixed length, nothing to wait for
    stack.control(down=False)
    stack.wait_fleet_done(FINISH_S)
    stack.wait_delivered()
    stack.assert_exactly_once()


def test_platform_slow_unknown_outcomes(make_stack: Callable[..., Stack]) -> None:
    # The gateway gives up on a request after 0.5 s; the platform answers after 1 s but keeps what
    # it got: the gateway cannot know, re-sends, and must count what it re-sent.
    stack = make_stack(carts=3, records=100, rate=50, forward={"timeout_s": 0.5}).start()
    total = 3 * 100
    stack.wait_platform_count(int(total * 0.2))
    stack.control(latency_ms=1000)
    threading.Event().wait(3.0)  # the slow spell: a fixed length, nothing to wait for
    stack.control(latency_ms=0)
    stack.wait_fleet_done(FINISH_S)
    stack.wait_delivered()
    facts = stack.assert_exactly_once()
    assert facts["extra_receipts"] > 0, (
        "no record reached the platform twice: the slow spell did not produce an unknown outcome, "
        f"so this test proved nothing\n{stack.diagnostics()}")
