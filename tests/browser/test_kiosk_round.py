"""End to end: a whole collection round in a real headless Chromium against the real cart agent.

``edge.app.EdgeApp`` runs as on a cart, wired by URLs to simulated devices (the idea of
``wastecart.demo``, only the parts needed): a virtual Toledo scale on a pty, a folder camera, a
TSPL label printer on TCP, a simulated scale slide-out and the session's mosquitto — no gateway,
so committed records stay unsent and the status bar has to say so.  Everything is driven the way
it happens on a ward: codes are *shown to the camera*, loads are *put on the scale*, buttons and
the PIN pad are *tapped on the page*; assertions are on what the page shows, plus the ledger and
the printer's job where the page cannot tell.  No sleeps: every wait is on page state.

The round: idle → collector badge → a department code of another organisation (refused) → the
department (slide-out extends) → an unstable load (a label scan refused) that then settles → bag 1
by its label → bag 2 by category + printed label → bag 3 by its label, then removed again → a
wrong PIN, then the nurse's PIN → saved (only after the commit) → English and back → storage
check-in: one bag re-weighed, finish refused while the other is not, then it too, the keeper's
badge → storage_in saved.  People and places are those of
``edge.roster.example()``, shown by name.  Screenshots: ``tests/browser/artifacts/``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import codes, pins, roster, wire
from edge.app import EdgeApp
from edge.config import (
    ActuatorConfig,
    CameraConfig,
    EdgeConfig,
    KioskConfig,
    ScaleConfig,
    WorkflowConfig,
)
from edge.devices.printer.settings import PrinterSettings
from edge.ledger.settings import UplinkSettings
from sim_devices.camera import SimCamera
from sim_devices.printer import SimPrinter
from sim_devices.scales import VirtualScale
from tests.browser.conftest import WAIT_MS, KioskPage
from tests.browser.expect import expect
from wastecart.broker import PrivateBroker

pytestmark = pytest.mark.browser

ORG = "H330100001"
OTHER_ORG = "H999999999"
CART = "CART-E2E"  # not the demo's id: nothing else on the session broker speaks for this cart
# edge.roster.example(): a collector, a nurse of D01, a keeper, the storage room
COLLECTOR, COLLECTOR_NAME = "COL-01", "王收集"
DEPARTMENT, DEPARTMENT_NAME = "D01", "心血管内科"
ROOM, ROOM_NAME = "ROOM1", "医疗废物暂存间"
KEEPER, KEEPER_NAME = "KEEP-01", "孙库管"
NURSE, NURSE_NAME, NURSE_PIN, WRONG_PIN = "NUR-01", "李护士", "2468", "1357"
SETTLE_S = 0.3  # s a load takes to come to rest on the virtual scale (a quick, calm hand)


@dataclass
class Cart:
    app: EdgeApp
    scale: VirtualScale
    camera: SimCamera
    printer: SimPrinter

    @property
    def url(self) -> str:
        assert self.app.kiosk is not None
        return self.app.kiosk.url

    def show(self, kind: str, ident: str, extra: str = "", org: str = ORG) -> None:
        """Hold one of our codes in front of the camera (one frame = one scan)."""
        self.camera.show(codes.encode(codes.Code(kind, org, ident, extra)))

    def records(self, rtype: str) -> list[tuple[str, str, int, dict[str, Any]]]:
        return self.app.ledger.bodies([rtype])


@contextlib.contextmanager
def running_cart(tmp_path: Path, broker: PrivateBroker, workflow: WorkflowConfig) -> Iterator[Cart]:
    """A real cart agent on simulated devices with the example roster and these workflow rules."""
    with contextlib.ExitStack() as stack:  # stopped in reverse: the agent first, then its devices
        scale = VirtualScale("toledo", rate_hz=20.0, seed=7)
        scale.start()
        stack.callback(scale.stop)
        printer = stack.enter_context(SimPrinter(tmp_path / "printer"))
        camera = SimCamera(tmp_path / "camera")
        app = EdgeApp(EdgeConfig(
            org=ORG, cart=CART, data=tmp_path / "cart", broker=broker.url,
            scale=ScaleConfig(port=scale.path, protocol="toledo"),
            camera=CameraConfig(url=camera.url, fps=20.0, repeat_s=0.0),
            printer=PrinterSettings(url=printer.tcp_url, language="tspl"),
            actuator=ActuatorConfig(kind="sim", travel_s=0.1),
            kiosk=KioskConfig(port=0),
            workflow=workflow,
            roster=roster.example(),
            # no gateway here: a key of no one's, so the cart starts (and believes no ack)
            uplink=UplinkSettings(gateway_keys=(wire.public_key_text(Ed25519PrivateKey.generate().public_key()),)),
        ))
        stack.callback(app.stop)
        app.start()
        yield Cart(app, scale, camera, printer)


@pytest.fixture
def cart(tmp_path: Path, broker: PrivateBroker) -> Iterator[Cart]:
    with running_cart(tmp_path, broker, WorkflowConfig(pins={NURSE: pins.hash_pin(NURSE_PIN)})) as c:
        yield c


def test_a_whole_round_on_simulated_devices(cart: Cart, open_kiosk: Callable[..., KioskPage]) -> None:
    # ``cart`` first: set up before the page and torn down after it, so the page never sees the
    # agent go away (its reconnect attempt would be a console error)
    kp = open_kiosk(cart.url)
    kp.wait_link("up")
    idle_screen(kp)
    at_the_department(kp, cart)
    unstable_weight_is_refused(kp, cart)
    printed = three_bags_one_removed(kp, cart)
    seq = nurse_confirms_with_pin(kp, cart, printed)
    english_and_back(kp)
    storage_check_in(kp, cart, printed, seq)


# the steps ------------------------------------------------------------------------------------

def idle_screen(kp: KioskPage) -> None:
    """1. Chinese idle screen; online (the session broker), nothing unsent, devices there."""
    kp.wait_step("idle")
    expect(kp.by("title")).to_have_text("医废收集车")
    expect(kp.by("prompt")).to_have_text("请扫描收集人员工牌")
    expect(kp.by("online")).to_have_text("● 在线", timeout=WAIT_MS)
    expect(kp.by("unsent")).to_have_text("待上传 0")
    expect(kp.by("dev-scale")).to_have_text("秤 正常", timeout=WAIT_MS)
    expect(kp.by("dev-camera")).to_have_text("相机 正常")
    expect(kp.by("dev-printer")).to_have_text("打印机 正常")
    expect(kp.by("dev-actuator")).to_have_text("称台 已收回")
    expect(kp.by("weight-value")).to_have_text("0.000")
    kp.shot("idle")


def at_the_department(kp: KioskPage, cart: Cart) -> None:
    """2. Badge → round; another organisation's code refused with a reason; the department → stop."""
    cart.show("S", COLLECTOR)
    kp.wait_step("round")
    expect(kp.by("ctx-collector")).to_have_text(f"{COLLECTOR_NAME} {COLLECTOR}")  # the name, the code beside
    expect(kp.by("error")).to_be_hidden()

    cart.show("D", DEPARTMENT, org=OTHER_ORG)
    expect(kp.by("error")).to_be_visible()
    expect(kp.by("error")).to_contain_text("其他机构")
    expect(kp.by("error")).to_contain_text(OTHER_ORG)
    assert kp.page.get_attribute("body", "data-step") == "round"  # refused: nothing moved on
    kp.shot("rejected-code")

    cart.show("D", DEPARTMENT)
    kp.wait_step("stop")
    expect(kp.by("error")).to_be_hidden()
    expect(kp.by("title")).to_have_text("科室交接")
    expect(kp.by("ctx-department")).to_have_text(f"{DEPARTMENT_NAME} {DEPARTMENT}")
    expect(kp.by("dev-actuator")).to_have_attribute("data-state", "extended")  # the slide-out went out
    expect(kp.by("dev-actuator")).to_have_text("称台 已伸出")
    expect(kp.by("prompt")).to_have_text("请放置医废袋称重")
    kp.shot("stop")


