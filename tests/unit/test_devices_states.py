"""Every state a device can report is a state the catalogue lists for it, and the other way round:
telemetry and the kiosk's status bar carry only ``catalogue.DEVICES`` words (the app itself
reports "none" for a device that is not fitted)."""

from __future__ import annotations

import pytest

from edge import catalogue
from edge.devices import actuator
from edge.devices.camera import State
from edge.devices.scales import reader

NOT_FITTED = {"none"}  # reported by edge.app when the config has no such device


@pytest.mark.parametrize(("device", "states"), [
    ("scale", reader.STATES),
    ("camera", tuple(State)),
    ("actuator", actuator.STATES),
])
def test_device_states_are_the_catalogues(device: str, states: tuple[str, ...]) -> None:
    assert set(states) | NOT_FITTED == set(catalogue.DEVICES[device])
    assert all(s in catalogue.DEVICE_STATE for s in states)
