"""Shared fixtures: one private mosquitto per test session (real process, free port)."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from wastecart.broker import PrivateBroker

CLEAR_WAIT_S = 5.0  # s for the broker to hand over its retained messages and echo our marker


@pytest.fixture(scope="session")
def broker() -> Iterator[PrivateBroker]:
    """A real mosquitto on a free loopback port, shared by the session; never the system one."""
    with PrivateBroker() as b:
        yield b


@pytest.fixture(autouse=True)
def _no_retained_status_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that used the session broker leaves no retained message behind: a cart's retained
    status would otherwise reach the next test's gateway (which, rightly, quarantines a status it
    cannot verify and so counts one message more)."""
    yield
    if "broker" in request.fixturenames:
        clear_retained(request.getfixturevalue("broker"))


def clear_retained(broker: PrivateBroker) -> int:
    """Delete every retained message under our topic root; returns how many there were."""
    host, port, _ = wire.broker_address(broker.url)
    marker = f"wc-test/{uuid.uuid4().hex}"
    got: queue.Queue[tuple[str, bool]] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"wc-clear-{uuid.uuid4().hex[:8]}")
    client.on_message = lambda _c, _u, m: got.put((m.topic, bool(m.retain)))
    client.connect(host, port)
    client.loop_start()
    try:
        client.subscribe([(f"{wire.TOPIC_ROOT}/#", 0), (marker, 0)])
        client.publish(marker, b"x", qos=1)  # retained messages come before it on the same subscription
        retained: set[str] = set()
        while True:
            topic, retain = got.get(timeout=CLEAR_WAIT_S)
            if topic == marker:
                break
            if retain:
                retained.add(topic)
        for topic in retained:
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(CLEAR_WAIT_S)
        return len(retained)
    finally:
        client.disconnect()
        client.loop_stop()