def unstable_weight_is_refused(kp: KioskPage, cart: Cart) -> None:
    """3. A swinging load: shown as not stable, a label scanned now is refused; then it settles."""
    cart.scale.set_load(1250, settle_s=0.0)  # dropped on at once (settle 0: no motion frame) ...
    cart.scale.set_load(1250, settle_s=60.0, noise_g=150)  # ... and swinging around 1.25 kg
    expect(kp.by("weight")).to_have_attribute("data-stable", "false")
    expect(kp.by("weight-state")).to_have_text("未稳定 …")
    cart.show("B", "B0001", "I")
    expect(kp.by("error")).to_be_visible()
    expect(kp.by("error")).to_contain_text("重量未稳定")
    expect(kp.page.locator('[data-testid="line"]')).to_have_count(0)
    kp.shot("unstable")

    cart.scale.set_load(1250, settle_s=SETTLE_S)  # it comes to rest
    expect(kp.by("weight-state")).to_have_text("稳定 ✓")
    expect(kp.by("weight")).to_have_attribute("data-stable", "true")
    expect(kp.by("weight-value")).to_have_text("1.250")
    expect(kp.by("prompt")).to_have_text("请扫描袋标签，或选择类别打印标签")


def three_bags_one_removed(kp: KioskPage, cart: Cart) -> str:
    """4. Bag 1 by its label, bag 2 by category + printed label (tapped), bag 3 by its label and
    removed again (tapped).  Returns the printed bag's package code."""
    lines = kp.page.locator('[data-testid="line"]')
    cart.show("B", "B0001", "I")  # the same label again, now that the weight is stable
    expect(lines).to_have_count(1)
    expect(lines.first).to_have_attribute("data-package", "B0001")
    expect(lines.first).to_contain_text("感染性废物")
    expect(lines.first).to_contain_text("1.250 kg")
    expect(kp.by("error")).to_be_hidden()
    expect(kp.by("message")).to_contain_text("已登记 B0001")
    expect(kp.by("prompt")).to_have_text("请取下此袋，放置下一袋；完成后请护士确认")

    empty_the_scale(kp, cart)
    put_on(kp, cart, 560)
    expect(kp.by("categories")).to_be_visible()
    kp.by("category-SHARPS").tap()
    expect(kp.by("pending")).to_contain_text("损伤性废物")
    expect(kp.by("pending")).to_contain_text("0.560 kg")
    kp.tap_action("print_label")
    expect(lines).to_have_count(2)
    printed: str = lines.first.get_attribute("data-package") or ""  # newest on top
    assert re.fullmatch(r"P[0-9A-Z]{11}", printed), printed
    expect(lines.first).to_contain_text("损伤性废物")
    expect(lines.first).to_contain_text("0.560 kg")
    (job,) = cart.printer.wait_jobs(1)
    assert job["language"] == "tspl"
    assert job["qr"] == [codes.encode(codes.Code("B", ORG, printed, "S"))]  # the label carries the new code
    assert codes.decode(job["qr"][0], ORG).category == "SHARPS"
    expect(kp.by("dev-printer")).to_have_text("打印机 正常")

    empty_the_scale(kp, cart)
    put_on(kp, cart, 2100)
    cart.show("B", "B0003", "I")
    expect(lines).to_have_count(3)
    expect(lines.first).to_have_attribute("data-package", "B0003")
    expect(kp.by("action-remove_last")).to_have_text("删除最后一袋")
    kp.tap_action("remove_last")
    expect(lines).to_have_count(2)
    expect(kp.page.locator('[data-testid="line"][data-package="B0003"]')).to_have_count(0)
    expect(kp.by("message")).to_contain_text("已删除 B0003")

    expect(kp.page.locator('[data-testid="total"][data-category="INFECTIOUS"]')).to_have_text(
        re.compile(r"感染性废物\s*1 袋\s*1\.250 kg"))
    expect(kp.page.locator('[data-testid="total"][data-category="SHARPS"]')).to_have_text(
        re.compile(r"损伤性废物\s*1 袋\s*0\.560 kg"))
    expect(kp.by("total-all")).to_have_text(re.compile(r"合计\s*2 袋\s*1\.810 kg"))
    assert_nothing_cut_off(kp)  # a 12-character printed code with its edit button still fits the screen
    kp.shot("lines")
    return printed


