"""The cart agent as the kiosk's source, over real HTTP: actions and PINs reach the workflow, the
screen model carries the device block, and a restarted cart still knows what it carries (replay).
The rules of who signs (``edge.roster.example()``): a delivery with a bag missing is rejected with
the keeper's badge, a void takes a listed reason and a supervisor's PIN.
PINs: wrong ones back off and then lock entry (with the kiosk's message, a WARNING in the log and
telemetry sent at once), the lock expires, and a real gateway raises one PIN_LOCKOUT alert for it
(collapsed on the next); outside the nurse screen every PIN gets one answer."""

from __future__ import annotations

import json
import logging
import queue
import threading
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

from edge import codes, pins, roster, wire
from edge.app import EdgeApp
from edge.catalogue import VOID_REASONS
from edge.config import ActuatorConfig, CameraConfig, EdgeConfig, KioskConfig, ScaleConfig, WorkflowConfig
from edge.ledger.settings import UplinkSettings
from edge.messages import t
from gateway.app import GatewayApp
from sim_devices.camera import SimCamera
from sim_devices.platform import SimPlatform
from sim_devices.scales import VirtualScale
from tests.integration.test_gateway import WAIT_S, gateway_config
from wastecart.broker import PrivateBroker

ORG = "H330100001"
PIN = "2468"
SUPERVISOR_PIN = "8080"
COLLECTOR = "COL-01"  # edge.roster.example(): NUR-01 is a nurse of D01, KEEP-01 the keeper, SUP-01 a supervisor
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
    def __init__(self, broker: PrivateBroker, root: Path, pin: pins.PinPolicy | None = None,
                 telemetry_s: float = 10.0) -> None:
        self.scale = VirtualScale("toledo", rate_hz=20.0)
        self.scale.start()
        self.camera = SimCamera(root / "camera")
        self.cfg = EdgeConfig(
            org=ORG, cart="CART-K1", data=root / "cart", broker=broker.url,
            scale=ScaleConfig(port=self.scale.path), camera=CameraConfig(url=self.camera.url, fps=20, repeat_s=0),
            actuator=ActuatorConfig(kind="sim", travel_s=0.05), kiosk=KioskConfig(port=0, pin=pin or pins.PinPolicy()),
            workflow=WorkflowConfig(pins={"NUR-01": pins.hash_pin(PIN, iterations=1000),
                                          "SUP-01": pins.hash_pin(SUPERVISOR_PIN, iterations=1000)}),
            roster=roster.example(),
            uplink=UplinkSettings(gateway_keys=(wire.public_key_text(GATEWAY.public_key()),), telemetry_s=telemetry_s))
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
    cart.show("S", COLLECTOR)
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


def _reweigh(cart: Cart, bag: str, grams: int, letter: str = "I") -> None:
    cart.scale.set_load(0, settle_s=0.05, noise_g=0)
    cart.wait("empty", lambda s: s.weight is not None and s.weight.stable and s.weight.net_g == 0)
    cart.scale.set_load(grams, settle_s=0.1, noise_g=0)
    cart.wait("settled", lambda s: s.weight is not None and s.weight.stable and s.weight.net_g == grams)
    cart.show("B", bag, letter)
    cart.wait(f"{bag} re-weighed", lambda s: any(r.package_code == bag for r in s.reweighs))


def test_a_delivery_with_a_bag_missing_is_rejected_and_stays_on_the_cart(cart: Cart) -> None:
    """Over HTTP: finish refused while a bag is not re-weighed; rejecting needs the keeper's badge;
    then a REJECTED check-in: nothing stored, every bag still on the cart."""
    _weighing_at(cart, "D01", 1500)
    cart.show("B", "B0201", "I")
    cart.wait("line 1", lambda s: len(s.lines) == 1)
    cart.scale.set_load(0, settle_s=0.05, noise_g=0)
    cart.wait("empty", lambda s: s.weight is not None and s.weight.net_g == 0 and s.weight.stable and s.armed)
    cart.scale.set_load(700, settle_s=0.1, noise_g=0)
    cart.wait("settled", lambda s: s.weight is not None and s.weight.stable and s.weight.net_g == 700)
    cart.show("B", "B0202", "I")
    cart.wait("line 2", lambda s: len(s.lines) == 2)
    cart.show("S", "NUR-01")
    cart.wait("saved", lambda s: s.last_seq == 1)
    cart.show("R", "ROOM1")
    cart.wait("storage", lambda s: s.step == "storage")
    _reweigh(cart, "B0201", 1490)
    assert _post(cart.url + "api/action", {"id": "finish"}) == 202
    cart.wait("finish refused", lambda s: "B0202" in s.error.zh and "未复称" in s.error.zh)
    assert _post(cart.url + "api/action", {"id": "reject_storage"}) == 202
    cart.wait("keeper first", lambda s: s.error.zh == t("rules.keeper_needed").zh)
    assert cart.app.ledger.head() == 1
    cart.show("S", "KEEP-01")
    cart.wait("keeper signed", lambda s: s.storage is not None and s.storage.keeper is not None)
    assert _get(cart.url + "api/state")["signer"] == "孙库管"
    assert _post(cart.url + "api/action", {"id": "reject_storage"}) == 202
    cart.wait("saved", lambda s: s.last_seq == 2)
    [(_, _, _, body)] = cart.app.ledger.bodies(["storage_in"])
    assert body["result"] == "REJECTED" and body["keeper"]["person_id"] == "KEEP-01"
    assert {p["package_code"]: p["status"] for p in body["packages"]} == {"B0201": "OK", "B0202": "MISSING"}
    assert [b.package_code for b in cart.app.state.carried] == ["B0201", "B0202"] and not cart.app.state.stored
    assert _get(cart.url + "api/state")["message"]["zh"].startswith("入库被拒")


