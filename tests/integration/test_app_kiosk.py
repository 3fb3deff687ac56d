"""The cart agent as the kiosk's source, over real HTTP: actions and PINs reach the workflow, the
screen model carries the device block, and a restarted cart still knows what it carries (replay)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge import codes, pins
from edge.app import EdgeApp
from edge.config import ActuatorConfig, CameraConfig, EdgeConfig, KioskConfig, ScaleConfig, WorkflowConfig
from sim_devices.camera import SimCamera
from sim_devices.scales import VirtualScale
from wastecart.broker import PrivateBroker

ORG = "H330100001"
PIN = "2468"


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return dict(json.load(r))


def _post(url: str, body: dict[str, Any]) -> int:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class Cart:
    def __init__(self, broker: PrivateBroker, root: Path) -> None:
        self.scale = VirtualScale("toledo", rate_hz=20.0)
        self.scale.start()
        self.camera = SimCamera(root / "camera")
        self.cfg = EdgeConfig(
            org=ORG, cart="CART-K1", data=root / "cart", broker=broker.url,
            scale=ScaleConfig(port=self.scale.path), camera=CameraConfig(url=self.camera.url, fps=20, repeat_s=0),
            actuator=ActuatorConfig(kind="sim", travel_s=0.05), kiosk=KioskConfig(port=0),
            workflow=WorkflowConfig(pins={"NUR-01": pins.hash_pin(PIN, iterations=1000)}))
        self.start()

    def start(self) -> None:
        self.app = EdgeApp(self.cfg)
        self.app.start()
        assert self.app.kiosk is not None
        self.url = self.app.kiosk.url

    def show(self, kind: str, ident: str, extra: str = "") -> None:
        self.camera.show(codes.encode(codes.Code(kind, ORG, ident, extra)))

    def wait(self, what: str, predicate: Any) -> None:
        assert self.app.wait_until(predicate, 10), f"{what}: {self.app.state.step} {self.app.state.error}"

    def stop(self) -> None:
        self.app.stop()


@pytest.fixture
def cart(broker: PrivateBroker, tmp_path: Path) -> Iterator[Cart]:
    c = Cart(broker, tmp_path)
    yield c
    c.stop()
    c.scale.stop()


def _weighing_at(cart: Cart, dept: str, grams: int) -> None:
    """Collector badge, department code, the slide-out out, a load settled at ``grams``."""
    cart.show("S", "COL-1")
    cart.wait("round", lambda s: s.step == "round")
    cart.show("D", dept)
    cart.wait("stop, slide out", lambda s: s.step == "stop" and s.actuator == "extended")
    cart.scale.set_load(grams, settle_s=0.1, noise_g=0)
    cart.wait("settled", lambda s: s.weight is not None and s.weight.stable and s.weight.net_g == grams)


def _one_bag_stop(cart: Cart, bag: str) -> None:
    _weighing_at(cart, "D01", 1500)
    cart.show("B", bag, "I")
    cart.wait("line", lambda s: len(s.lines) == 1)


def test_pin_confirms_over_http_and_a_wrong_pin_is_refused(cart: Cart) -> None:
    _one_bag_stop(cart, "B0001")
    model = _get(cart.url + "api/state")
    assert model["device"]["actuator"] == "extended" and model["device"]["unsent"] == 0
    assert [ln["package_code"] for ln in model["lines"]] == ["B0001"]
    assert _post(cart.url + "api/action", {"id": "no_such_action"}) == 400
    assert _post(cart.url + "api/action", {"id": "confirm"}) == 202
    cart.wait("nurse screen", lambda s: s.step == "confirm")
    assert _post(cart.url + "api/action", {"id": "confirm_pin", "value": "0000"}) == 202
    cart.wait("wrong PIN refused", lambda s: "PIN" in s.error)
    assert cart.app.ledger.head() == 0
    assert _post(cart.url + "api/action", {"id": "confirm_pin", "value": PIN}) == 202
    cart.wait("saved", lambda s: s.last_seq == 1)
    body = cart.app.ledger.bodies(["handover"])[0][3]
    assert body["from_party"]["person_id"] == "NUR-01"
    model = _get(cart.url + "api/state")
    assert model["saved_seq"] == 1 and model["device"]["unsent"] == 1  # no gateway here: it stays unsent
    assert model["device"]["actuator"] in ("retracting", "retracted")


def test_restarted_cart_still_refuses_a_bag_it_already_carries(cart: Cart) -> None:
    _one_bag_stop(cart, "B0042")
    cart.show("S", "NUR-01")
    cart.wait("saved", lambda s: s.last_seq == 1)
    cart.stop()
    cart.start()  # a reboot: the workflow state is rebuilt from the ledger
    assert [b.package_code for b in cart.app.state.carried] == ["B0042"]
    _weighing_at(cart, "D02", 900)
    cart.show("B", "B0042", "I")
    cart.wait("refused", lambda s: "B0042" in s.error)
    assert not cart.app.state.lines


def test_printing_without_a_printer_says_so_and_keeps_the_bag_pending(cart: Cart) -> None:
    _weighing_at(cart, "D01", 700)
    cart.app.agent.act("choose:SHARPS", None)
    cart.wait("chosen", lambda s: s.pending is not None)
    cart.app.agent.act("print_label", None)
    cart.wait("print failed", lambda s: "打印机" in s.error)
    assert not cart.app.state.lines
