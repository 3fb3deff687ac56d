"""End to end: the rules of issue 16 as a collector, nurses, a keeper, a supervisor and a driver meet
them on the cart's screen — a real headless Chromium against the real cart agent on simulated
devices (``test_kiosk_round.running_cart``), the people and places of ``edge.roster.example()``.

The walk: a bag with a label note (a toggle on the page) → badges of the wrong role and of a nurse
of another department refused in plain words naming the person and who may sign → the right
nurse → at the storage room one bag is not there: finish refused, a nurse's badge refused, the loss
typed on the page, a keeper's badge refused, a supervisor's badge → an ``incident`` in the ledger →
the keeper signs → storage_in → at the vehicle the bags in storage carry a dwell warning (the test's
in-storage limit is minutes) → the manifest typed twice (once wrong) → the driver's badge →
a transfer naming the receiver's disposal method and final destination.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge import pins, roster
from edge.config import WorkflowConfig
from tests.browser.conftest import KioskPage
from tests.browser.expect import expect
from tests.browser.test_kiosk_round import Cart, empty_the_scale, put_on, running_cart, type_on_pad, type_pin
from wastecart.broker import PrivateBroker

pytestmark = pytest.mark.browser

ROSTER = roster.example()
COLLECTOR, NURSE, OTHER_NURSE = "COL-01", "NUR-01", "NUR-02"  # NUR-01: 心血管内科 (D01); NUR-02: D02, D03
KEEPER, SUPERVISOR, DRIVER = "KEEP-01", "SUP-01", "DRV-01"
DEPARTMENT, ROOM, VEHICLE = "D01", "ROOM1", "V1"
STORAGE_LIMIT_H = 0.05  # 3 minutes in storage is the limit here ...
WARN_PCT = 1            # ... and 1 % of it (1.8 s) earns the warning
TAP_GUARD_S = 0.8       # kiosk.js TAP_GUARD_MS: a second tap on one button within this is a glove bounce


@pytest.fixture
def cart(tmp_path: Path, broker: PrivateBroker) -> Iterator[Cart]:
    rules = WorkflowConfig(storage_overdue_h=STORAGE_LIMIT_H, warn_pct=WARN_PCT,
                           pins={SUPERVISOR: pins.hash_pin("8080", iterations=1000)})
    with running_cart(tmp_path, broker, rules) as c:
        yield c


def test_the_rules_on_the_kiosk(cart: Cart, open_kiosk: Callable[..., KioskPage]) -> None:
    kp = open_kiosk(cart.url)
    kp.wait_link("up")
    kp.wait_step("idle")
    noted = bags_at_the_ward(kp, cart)
    wrong_people_are_refused_by_name(kp, cart, noted)
    incident = a_missing_bag_is_reported_lost(kp, cart, noted)
    stored_at = the_keeper_signs_the_check_in(kp, cart, noted, incident)
    in_storage_dwell_is_warned(kp, cart, stored_at)
    number = transfer_names_the_disposal(kp, cart, noted)
    the_departed_transfer_is_corrected(kp, cart, number)


# the steps ------------------------------------------------------------------------------------

def bags_at_the_ward(kp: KioskPage, cart: Cart) -> str:
    """Two bags by their labels, a third by category with a label note toggled on (and the other off)
    then printed.  Returns the printed bag's code."""
    cart.show("S", COLLECTOR)
    kp.wait_step("round")
    cart.show("D", DEPARTMENT)
    kp.wait_step("stop")
    lines = kp.page.locator('[data-testid="line"]')
    for n, (code, letter, grams) in enumerate((("B0101", "I", 1250), ("B0102", "S", 600)), start=1):
        empty_the_scale(kp, cart)
        put_on(kp, cart, grams)
        cart.show("B", code, letter)
        expect(lines).to_have_count(n)

    empty_the_scale(kp, cart)
    put_on(kp, cart, 900)
    kp.by("category-INFECTIOUS").tap()
    mixed, double = kp.by("action-note:MIXED_DRUGS"), kp.by("action-note:DOUBLE_BAG")
    expect(mixed).to_have_attribute("aria-pressed", "false")
    expect(kp.by("action-note:DISINFECTED")).to_be_visible()  # the notes that apply to infectious waste
    mixed.tap()
    expect(mixed).to_have_attribute("aria-pressed", "true")  # as the cart says: its style is now "chosen"
    expect(kp.by("pending-notes")).to_contain_text("含少量药物性废物")
    double.tap()
    expect(double).to_have_attribute("aria-pressed", "true")
    double.tap()  # a glove bounce: dropped
    time.sleep(TAP_GUARD_S)
    double.tap()  # on and off again: a toggle
    expect(double).to_have_attribute("aria-pressed", "false")
    expect(kp.by("pending-notes")).not_to_contain_text("双层包装")
    kp.shot("note")
    kp.tap_action("print_label")
    expect(lines).to_have_count(3)
    printed: str = lines.first.get_attribute("data-package") or ""
    assert re.fullmatch(r"P[0-9A-Z]{11}", printed), printed
    cart.printer.wait_jobs(1)
    return printed