def nurse_confirms_with_pin(kp: KioskPage, cart: Cart, printed: str) -> int:
    """5. Confirm → PIN pad: a wrong PIN is refused; the right one saves.  "Saved" shows the seq
    the ledger committed.  Returns that seq."""
    head = cart.app.ledger.head()
    kp.tap_action("confirm")
    kp.wait_step("confirm")
    expect(kp.by("prompt")).to_have_text("请护士扫描工牌或输入PIN确认")

    type_pin(kp, WRONG_PIN)
    expect(kp.by("error")).to_be_visible()
    expect(kp.by("error")).to_contain_text("PIN 错误")
    assert kp.page.get_attribute("body", "data-step") == "confirm"
    assert cart.app.ledger.head() == head
    expect(kp.by("saved")).to_be_hidden()
    kp.shot("wrong-pin")

    type_pin(kp, NURSE_PIN)
    seq = head + 1
    saved = kp.by("saved")
    expect(saved).to_be_visible()
    assert cart.app.ledger.head() == seq  # the tick never comes before the commit
    expect(saved).to_have_text(f"✓ 已保存 #{seq}")
    expect(saved).to_have_attribute("data-seq", str(seq))
    kp.wait_step("round")
    expect(kp.by("message")).to_contain_text(f"已保存交接记录 #{seq}")
    expect(kp.by("error")).to_be_hidden()
    expect(kp.by("unsent")).to_have_text("待上传 1", timeout=WAIT_MS)  # no gateway: it stays on the cart
    expect(kp.by("unsent")).to_have_attribute("data-level", "warn")
    expect(kp.by("dev-actuator")).to_have_attribute("data-state", "retracted")
    kp.shot("saved")
    saved.tap()  # dismissed (else it would cover the next screen for a few seconds)
    expect(saved).to_be_hidden()

    [(_, _, record_seq, body)] = cart.records("handover")
    assert record_seq == seq
    assert body["department"] == DEPARTMENT
    assert body["from_party"] == {"person_id": NURSE, "name": NURSE_NAME, "role": "nurse", "auth_method": "pin"}
    assert (body["to_party"]["person_id"], body["to_party"]["name"]) == (COLLECTOR, COLLECTOR_NAME)
    assert body["department_name"] == DEPARTMENT_NAME
    assert [(ln["package_code"], ln["category"], ln["weight_g"]) for ln in body["lines"]] == [
        ("B0001", "INFECTIOUS", 1250), (printed, "SHARPS", 560)]
    return seq


