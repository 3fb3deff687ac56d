"""The kiosk page in a real Chromium against the real kiosk server, fed hand-written screen models
(``screens.py``): what a collector sees, and that every tap posts what the cart expects."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.kiosk.server import STATIC_DIR, KioskServer
from edge.kiosk.settings import KioskSettings
from tests.browser.conftest import KioskPage
from tests.browser.expect import expect
from tests.browser.screens import (
    CATEGORY,
    CATEGORY_BARE,
    CHEMICAL,
    CONFIRM,
    DWELL,
    IDLE,
    MISSING,
    NOTES,
    OFFLINE,
    SAVED,
    STOP,
    STORAGE,
    ScriptedSource,
)

MIN_TARGET_PX = 64  # touch targets for gloved hands


def test_idle_screen_is_chinese_by_default(page: KioskPage) -> None:
    page.wait_step("idle")
    expect(page.by("title")).to_have_text("待机")
    expect(page.by("prompt")).to_have_text("请扫描收集人员工牌")
    expect(page.page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.by("online")).to_have_text("● 在线")
    expect(page.by("online")).to_have_attribute("data-online", "true")
    expect(page.by("unsent")).to_have_text("待上传 0")
    expect(page.by("dev-scale")).to_have_text("秤 正常")
    expect(page.by("clock")).to_contain_text(re.compile(r"\d\d:\d\d:\d\d"))
    expect(page.by("lines-empty")).to_have_text("还没有登记医废袋")
    expect(page.by("error")).to_be_hidden()
    expect(page.by("saved")).to_be_hidden()
    page.shot("idle")


def test_english_switch_is_remembered(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(STOP)
    page.wait_step("stop")
    page.by("lang-toggle").tap()
    expect(page.by("prompt")).to_have_text("Put a bag on the scale and scan its label")
    expect(page.by("action-finish_stop")).to_have_text("Confirm handover")
    expect(page.by("weight-state")).to_have_text("Not stable …")
    expect(page.by("lang-toggle")).to_have_text("中")
    page.shot("stop-en")
    page.page.reload()
    page.wait_step("stop")
    expect(page.by("title")).to_have_text("Department handover")  # remembered across a reload
    page.by("lang-toggle").tap()
    expect(page.by("title")).to_have_text("科室交接")


def test_stop_screen_weight_error_lines_and_totals(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(STOP)
    page.wait_step("stop")
    expect(page.by("weight-value")).to_have_text("1.234")
    expect(page.by("weight")).to_have_attribute("data-stable", "false")
    expect(page.by("weight-state")).to_have_text("未稳定 …")
    expect(page.by("error")).to_be_visible()
    expect(page.by("error")).to_contain_text("二维码已损坏或被涂改，请重新打印")
    expect(page.by("context")).to_contain_text("张伟")
    expect(page.by("context")).to_contain_text("心内科三病区")
    rows = page.by("line")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("B000103")  # newest on top
    expect(rows.first).to_contain_text("感染性")
    expect(rows.first).to_contain_text("2.310 kg")
    expect(page.page.locator('[data-testid="total"][data-category="INFECTIOUS"]')).to_have_text(
        re.compile(r"感染性废物\s*2 袋\s*3\.550 kg"))
    expect(page.page.locator('[data-testid="total"][data-category="SHARPS"]')).to_have_text(
        re.compile(r"损伤性废物\s*1 袋\s*0\.560 kg"))
    expect(page.by("total-all")).to_have_text(re.compile(r"合计\s*3 袋\s*4\.110 kg"))
    page.shot("stop")

    kiosk_source.update(weight={"net_g": 1240, "stable": True, "error": None}, error=None)
    expect(page.by("weight-state")).to_have_text("稳定 ✓")
    expect(page.by("weight")).to_have_attribute("data-stable", "true")
    expect(page.by("weight-value")).to_have_text("1.240")
    expect(page.by("error")).to_be_hidden()


def test_buttons_are_big_enough_for_gloves(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(CATEGORY)
    page.wait_step("stop")
    targets = page.page.locator(".actions button, .categories button, .status button")
    assert targets.count() >= 7
    for i in range(targets.count()):
        box = targets.nth(i).bounding_box()
        assert box is not None and box["height"] >= MIN_TARGET_PX - 8, (targets.nth(i).inner_text(), box)
    for i in range(page.page.locator(".actions button, .categories button").count()):
        box = page.page.locator(".actions button, .categories button").nth(i).bounding_box()
        assert box is not None and box["height"] >= MIN_TARGET_PX and box["width"] >= 2 * MIN_TARGET_PX


def test_tapping_a_button_posts_its_action(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(STOP)
    page.wait_step("stop")
    page.tap_action("remove_last")
    assert kiosk_source.wait_acts(1) == [("remove_last", None)]
    page.tap_action("remove_last")  # a glove bounce: the second tap within the guard is dropped
    page.tap_action("finish_stop")
    assert kiosk_source.wait_acts(2) == [("remove_last", None), ("finish_stop", None)]


def test_pin_pad_posts_the_pin(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(CONFIRM)
    page.wait_step("confirm")
    page.tap_action("nurse_pin")
    pad = page.by("pad")
    expect(pad).to_be_visible()
    expect(pad).to_have_attribute("data-mode", "pin")
    expect(page.by("pad-ok")).to_be_disabled()
    for key in ["1", "2", "3", "4", "BACK", "5"]:
        pad.locator(f'[data-key="{key}"]').tap()
    expect(page.by("pad-field")).to_have_value("1235")
    expect(page.by("pad-field")).to_have_attribute("type", "password")
    for key in ["1", "2", "3"]:
        box = pad.locator(f'[data-key="{key}"]').bounding_box()
        assert box is not None and box["height"] >= MIN_TARGET_PX
    page.shot("pin")
    page.by("pad-ok").tap()
    assert kiosk_source.wait_acts(1) == [("nurse_pin", "1235")]
    expect(pad).to_be_hidden()

    page.tap_action("nurse_pin")
    expect(pad).to_be_visible()
    kiosk_source.show(SAVED)  # the nurse scanned her badge instead: the pad of a gone action closes
    page.wait_step("round")
    expect(pad).to_be_hidden()


def test_text_entry_and_reason_chooser(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(STOP)
    page.wait_step("stop")
    page.tap_action("manifest")
    pad = page.by("pad")
    expect(pad).to_have_attribute("data-mode", "text")
    for key in "HW2-01":
        pad.locator(f'[data-key="{key}"]').tap()
    page.by("pad-ok").tap()
    assert kiosk_source.wait_acts(1) == [("manifest", "HW2-01")]

    page.tap_action("void_last")
    expect(pad).to_have_attribute("data-mode", "reason")
    expect(page.by("pad-ok")).to_be_disabled()  # words alone are no reason: one is chosen from the list
    expect(page.page.locator('[data-testid="pad-reasons"] .reason')).to_have_count(6)
    expect(page.by("reason-WRONG_CATEGORY")).to_have_text("类别选错")
    expect(page.by("pad-field")).to_be_visible()  # words may be added under the reasons
    reasons, field = page.by("pad-reasons").bounding_box(), page.by("pad-field").bounding_box()
    assert reasons is not None and field is not None and field["y"] >= reasons["y"] + reasons["height"]
    for testid in ("reason-OTHER", "pad-ok"):  # everything on the screen at once, nothing to scroll to
        box = page.by(testid).bounding_box()
        assert box is not None and box["height"] >= MIN_TARGET_PX and box["y"] + box["height"] <= 800, (testid, box)
    key = pad.locator('[data-key="Q"]').bounding_box()
    assert key is not None and key["height"] >= MIN_TARGET_PX
    page.shot("reason")
    page.by("reason-WRONG_CATEGORY").tap()
    expect(page.by("reason-WRONG_CATEGORY")).to_have_attribute("aria-pressed", "true")
    page.by("pad-ok").tap()
    assert kiosk_source.wait_acts(2)[-1] == ("void_last", "WRONG_CATEGORY")  # the id, not its words

    page.tap_action("void_last")
    page.by("reason-WRONG_WEIGHT").tap()
    for key in "2X":
        pad.locator(f'[data-key="{key}"]').tap()
    page.by("pad-ok").tap()
    assert kiosk_source.wait_acts(3)[-1] == ("void_last", "WRONG_WEIGHT|2X")

    page.tap_action("void_last")
    page.by("reason-OTHER").tap()
    expect(page.by("pad-ok")).to_be_disabled()  # "other" needs words
    page.by("pad-field").fill("标签被水浸湿")  # a physical keyboard (with an input method) works too
    expect(page.by("pad-ok")).to_be_enabled()
    page.by("pad-field").press("Enter")
    assert kiosk_source.wait_acts(4)[-1] == ("void_last", "OTHER|标签被水浸湿")


def test_category_choice(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(CATEGORY)
    page.wait_step("stop")
    expect(page.by("categories")).to_be_visible()
    expect(page.page.locator(".categories button")).to_have_count(5)
    expect(page.by("category-INFECTIOUS")).to_have_text("感染性废物")
    color = page.by("category-INFECTIOUS").evaluate("el => getComputedStyle(el).backgroundColor")
    assert color == "rgb(245, 208, 0)"
    expect(page.by("pending")).to_contain_text("2.150 kg")
    # the "choose:<id>" actions are the category buttons and "edit:<code>" sits on its line: not drawn twice
    expect(page.page.locator('.actions [data-action^="choose:"], .actions [data-action^="edit:"]')).to_have_count(0)
    expect(page.page.locator(".actions button")).to_have_count(1)
    page.shot("category")
    page.by("category-SHARPS").tap()
    assert kiosk_source.wait_acts(1) == [("choose:SHARPS", None)]
    page.by("edit-B000101").tap()
    assert kiosk_source.wait_acts(2)[-1] == ("edit:B000101", None)


def test_category_without_an_action_of_its_own_posts_choose(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(CATEGORY_BARE)
    page.wait_step("stop")
    page.by("category-CHEMICAL").tap()
    assert kiosk_source.wait_acts(1) == [("choose", "CHEMICAL")]


def test_storage_re_weighing_shows_each_bags_status(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(STORAGE)
    page.wait_step("storage")
    expect(page.by("context")).to_contain_text("一号暂存间")
    expect(page.page.locator('[data-testid="line"][data-status="ok"]')).to_contain_text("✓ 相符")
    expect(page.page.locator('[data-testid="line"][data-status="deviation"]')).to_contain_text("⚠ 偏差")
    expect(page.page.locator('[data-testid="line"][data-status="waiting"]')).to_contain_text("待复称")
    expect(page.by("error")).to_contain_text("复称偏差")
    page.shot("storage")


def test_names_are_shown_with_their_codes_small_beside(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(STORAGE)
    page.wait_step("storage")
    expect(page.by("ctx-collector")).to_have_text("张伟 COL-01")
    expect(page.by("ctx-collector").locator("b")).to_have_text("张伟")
    expect(page.by("ctx-collector").locator("small.code")).to_have_text("COL-01")
    expect(page.by("ctx-place")).to_have_text("一号暂存间 ROOM1")
    expect(page.by("ctx-signer")).to_have_text("孙库管")
    name = page.by("ctx-collector").locator("b").evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    code = page.by("ctx-collector").locator("small").evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    assert code < name, (code, name)
    kiosk_source.show(STOP)
    page.wait_step("stop")
    expect(page.by("ctx-department")).to_have_text("心内科三病区 D01")
    expect(page.by("ctx-signer")).to_have_count(0)  # no one has signed at a stop
    kiosk_source.update(collector_name=None)  # a badge the roster has no name for: the code alone
    expect(page.by("ctx-collector")).to_have_text("COL-01")
    expect(page.by("ctx-collector").locator("small")).to_have_count(0)


def test_dwell_banner_is_yellow_then_red(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(DWELL)
    page.wait_step("round")
    banner = page.by("dwell")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("data-level", "over")  # one bag over: red
    assert banner.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(229, 72, 77)"
    cart = page.page.locator('[data-testid="dwell-row"][data-where="cart"]')
    expect(cart).to_have_attribute("data-level", "over")
    expect(cart).to_contain_text("1 袋已超时")  # counted at the worst level there
    expect(cart).to_contain_text("交接后未入库")
    expect(cart).to_contain_text("26.5 小时")
    expect(cart).to_contain_text("（上限 24 小时）")
    expect(cart).to_have_attribute("data-package", "B000102")  # the longest-waiting bag
    storage = page.page.locator('[data-testid="dwell-row"][data-where="storage"]')
    expect(storage).to_have_attribute("data-level", "warn")
    expect(storage).to_contain_text("1 袋即将超时")
    expect(storage).to_contain_text("在暂存间")
    expect(storage).to_contain_text("40.5 小时")
    page.shot("dwell")
    page.by("lang-toggle").tap()
    expect(storage).to_contain_text("nearly overdue")
    expect(storage).to_contain_text("in storage")
    page.by("lang-toggle").tap()

    kiosk_source.update(dwell=[d for d in DWELL["dwell"] if d["level"] == "warn"])
    expect(banner).to_have_attribute("data-level", "warn")  # warnings only: yellow
    assert banner.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(240, 180, 0)"
    expect(cart).to_contain_text("1 袋即将超时")
    kiosk_source.update(dwell=[])
    expect(banner).to_be_hidden()


def test_label_notes_are_toggles_and_the_bag_shows_them(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(NOTES)
    page.wait_step("stop")
    on, off = page.by("action-note:MIXED_DRUGS"), page.by("action-note:DOUBLE_BAG")
    expect(on).to_have_attribute("aria-pressed", "true")
    expect(on).to_have_class(re.compile(r"\bchosen\b"))
    expect(off).to_have_attribute("aria-pressed", "false")
    expect(off).not_to_have_class(re.compile(r"\bchosen\b"))
    assert on.evaluate("el => getComputedStyle(el).backgroundColor") != off.evaluate(
        "el => getComputedStyle(el).backgroundColor")
    expect(page.by("pending-notes")).to_contain_text("含少量药物性废物")
    for b in (on, off):
        box = b.bounding_box()
        assert box is not None and box["height"] >= MIN_TARGET_PX
    page.shot("notes")
    off.tap()
    assert kiosk_source.wait_acts(1) == [("note:DOUBLE_BAG", None)]
    kiosk_source.update(pending={**NOTES["pending"], "notes": []},
                        actions=[{**a, "style": "normal"} if a["id"] == "note:MIXED_DRUGS" else a
                                 for a in NOTES["actions"]])
    expect(on).to_have_attribute("aria-pressed", "false")
    expect(page.by("pending-notes")).to_have_count(0)


def test_chemical_components_are_typed_and_shown(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(CHEMICAL)
    page.wait_step("stop")
    expect(page.by("pending-components")).to_have_text("主要成分: 乙醇、甲醛")
    page.tap_action("components")
    expect(page.by("pad")).to_have_attribute("data-mode", "text")
    page.by("pad-field").fill("二甲苯")
    page.by("pad-ok").tap()
    assert kiosk_source.wait_acts(1) == [("components", "二甲苯")]


def test_a_loss_is_described_in_words(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(MISSING)
    page.wait_step("storage")
    page.tap_action("report_lost")
    expect(page.by("pad")).to_have_attribute("data-mode", "text")
    expect(page.page.locator('[data-testid="pad-reasons"]')).to_be_hidden()
    text = "途中袋子破损，已按规定处理并报告，具体经过见科室记录。" * 3  # longer than a code: not cut
    page.by("pad-field").fill(text)
    page.by("pad-ok").tap()
    assert kiosk_source.wait_acts(1) == [("report_lost", text)]
    page.tap_action("reject_storage")
    assert kiosk_source.wait_acts(2)[-1] == ("reject_storage", None)


def test_manual_code_entry_posts_a_scan(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    page.by("manual-open").tap()
    pad = page.by("pad")
    expect(pad).to_have_attribute("data-mode", "scan")
    for key in "WC1.B":
        pad.locator(f'[data-key="{key}"]').tap()
    page.shot("manual")
    page.by("pad-ok").tap()
    assert kiosk_source.wait_scans(1) == ["WC1.B"]
    expect(pad).to_be_hidden()


def test_a_hand_scanner_typing_like_a_keyboard_posts_a_scan(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    # All keys in one page task, as fast as a scanner: Playwright's own typing can be held up for
    # more than the page's 80 ms wedge gap on a loaded CI machine, which would make this flaky.
    page.page.evaluate("""text => {
        for (const key of [...text, "Enter"])
            document.body.dispatchEvent(new KeyboardEvent("keydown", {key, bubbles: true}));
    }""", "WC1.S.H330100001.S0042.7Q")
    assert kiosk_source.wait_scans(1) == ["WC1.S.H330100001.S0042.7Q"]


def test_saved_appears_only_when_saved_seq_changes(open_kiosk: Callable[..., KioskPage], kiosk: KioskServer,
                                                   kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(SAVED)  # the page opens on a screen whose record was saved before: no tick for it
    kp = open_kiosk(kiosk.url)
    kp.wait_step("round")
    expect(kp.by("message")).to_have_text("✔ 已保存交接记录 #12")
    expect(kp.by("saved")).to_be_hidden()
    kiosk_source.show(STOP)
    kp.wait_step("stop")
    expect(kp.by("saved")).to_be_hidden()
    kiosk_source.show({**SAVED, "saved_seq": 13, "message": {"zh": "已保存交接记录 #13", "en": "Saved #13"}})
    kp.wait_step("round")
    expect(kp.by("saved")).to_be_visible()
    expect(kp.by("saved")).to_have_text("✓ 已保存 #13")
    kp.shot("saved")
    kp.by("saved").tap()  # dismissed by a tap (else it goes after a few seconds)
    expect(kp.by("saved")).to_be_hidden()
    kiosk_source.update(weight={"net_g": 15, "stable": True, "error": None})  # same saved_seq: no tick again
    expect(kp.by("weight-value")).to_have_text("0.015")
    expect(kp.by("saved")).to_be_hidden()
    kiosk_source.show({**STOP, "saved_seq": None, "step": "saving", "prompt": {"zh": "正在保存…", "en": "Saving…"}})
    kp.wait_step("saving")
    expect(kp.by("saved")).to_be_hidden()  # "saving" is not "saved"


def test_offline_unsent_and_device_faults(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    kiosk_source.show(OFFLINE)
    page.wait_step("round")
    expect(page.by("online")).to_have_text("○ 离线")
    expect(page.by("online")).to_have_attribute("data-level", "bad")
    expect(page.by("unsent")).to_have_text("待上传 37")
    expect(page.by("unsent")).to_have_attribute("data-level", "warn")
    expect(page.by("dev-camera")).to_have_text("相机 无画面")
    expect(page.by("dev-camera")).to_have_attribute("data-level", "bad")
    expect(page.by("dev-printer")).to_have_text("打印机 未接入")
    expect(page.by("dev-actuator")).to_have_text("称台 故障")
    expect(page.by("clock")).to_contain_text("⚠ 未同步")
    expect(page.by("weight")).to_have_attribute("data-stable", "error")
    expect(page.by("weight-state")).to_have_text("✖ 超载")
    expect(page.by("overdue")).to_be_visible()
    page.shot("offline")


def test_reconnects_after_the_server_restarts(page: KioskPage, kiosk: KioskServer,
                                              kiosk_source: ScriptedSource) -> None:
    page.allow_console(r"net::ERR_CONNECTION_REFUSED|api/events")
    page.wait_step("idle")
    port = kiosk.port
    kiosk.stop()
    page.wait_link("down")
    expect(page.by("link-lost")).to_be_visible()
    expect(page.by("link-lost")).to_contain_text("与推车程序的连接已断开")
    expect(page.by("online")).to_have_text("○ 离线")
    page.shot("link-lost")
    kiosk_source.show(STOP)
    with KioskServer(kiosk_source, KioskSettings(port=port)):
        page.wait_link("up", timeout_ms=15000)
        page.wait_step("stop")
        expect(page.by("link-lost")).to_be_hidden()
        expect(page.by("online")).to_have_text("● 在线")


def test_a_refused_tap_shows_why(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    page.allow_console(r"status of 400")
    kiosk_source.show(STOP)
    page.wait_step("stop")
    kiosk_source.quietly(actions=[])
    page.tap_action("remove_last")
    expect(page.by("local-error")).to_be_visible()
    expect(page.by("local-error")).to_contain_text("no action 'remove_last'")


def test_a_page_of_an_older_release_reloads_itself(open_kiosk: Callable[..., KioskPage], tmp_path: Path,
                                                   kiosk_source: ScriptedSource) -> None:
    """After an update the agent restarts with new files: the open page must not keep running the old ones."""
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(STATIC_DIR, old)
    shutil.copytree(STATIC_DIR, new)
    with (new / "kiosk.css").open("a") as f:
        f.write("\n/* next release */\n")
    server = KioskServer(kiosk_source, static_dir=old).start()
    try:
        kp = open_kiosk(server.url)
        kp.allow_console(r"net::ERR_CONNECTION_REFUSED|api/events")
        kp.wait_link("up")
        kp.page.evaluate("() => { window.__old_page = true; }")
        port = server.port
    finally:
        server.stop()
    kp.wait_link("down")
    with KioskServer(kiosk_source, KioskSettings(port=port), static_dir=new) as again:
        kp.page.wait_for_function("() => window.__old_page === undefined", timeout=15000)
        kp.wait_link("up")
        assert again.assets != server.assets


VOICE_STUB = """
window.__spoken = [];
class FakeUtterance { constructor(text) { this.text = text; this.lang = ""; this.voice = null; } }
Object.defineProperty(window, "SpeechSynthesisUtterance", { value: FakeUtterance, configurable: true, writable: true });
Object.defineProperty(window, "speechSynthesis", { configurable: true, value: {
  speak(u) { window.__spoken.push({ text: u.text, lang: u.lang }); }, cancel() {}, getVoices() { return []; } } });