def wrong_people_are_refused_by_name(kp: KioskPage, cart: Cart, printed: str) -> None:
    """(a) At the nurse screen: the keeper's badge, then a nurse of other departments — each refused
    with their name and who must sign instead; nothing saved.  Then the department's own nurse."""
    kp.tap_action("confirm")
    kp.wait_step("confirm")
    cart.show("S", KEEPER)
    expect(kp.by("error")).to_contain_text("孙库管（暂存间管理员）不能确认交接")
    expect(kp.by("error")).to_contain_text("须由心血管内科的护士")
    kp.shot("wrong-role")
    cart.show("S", OTHER_NURSE)
    expect(kp.by("error")).to_contain_text("赵护士是普外科、检验科的护士，不能为心血管内科签字")
    kp.by("lang-toggle").tap()
    expect(kp.by("error")).to_contain_text("is a nurse of")  # the same refusal in English
    kp.by("lang-toggle").tap()
    kp.shot("other-department")
    assert cart.app.ledger.head() == 0 and kp.page.get_attribute("body", "data-step") == "confirm"

    cart.show("S", NURSE)
    expect(kp.by("saved")).to_have_text("✓ 已保存 #1")
    kp.wait_step("round")
    kp.by("saved").tap()
    [(_, _, _, body)] = cart.records("handover")
    assert body["from_party"]["name"] == "李护士" and body["from_party"]["auth_method"] == "card"
    notes = {ln["package_code"]: ln.get("notes") or [] for ln in body["lines"]}
    assert notes == {"B0101": [], "B0102": [], printed: ["MIXED_DRUGS"]}, notes


def a_missing_bag_is_reported_lost(kp: KioskPage, cart: Cart, printed: str) -> str:
    """(b) B0102 is not there: finish refused naming it; a nurse may not sign here; the loss typed
    on the page; the keeper may not confirm a loss; the supervisor's badge → an incident record."""
    cart.show("R", ROOM)
    kp.wait_step("storage")
    expect(kp.page.locator('[data-testid="line"][data-status="waiting"]')).to_have_count(3)
    for code, grams in (("B0101", 1245), (printed, 905)):
        empty_the_scale(kp, cart)
        put_on(kp, cart, grams)
        cart.show("B", code, "I")
        expect(kp.page.locator(f'[data-testid="line"][data-package="{code}"]')).to_have_attribute("data-status", "ok")

    kp.tap_action("finish")
    expect(kp.by("error")).to_contain_text("1 袋未复称：B0102")
    cart.show("S", NURSE)  # a nurse's badge in the storage room
    expect(kp.by("error")).to_contain_text("李护士（科室护士）不能确认入库：须由暂存间管理员刷卡")

    kp.tap_action("report_lost")
    pad = kp.by("pad")
    expect(pad).to_have_attribute("data-mode", "text")
    description = "途中未见此袋，已通知科室核查"
    kp.by("pad-field").fill(description)
    kp.by("pad-ok").tap()
    expect(pad).to_be_hidden()
    expect(kp.by("message")).to_contain_text("已报告遗失 1 袋（B0102）")
    expect(kp.by("prompt")).to_have_text("请主管刷卡或输入 PIN 确认遗失")
    cart.show("S", KEEPER)  # a keeper cannot confirm a loss
    expect(kp.by("error")).to_contain_text("孙库管（暂存间管理员）不能确认：作废和遗失须由主管")
    assert cart.records("incident") == []
    kp.shot("lost")

    cart.show("S", SUPERVISOR)
    expect(kp.by("message")).to_contain_text("遗失记录已保存（第 2 条）")
    kp.wait_step("storage")  # carry on with the check-in
    [(incident_id, _, seq, body)] = cart.records("incident")
    assert seq == 2 and body["incident_type"] == "LOST"
    assert [(b["package_code"], b["weight_g"], b["department_name"]) for b in body["bags"]] == [
        ("B0102", 600, "心血管内科")]
    assert body["description"] == description
    assert (body["reported_by"]["person_id"], body["confirmed_by"]["person_id"]) == (COLLECTOR, SUPERVISOR)
    assert body["confirmed_by"]["role"] == "supervisor" and body["facility_name"] == "医疗废物暂存间"
    expect(kp.page.locator('[data-testid="line"][data-package="B0102"]')).to_have_count(0)  # accounted for
    return incident_id


