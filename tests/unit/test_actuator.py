"""The slide-out actuator: travel to each end stop, the watchdog on a jam, gpiozero's real pin logic.

GPIO pins cannot exist here, so ``GpioDrive`` runs on gpiozero's own MockFactory pins: the same
Motor/Button code as on the Pi, with the end-stop switches closed by the test.
"""

from __future__ import annotations

import threading

import pytest
from gpiozero.pins.mock import MockFactory  # type: ignore[import-untyped]

from edge.devices.actuator import Actuator, GpioDrive, SimDrive
from edge.messages import NO_MSG, Msg


class States:
    """Collects state changes; ``wait_for(state)`` blocks on a condition (no sleep polling)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Msg]] = []
        self._cond = threading.Condition()

    def __call__(self, state: str, reason: Msg) -> None:
        with self._cond:
            self.seen.append((state, reason))
            self._cond.notify_all()

    def wait_for(self, state: str, timeout: float = 3.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: bool(self.seen) and self.seen[-1][0] == state, timeout)


def test_sim_drive_travels_both_ways() -> None:
    states = States()
    act = Actuator(SimDrive(travel_s=0.02), timeout_s=2, on_state=states)
    assert act.state == "retracted"
    act.extend()
    assert states.wait_for("extended")
    act.extend()  # already there: no new travel
    act.retract()
    assert states.wait_for("retracted")
    assert [s for s, _ in states.seen] == ["extending", "extended", "retracting", "retracted"]
    act.close()


def test_jammed_slide_becomes_a_fault_with_a_reason_and_recovers() -> None:
    states = States()
    drive = SimDrive(travel_s=0.02)
    act = Actuator(drive, timeout_s=0.1, on_state=states)
    drive.jam()
    act.extend()
    assert states.wait_for("fault")
    assert "终点开关" in act.reason and "end stop not reached" in act.reason
    drive.jam(False)
    act.retract()  # the operator clears the jam; the next command moves it again
    assert states.wait_for("retracted")
    assert act.reason == NO_MSG
    act.close()


@pytest.fixture
def pins() -> MockFactory:
    return MockFactory()


def test_gpio_drive_runs_the_motor_until_the_end_stop_closes(pins: MockFactory) -> None:
    states = States()
    drive = GpioDrive(forward_pin=17, backward_pin=18, extended_pin=23, retracted_pin=24, pin_factory=pins)
    pins.pin(24).drive_low()  # the retracted end stop is closed at power-on
    act = Actuator(drive, timeout_s=2, on_state=states)
    assert act.state == "retracted"
    act.extend()
    assert (pins.pin(17).state, pins.pin(18).state) == (True, False)  # motor forward
    pins.pin(24).drive_high()  # leaves the retracted end
    pins.pin(23).drive_low()   # reaches the extended end
    assert states.wait_for("extended")
    assert (pins.pin(17).state, pins.pin(18).state) == (False, False)  # motor stopped
    act.retract()
    assert (pins.pin(17).state, pins.pin(18).state) == (False, True)
    pins.pin(23).drive_high()
    pins.pin(24).drive_low()
    assert states.wait_for("retracted")
    act.close()


def test_gpio_broken_end_stop_stops_the_motor(pins: MockFactory) -> None:
    states = States()
    drive = GpioDrive(forward_pin=17, backward_pin=18, extended_pin=23, retracted_pin=24, pin_factory=pins)
    act = Actuator(drive, timeout_s=0.1, on_state=states)
    assert act.state == "unknown"  # neither end stop closed at start-up
    act.extend()
    assert states.wait_for("fault")
    assert (pins.pin(17).state, pins.pin(18).state) == (False, False)  # never left running
    act.close()


def test_both_end_stops_closed_is_not_an_end(pins: MockFactory) -> None:
    drive = GpioDrive(forward_pin=17, backward_pin=18, extended_pin=23, retracted_pin=24, pin_factory=pins)
    pins.pin(23).drive_low()
    pins.pin(24).drive_low()
    assert drive.at_end() is None
    drive.close()