"""


def spoken(kp: KioskPage) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = kp.page.evaluate("window.__spoken")
    return result


def test_voice_prompts_once_per_id_and_can_be_switched_off(open_kiosk: Callable[..., KioskPage], kiosk: KioskServer,
                                                           kiosk_source: ScriptedSource) -> None:
    kp = open_kiosk("about:blank")
    kp.page.add_init_script(VOICE_STUB)
    kp.page.goto(kiosk.url)
    kp.wait_step("idle")
    kp.page.wait_for_function("() => window.__spoken.length === 1")
    assert spoken(kp) == [{"text": "请扫描收集人员工牌", "lang": "zh-CN"}]
    kiosk_source.show(STOP)
    kp.page.wait_for_function("() => window.__spoken.length === 2")
    kiosk_source.update(weight={"net_g": 1300, "stable": True, "error": None})  # same voice id: silent
    expect(kp.by("weight-value")).to_have_text("1.300")
    assert [s["text"] for s in spoken(kp)] == ["请扫描收集人员工牌", "请放置医废袋"]

    kp.by("voice-toggle").tap()
    expect(kp.by("voice-toggle")).to_have_attribute("aria-pressed", "false")
    kiosk_source.show(CONFIRM)
    kp.wait_step("confirm")
    assert len(spoken(kp)) == 2
    kp.page.reload()
    kp.wait_step("confirm")
    expect(kp.by("voice-toggle")).to_have_attribute("aria-pressed", "false")  # remembered
    assert spoken(kp) == []

    kp.by("voice-toggle").tap()
    kp.by("lang-toggle").tap()
    kiosk_source.show(IDLE)
    kp.page.wait_for_function("() => window.__spoken.length === 1")
    assert spoken(kp) == [{"text": "Please scan the collector's badge", "lang": "en-US"}]


def test_real_speech_synthesis_without_voices_does_not_break(page: KioskPage, kiosk_source: ScriptedSource) -> None:
    """Headless Chromium has speechSynthesis but no voices: the prompt is skipped, the page goes on."""
    kiosk_source.show(STOP)
    page.wait_step("stop")
    expect(page.page.locator("body")).to_have_attribute("data-voice-id", "3")
    kiosk_source.show(CONFIRM)
    page.wait_step("confirm")  # and the fixture checks the console stayed clean


def test_the_page_needs_nothing_but_the_cart(open_kiosk: Callable[..., KioskPage], kiosk: KioskServer) -> None:
    kp = open_kiosk("about:blank")
    urls: list[str] = []
    kp.page.on("request", lambda r: urls.append(r.url))
    kp.page.goto(kiosk.url)
    kp.wait_step("idle")
    assert urls and all(u.startswith(kiosk.url) for u in urls), urls


@pytest.mark.parametrize("model", [IDLE, STOP, CONFIRM, CATEGORY, SAVED, OFFLINE, STORAGE, NOTES, CHEMICAL, DWELL,
                                   MISSING],
                         ids=["idle", "stop", "confirm", "category", "saved", "offline", "storage", "notes",
                              "chemical", "dwell", "missing"])
def test_every_screen_renders_without_errors_in_both_languages(page: KioskPage, kiosk_source: ScriptedSource,
                                                               model: dict[str, Any]) -> None:
    kiosk_source.show(model)
    page.wait_step(model["step"])
    expect(page.by("prompt")).to_have_text(model["prompt"]["zh"])
    page.by("lang-toggle").tap()
    expect(page.by("prompt")).to_have_text(model["prompt"]["en"])