def test_a_void_takes_a_reason_from_the_list_and_a_supervisors_pin(cart: Cart) -> None:
    """Over HTTP: the void button lists the reasons; words alone, or "other" without words, are
    refused; a nurse's PIN cannot approve; the supervisor's PIN writes the void."""
    _one_bag_stop(cart, "B0301")
    cart.show("S", "NUR-01")
    cart.wait("saved", lambda s: s.last_seq == 1)
    [(rid, _, _, _)] = cart.app.ledger.bodies(["handover"])
    [button] = [a for a in _get(cart.url + "api/state")["actions"] if a["id"] == f"void:{rid}"]
    assert button["needs"] == "reason"
    assert [r["id"] for r in button["reasons"]] == [r.id for r in VOID_REASONS]
    for value, refusal in (("称重错误", "rules.reason_code_needed"), ("OTHER", "rules.reason_text_needed")):
        assert _post(cart.url + "api/action", {"id": button["id"], "value": value}) == 202
        cart.wait(value, lambda s, k=refusal: s.error.zh == t(k).zh)
    assert _post(cart.url + "api/action", {"id": button["id"], "value": "WRONG_WEIGHT|秤未归零"}) == 202
    cart.wait("void screen", lambda s: s.step == "void")
    assert _post(cart.url + "api/action", {"id": "confirm_pin", "value": PIN}) == 202  # the nurse's PIN
    cart.wait("nurse refused", lambda s: "李护士" in s.error.zh and "主管" in s.error.zh)
    assert cart.app.ledger.head() == 1
    assert _post(cart.url + "api/action", {"id": "confirm_pin", "value": SUPERVISOR_PIN}) == 202
    cart.wait("saved", lambda s: s.last_seq == 2)
    [(_, _, _, body)] = cart.app.ledger.bodies(["void"])
    assert (body["voided_record_id"], body["reason_code"]) == (rid, "WRONG_WEIGHT")
    assert body["reason"] == "称重错误：秤未归零"
    assert body["approved_by"] == {"person_id": "SUP-01", "name": "周主管", "role": "supervisor", "auth_method": "pin"}
    assert not cart.app.state.carried


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


# One free wrong PIN, then waits of 0.5 s and 1 s; the third wrong PIN in a row locks entry for 0.6 s.
TIGHT = pins.PinPolicy(free_failures=1, backoff_s=0.5, backoff_max_s=1.0, lockout_after=3, kiosk_lockout_after=10,
                       lockout_min=0.01)
WRONG = ("8642", "9753", "7531")  # never in a log line


@pytest.fixture
def locking_cart(broker: PrivateBroker, tmp_path: Path) -> Iterator[Cart]:
    c = Cart(broker, tmp_path, pin=TIGHT, telemetry_s=600)  # telemetry after the first only when asked for
    yield c
    c.stop()
    c.scale.stop()
    _clear_retained_status(broker)


def _error(cart: Cart) -> str:
    error = _get(cart.url + "api/state")["error"]
    return str(error["zh"]) if error else ""


def _answer(cart: Cart, pin: str, expected: str) -> None:
    """Type ``pin`` after a marker (an unreadable scan) so that the answer shown is this PIN's own."""
    assert _post(cart.url + "api/scan", {"text": "not a code"}) == 202
    cart.wait("marker", lambda s: s.error and s.error.zh not in (expected, ""))
    assert _post(cart.url + "api/action", {"id": "confirm_pin", "value": pin}) == 202
    cart.wait(f"answer {expected}", lambda s: s.error.zh == expected)
    assert _error(cart) == expected  # what the kiosk page shows


def _telemetry(broker: PrivateBroker) -> tuple[mqtt.Client, queue.Queue[bytes]]:
    """A subscriber to the cart's telemetry, as the gateway would be."""
    got: queue.Queue[bytes] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-kiosk-telemetry")
    client.on_message = lambda _c, _u, m: got.put(bytes(m.payload))
    host, port, _ = wire.broker_address(broker.url)
    client.connect(host, port)
    client.subscribe(wire.topic(ORG, "CART-K1", wire.TELEMETRY), qos=1)
    client.loop_start()
    return client, got