def the_keeper_signs_the_check_in(kp: KioskPage, cart: Cart, printed: str, incident: str) -> float:
    """Finish refused until the keeper's badge; then storage_in names the keeper and the incident.
    Returns when it was saved (time.time())."""
    tap_again(kp, "finish")
    expect(kp.by("error")).to_contain_text("请暂存间管理员刷卡确认入库")
    cart.show("S", KEEPER)
    expect(kp.by("ctx-signer")).to_have_text("孙库管")
    tap_again(kp, "finish")
    expect(kp.by("saved")).to_have_text("✓ 已保存 #3")
    stored_at = time.time()
    kp.wait_step("round")
    kp.by("saved").tap()
    [(_, _, _, body)] = cart.records("storage_in")
    assert body["keeper"]["person_id"] == KEEPER and body["incidents"] == [incident]
    assert {p["package_code"]: p["status"] for p in body["packages"]} == {"B0101": "OK", printed: "OK"}
    assert body["result"] == "ACCEPTED_WITH_NOTE"
    return stored_at


def in_storage_dwell_is_warned(kp: KioskPage, cart: Cart, stored_at: float) -> None:
    """(c) At the vehicle the two bags in storage are past 1 % of the in-storage limit: a yellow banner."""
    expect(kp.by("dwell")).to_be_hidden()  # just stored: well inside the limit
    time.sleep(max(0.0, stored_at + STORAGE_LIMIT_H * 3600 * WARN_PCT / 100 + 0.5 - time.time()))
    cart.show("V", VEHICLE)
    kp.wait_step("transfer")
    banner = kp.by("dwell")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("data-level", "warn")
    row = kp.page.locator('[data-testid="dwell-row"][data-where="storage"]')
    expect(row).to_contain_text("2 袋即将超时")
    expect(row).to_contain_text("在暂存间")
    expect(row).to_contain_text(f"上限 {round(STORAGE_LIMIT_H, 2):g} 小时")
    expect(kp.by("ctx-place")).to_have_text(f"{ROSTER.vehicles[VEHICLE].plate} {VEHICLE}")
    assert_buttons_in_view(kp)  # two banners and five buttons still fit the screen
    kp.shot("dwell")