def english_and_back(kp: KioskPage) -> None:
    """6. The language switch: English prompt and status words, then Chinese again."""
    kp.by("lang-toggle").tap()
    expect(kp.by("prompt")).to_have_text("Scan the department code; at the storage room scan the room code")
    expect(kp.by("title")).to_have_text("Collection round")
    expect(kp.by("unsent")).to_have_text("Unsent 1")
    expect(kp.by("lang-toggle")).to_have_text("中")
    kp.by("lang-toggle").tap()
    expect(kp.by("prompt")).to_have_text("请扫描科室交接码；到暂存间请扫描暂存间码")
    expect(kp.by("title")).to_have_text("收集中")


def storage_check_in(kp: KioskPage, cart: Cart, printed: str, handover_seq: int) -> None:
    """7. The storage room: re-weigh bag 1 (label on the scale); finish is refused while the printed
    bag is not re-weighed; re-weigh it; the keeper's badge → finish → storage_in committed with
    the reconciliation and the keeper's name."""
    cart.show("R", ROOM)
    kp.wait_step("storage")
    expect(kp.by("ctx-place")).to_have_text(f"{ROOM_NAME} {ROOM}")
    expect(kp.by("dev-actuator")).to_have_attribute("data-state", "extended")
    lines = kp.page.locator('[data-testid="line"]')
    expect(lines).to_have_count(2)
    expect(kp.page.locator('[data-testid="line"][data-status="waiting"]')).to_have_count(2)

    empty_the_scale(kp, cart)
    put_on(kp, cart, 1240)  # 10 g lighter than at the ward: within the tolerance
    cart.show("B", "B0001", "I")
    bag1 = kp.page.locator('[data-testid="line"][data-package="B0001"]')
    expect(bag1).to_have_attribute("data-status", "ok")
    expect(bag1).to_contain_text("✓ 相符")
    expect(bag1).to_contain_text("1.240 kg")
    expect(kp.page.locator(f'[data-testid="line"][data-package="{printed}"]')).to_have_attribute(
        "data-status", "waiting")
    assert_nothing_cut_off(kp)
    kp.shot("storage")

    head = cart.app.ledger.head()
    kp.tap_action("finish")  # a bag not re-weighed blocks the check-in
    expect(kp.by("error")).to_contain_text("1 袋未复称")
    expect(kp.by("error")).to_contain_text(printed)
    assert cart.app.ledger.head() == head and kp.page.get_attribute("body", "data-step") == "storage"

    empty_the_scale(kp, cart)
    put_on(kp, cart, 555)
    cart.show("B", printed, "S")
    expect(kp.page.locator(f'[data-testid="line"][data-package="{printed}"]')).to_have_attribute("data-status", "ok")
    expect(kp.by("prompt")).to_have_text("复称完成：请暂存间管理员刷卡确认入库")  # (finish without: test_kiosk_rules)
    expect(kp.by("ctx-signer")).to_have_count(0)
    assert cart.app.ledger.head() == head

    cart.show("S", KEEPER)
    expect(kp.by("message")).to_contain_text(f"暂存间管理员 {KEEPER_NAME} 已签字确认")
    expect(kp.by("ctx-signer")).to_have_text(KEEPER_NAME)
    kp.tap_action("finish")
    seq = handover_seq + 1
    expect(kp.by("saved")).to_have_text(f"✓ 已保存 #{seq}")
    assert cart.app.ledger.head() == seq
    kp.wait_step("round")
    expect(kp.by("message")).to_contain_text(f"已保存入库记录 #{seq}")
    expect(kp.by("unsent")).to_have_text("待上传 2", timeout=WAIT_MS)
    [(_, _, record_seq, body)] = cart.records("storage_in")
    assert record_seq == seq
    assert (body["facility"], body["facility_name"]) == (ROOM, ROOM_NAME)
    assert {p["package_code"]: (p["status"], p["reweigh_g"]) for p in body["packages"]} == {
        "B0001": ("OK", 1240), printed: ("OK", 555)}
    assert body["result"] == "ACCEPTED"
    assert body["keeper"] == {"person_id": KEEPER, "name": KEEPER_NAME, "role": "keeper", "auth_method": "card"}
    kp.shot("storage-saved")