def test_wrong_pins_back_off_then_lock_entry_until_it_expires(
        locking_cart: Cart, broker: PrivateBroker, caplog: pytest.LogCaptureFixture) -> None:
    cart = locking_cart
    caplog.set_level(logging.INFO)
    client, telemetry = _telemetry(broker)
    try:
        _one_bag_stop(cart, "B0101")
        assert _post(cart.url + "api/action", {"id": "confirm"}) == 202
        cart.wait("nurse screen", lambda s: s.step == "confirm")
        wrong, wait, locked = t("agent.wrong_pin").zh, "请 1 秒后再试", "PIN 已锁定，请 1 分钟后再试"
        _answer(cart, WRONG[0], wrong)
        _answer(cart, PIN, wait)  # during the back-off even the right PIN is not looked at
        threading.Event().wait(0.5)  # the first back-off: a fixed length, nothing to wait for
        _answer(cart, WRONG[1], wrong)
        threading.Event().wait(1.0)  # the second, doubled
        _answer(cart, WRONG[2], locked)  # the third in a row locks PIN entry
        locked_at = time.monotonic()
        _answer(cart, PIN, locked)  # the right PIN is refused while locked
        assert cart.app.ledger.head() == 0 and cart.app.state.step == "confirm"
        deadline = time.monotonic() + 10
        while True:  # the lockout is reported at once, not at the 600 s telemetry period
            payload = telemetry.get(timeout=max(0.0, deadline - time.monotonic()))
            _kind, body = wire.open_message(payload, kinds=[wire.TELEMETRY_KIND], site=ORG, cart="CART-K1",
                                            keys=[cart.app.key.public_key()])
            if body.get("pin_lockouts") == 1:
                break
        assert body["pin_failures"] == 3
        threading.Event().wait(max(0.0, locked_at + TIGHT.lockout_min * 60 - time.monotonic()) + 0.1)
        assert _post(cart.url + "api/action", {"id": "confirm_pin", "value": PIN}) == 202  # expired: entry re-opens
        cart.wait("saved", lambda s: s.last_seq == 1)
        assert cart.app.ledger.bodies(["handover"])[0][3]["from_party"]["person_id"] == "NUR-01"
    finally:
        client.disconnect()
        client.loop_stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "PIN" in r.getMessage()]
    assert len(warnings) == 1 and "locked until" in warnings[0] and COLLECTOR in warnings[0]
    assert not [r for r in caplog.records if any(p in r.getMessage() for p in (*WRONG, PIN))], "a PIN was logged"


def test_outside_the_nurse_screen_a_right_and_a_wrong_pin_answer_alike(cart: Cart) -> None:
    _one_bag_stop(cart, "B0102")
    models = []
    for pin in (PIN, WRONG[0]):
        _answer(cart, pin, t("err.not_available").zh)
        model = _get(cart.url + "api/state")
        model["voice"].pop("id")  # a new id per spoken answer (the page speaks each once); the words compared
        models.append({k: v for k, v in model.items() if k not in ("weight", "device")})
    assert models[0] == models[1] and models[0]["step"] == "stop"
    assert cart.app.ledger.head() == 0 and cart.app.agent.pin_guard.failures == 0  # neither PIN was looked at


def test_each_lockout_reaches_the_gateway_as_a_pin_lockout_alert(broker: PrivateBroker, tmp_path: Path) -> None:
    """End to end: the cart's kiosk locks PIN entry, its telemetry goes out at once with the count,
    and the gateway (verifying it with the cart's key) raises PIN_LOCKOUT, counted on the next."""
    quick = pins.PinPolicy(free_failures=2, lockout_after=2, kiosk_lockout_after=10, lockout_min=0.01)
    cart = Cart(broker, tmp_path / "cart-side", pin=quick, telemetry_s=600)
    try:
        with SimPlatform(seed=13) as platform:
            gateway = GatewayApp(gateway_config(tmp_path, broker, platform, cart_keys={
                "CART-K1": wire.public_key_text(cart.app.key.public_key())}))
            gateway.start()
            try:
                _one_bag_stop(cart, "B0103")
                cart.app.agent.act("confirm", None)
                cart.wait("nurse screen", lambda s: s.step == "confirm")
                for lockouts in (1, 2):
                    locked_at = time.monotonic()
                    for pin in WRONG[:2]:  # two wrong PINs in a row: locked
                        cart.app.agent.act("confirm_pin", pin)

                    def raised(_stats: dict[str, int], n: int = lockouts) -> bool:
                        return [(a["cart"], a["count"]) for a in gateway.store.alerts()
                                if a["kind"] == "PIN_LOCKOUT"] == [("CART-K1", n)]

                    assert gateway.wait_until(raised, WAIT_S), gateway.store.alerts()
                    threading.Event().wait(max(0.0, locked_at + quick.lockout_min * 60 - time.monotonic()) + 0.1)
                assert cart.app.agent.pin_guard.lockouts == 2
            finally:
                gateway.stop()
    finally:
        cart.stop()
        cart.scale.stop()
        _clear_retained_status(broker)