def transfer_names_the_disposal(kp: KioskPage, cart: Cart, printed: str) -> str:
    """(d) A nurse cannot sign for the vehicle; the manifest typed twice (a mismatch starts over);
    the driver's badge; the transfer record carries the receiver's disposal method and destination."""
    cart.show("S", NURSE)
    expect(kp.by("error")).to_contain_text("李护士（科室护士）不能确认转运：须由转运人员（司机）刷卡")
    year = datetime.now(ZoneInfo("Asia/Shanghai")).year
    number, typo = f"{year}3301000123", f"{year}3301000132"
    type_manifest(kp, number)
    expect(kp.by("message")).to_contain_text("请再输入一次联单号核对")
    type_manifest(kp, typo)
    expect(kp.by("error")).to_contain_text(f"两次输入的联单号不一致（{number} / {typo}）")
    type_manifest(kp, number)
    type_manifest(kp, number)
    expect(kp.by("message")).to_contain_text(f"联单号已确认：{number}")
    expect(kp.by("prompt")).to_have_text("请转运人员（司机）刷卡确认")
    cart.show("S", DRIVER)
    expect(kp.by("message")).to_contain_text("转运人员 吴司机（杭州医废转运有限公司）已签字")
    expect(kp.by("ctx-signer")).to_have_text("吴司机")
    tap_again(kp, "finish")
    expect(kp.by("saved")).to_have_text("✓ 已保存 #4")
    kp.wait_step("round")
    kp.shot("transfer-saved")
    [(_, _, _, body)] = cart.records("transfer")
    receiver = ROSTER.receivers[ROSTER.vehicles[VEHICLE].receiver]
    assert body["disposal_method"] == receiver.disposal["INFECTIOUS"] == "高温蒸汽灭菌"
    assert body["final_destination"] == receiver.destination
    assert receiver.name in body["final_destination"] and receiver.licence in body["final_destination"]
    assert {ln["package_code"]: ln["disposal_method"] for ln in body["lines"]} == {
        "B0101": "高温蒸汽灭菌", printed: "高温蒸汽灭菌"}
    assert body["manifest"] == {"type": "national", "number": number}
    assert body["carrier"]["driver"]["person_id"] == DRIVER and body["receiver"]["name"] == receiver.name
    return number


def the_departed_transfer_is_corrected(kp: KioskPage, cart: Cart, number: str) -> None:
    """(e) The transfer's bags have left: no void is offered, the manifest is corrected instead — a
    reason from the list, the right number twice, the supervisor's PIN — as a new record."""
    [(transfer_id, _, _, _)] = cart.records("transfer")
    expect(kp.page.locator('[data-action^="void"]')).to_have_count(0)
    kp.tap_action(f"correct:{transfer_id}")
    pad = kp.by("pad")
    expect(pad).to_have_attribute("data-mode", "reason")
    kp.by("reason-WRONG_LABEL").tap()
    kp.by("pad-ok").tap()
    expect(pad).to_be_hidden()
    kp.wait_step("correct")
    expect(kp.by("message")).to_contain_text(f"更正联单号 {number}")
    fixed = number[:-3] + "321"
    type_manifest(kp, fixed)
    expect(kp.by("message")).to_contain_text("请再输入一次联单号核对")
    type_manifest(kp, fixed)
    expect(kp.by("prompt")).to_have_text("请主管刷卡或输入 PIN 确认更正")
    type_pin(kp, "8080")                      # the supervisor's PIN
    expect(kp.by("saved")).to_have_text("✓ 已保存 #5")
    kp.wait_step("round")
    [(_, _, _, body)] = cart.records("correction")
    assert body["corrected_record_id"] == transfer_id and body["reason_code"] == "WRONG_LABEL"
    assert body["changes"]["manifest"] == {"from": {"type": "national", "number": number},
                                           "to": {"type": "national", "number": fixed}}
    assert body["approved_by"] | {"person_id": SUPERVISOR, "auth_method": "pin"} == body["approved_by"]


# helpers --------------------------------------------------------------------------------------

def tap_again(kp: KioskPage, action: str) -> None:
    """A button tapped before, tapped again: after the page's guard against a glove's bounce (a
    second tap on one button within TAP_GUARD_S is dropped, however much happened in between)."""
    time.sleep(TAP_GUARD_S)
    kp.tap_action(action)


def assert_buttons_in_view(kp: KioskPage) -> None:
    """Every button of the screen wholly inside its column and the 1280×800 viewport: none cut off,
    none to scroll to with gloves."""
    outside = kp.page.evaluate("""() => [...document.querySelectorAll(".actions button")].filter(b => {
            const r = b.getBoundingClientRect(), box = b.closest("section").getBoundingClientRect();
            return r.bottom > Math.min(window.innerHeight, box.bottom) + 0.5 || r.top < Math.max(0, box.top);
        }).map(b => b.dataset.testid)""")
    assert outside == []


def type_manifest(kp: KioskPage, number: str) -> None:
    """Tap "manifest", the digits on the on-screen keyboard, OK."""
    type_on_pad(kp, "manifest", "text", number)
