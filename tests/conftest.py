"""Shared fixtures: one private mosquitto per test session (real process, free port)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wastecart.broker import PrivateBroker


@pytest.fixture(scope="session")
def broker() -> Iterator[PrivateBroker]:
    """A real mosquitto on a free loopback port, shared by the session; never the system one."""
    with PrivateBroker() as b:
        yield b
