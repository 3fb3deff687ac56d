"""The cart agent as the kiosk's source, over real HTTP: actions and PINs reach the workflow, the
screen model carries the device block, and a restarted cart still knows what it carries (replay)."""

from __future__ import annotations

import json
import queue
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from edge import codes, pins, wire
from edge.app import EdgeApp
from edge.config import ActuatorConfig, CameraConfig, EdgeConfig, KioskConfig, ScaleConfig, WorkflowConfig
from edge.ledger.settings import UplinkSettings
from sim_devices.camera import SimCamera
from sim_devices.scales import VirtualScale
from wastecart.broker import PrivateBroker

ORG = "H330100001"
PIN = "2468"
GATEWAY = Ed25519PrivateKey.generate()  # the test is the gateway: it signs the reject


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
            workflow=WorkflowConfig(pins={"NUR-01": pins.hash_pin(PIN, iterations=1000)}),
            uplink=UplinkSettings(gateway_keys=(wire.public_key_text(GATEWAY.public_key()),)))
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
    _clear_retained_status(broker)


def _clear_retained_status(broker: PrivateBroker) -> None:
    """No retained status left on the session's broker: a gateway of a later test would see a cart
    it has no key for."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-kiosk-clear")
    host, port, _ = wire.broker_address(broker.url)
    client.connect(host, port)
    client.loop_start()
    try:
        client.publish(wire.topic(ORG, "CART-K1", wire.STATUS), b"", qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


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


def test_a_record_the_gateway_rejects_shows_on_the_status_bar(cart: Cart, broker: PrivateBroker) -> None:
    """A signed reject: the device block counts it (the kiosk's red pill) and the birth and
    telemetry carry it, signed with the cart's own key."""
    _one_bag_stop(cart, "B0007")
    cart.show("S", "NUR-01")
    cart.wait("saved", lambda s: s.last_seq == 1)
    assert _get(cart.url + "api/state")["device"]["rejected"] == 0
    (rid, _type, seq, _body), = cart.app.ledger.bodies(["handover"])
    got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-kiosk-gateway")
    client.on_message = lambda _c, _u, m: got.put(m)
    host, port, _ = wire.broker_address(broker.url)
    client.connect(host, port)
    client.loop_start()
    try:
        sha = cart.app.ledger.payload_sha256(seq)
        assert sha is not None
        reject = wire.reject_body(rid, seq, "SCHEMA", "body does not match the record schema", sha)
        client.publish(wire.topic(ORG, "CART-K1", wire.ACK),
                       wire.sign_message(wire.REJECT_KIND, ORG, "CART-K1", reject, GATEWAY), qos=1)
        agent, deadline = cart.app.agent, time.monotonic() + 10
        version = agent.changes.version
        while agent.device()["rejected"] != 1 and time.monotonic() < deadline:
            version = agent.wait_changed(version, deadline - time.monotonic())
        model = _get(cart.url + "api/state")
        assert (model["device"]["rejected"], model["device"]["unsent"]) == (1, 0)
        client.subscribe(wire.topic(ORG, "CART-K1", wire.STATUS), qos=1)
        cart.stop()
        cart.start()  # a restart: the birth message counts it too
        while True:
            m = got.get(timeout=10)
            _kind, status = wire.open_message(m.payload, kinds=[wire.STATUS_KIND], site=ORG, cart="CART-K1",
                                              keys=[cart.app.key.public_key()])
            if status["state"] == "online" and status["boot_id"] == cart.app.uplink.boot_id:
                break
        assert status["rejected"] == 1 and status["scale"] and status["printer"] == "none"
        assert _get(cart.url + "api/state")["device"]["rejected"] == 1
    finally:
        client.disconnect()
        client.loop_stop()