# helpers --------------------------------------------------------------------------------------

def assert_nothing_cut_off(kp: KioskPage) -> None:
    """No element sticks out past the right edge of the 1280 px cart screen."""
    overflow = kp.page.evaluate("""() => [...document.querySelectorAll("body *")]
        .filter(e => e.offsetParent !== null && e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .map(e => e.tagName + "." + e.className + " " + (e.dataset.testid || ""))""")
    assert overflow == []


def put_on(kp: KioskPage, cart: Cart, grams: int) -> None:
    """A bag on the scale; until the page shows it at rest."""
    cart.scale.set_load(grams, settle_s=SETTLE_S, noise_g=20)
    expect(kp.by("weight-value")).to_have_text(f"{grams / 1000:.3f}")
    expect(kp.by("weight")).to_have_attribute("data-stable", "true")


def empty_the_scale(kp: KioskPage, cart: Cart) -> None:
    cart.scale.remove_load(settle_s=SETTLE_S)
    expect(kp.by("weight-value")).to_have_text("0.000")
    expect(kp.by("weight")).to_have_attribute("data-stable", "true")


def type_pin(kp: KioskPage, pin: str) -> None:
    """Tap "enter PIN", the digits on the pad, OK; the pad closes once the cart took it."""
    type_on_pad(kp, "confirm_pin", "pin", pin)


def type_on_pad(kp: KioskPage, action: str, mode: str, keys: str) -> None:
    """Tap ``action``, its pad opens in ``mode``; the keys one by one on the on-screen pad, OK; the pad
    closes once the cart took it."""
    kp.tap_action(action)
    pad = kp.by("pad")
    expect(pad).to_be_visible()
    expect(pad).to_have_attribute("data-mode", mode)
    for key in keys:
        pad.locator(f'[data-key="{key}"]').tap()
    expect(kp.by("pad-field")).to_have_value(keys)
    kp.by("pad-ok").tap()
    expect(pad).to_be_hidden()
