"""The ledger in Debian's Chromium (Playwright) against a real gateway whose carts published signed
records over MQTT: find a bag by its code and follow its path to a record and its verdict; a record
that no longer verifies says so; a void and its record link both ways; a bad date is one clear line;
the summaries draw their chart.  Screenshots go to ``tests/browser/artifacts/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sim_devices.platform import SimPlatform
from tests.browser.conftest import KioskPage, console_login
from tests.browser.console_fixtures import PASSWORDS
from tests.browser.ledger_fixtures import LedgerRig, expected_summary
from wastecart.broker import PrivateBroker


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory, broker: PrivateBroker) -> Iterator[LedgerRig]:
    with SimPlatform(seed=15) as platform:
        rig = LedgerRig(tmp_path_factory.mktemp("ledger-browser"), broker, platform)
        try:
            yield rig
        finally:
            rig.close()


def open_as(open_kiosk: Callable[..., KioskPage], ledger: LedgerRig, path: str, page: str,
            name: str = "view") -> KioskPage:
    """A fresh browser context on ``path``: the login page first, then back to ``path``."""
    return console_login(open_kiosk, ledger.url.rstrip("/") + path, name, PASSWORDS[name], page=page)


def test_find_a_bag_by_its_code_and_follow_its_path(open_kiosk: Callable[..., KioskPage], ledger: LedgerRig) -> None:
    kp = open_as(open_kiosk, ledger, "/ledger", "ledger")
    kp.by("filter-bag").fill("baga05")  # typed in lower case
    kp.by("filter-submit").click()
    kp.page.wait_for_selector('table[data-testid="ledger-rows"]')
    rows = kp.page.locator('table[data-testid="ledger-rows"] tbody tr')
    assert [rows.nth(i).get_attribute("data-type") for i in range(rows.count())] == ["transfer", "storage_in",
                                                                                      "handover"]
    kp.shot("search")
    kp.by("bag-link").click()
    kp.page.wait_for_selector('body[data-page="bag"]')
    steps = kp.page.locator('[data-testid="bag-path"] > li')
    assert [steps.nth(i).get_attribute("data-status") for i in range(steps.count())] == [
        "HANDED_OVER", "DEVIATION", "TRANSFERRED"]
    assert "入库（重量偏差）" in kp.by("step-2").inner_text() and "ROOM1" in kp.by("step-2").inner_text()
    assert "TRUCK1" in kp.by("step-3").inner_text()
    kp.shot("bag-path")
    kp.by("step-link-1").click()
    kp.page.wait_for_selector('body[data-page="record"]')
    assert kp.by("verdict").get_attribute("data-verdict") == "valid"
    assert kp.by("verdict-text").inner_text() == "签名有效"
    assert kp.by("chain").inner_text().startswith("已验证")
    assert "ICU 的 N0001 将 2 袋医疗废物（2.950 kg）" in kp.by("sentence").inner_text()
    assert not kp.by("raw-envelope").is_visible()  # for experts, folded away
    kp.page.locator('[data-testid="raw"] summary').click()
    assert ledger.recs["h3"]["hash"] in kp.by("raw-envelope").inner_text()
    kp.shot("record")


def test_a_void_and_its_record_link_both_ways(open_kiosk: Callable[..., KioskPage], ledger: LedgerRig) -> None:
    h2, void = ledger.recs["h2"], ledger.recs["v_whole"]
    kp = open_as(open_kiosk, ledger, f"/records/{h2['id']}", "record")
    assert "科室选错" in kp.by("referred-by").inner_text()
    kp.by(f"referred-{void['id']}").click()
    kp.page.wait_for_selector('body[data-page="record"] [data-testid="points-at"]')
    assert kp.by("record-title").inner_text().startswith("作废记录")
    kp.by("points-at-link").click()
    kp.page.wait_for_url(f"**/records/{h2['id']}")


def test_a_record_under_a_replaced_key_shows_an_invalid_signature(open_kiosk: Callable[..., KioskPage],
                                                                  ledger: LedgerRig) -> None:
    kp = open_as(open_kiosk, ledger, f"/records/{ledger.forged['id']}", "record")
    assert kp.by("verdict").get_attribute("data-verdict") == "invalid"
    assert kp.by("verdict-text").inner_text() == "签名无效"
    assert "253" in kp.by("verdict").evaluate("el => getComputedStyle(el).backgroundColor")  # red
    kp.shot("forged")
    kp.page.goto(ledger.url.rstrip("/") + f"/records/{ledger.nokey['id']}")
    assert kp.by("verdict-text").inner_text() == "无公钥"


def test_a_bad_date_is_one_clear_line(open_kiosk: Callable[..., KioskPage], ledger: LedgerRig) -> None:
    kp = open_as(open_kiosk, ledger, "/ledger", "ledger")
    kp.allow_console("status of 400")  # the page itself answers 400
    kp.by("filter-from").fill("2026-02-30")
    kp.by("filter-submit").click()
    kp.by("ledger-error").wait_for()
    assert kp.by("ledger-error").inner_text() == "筛选条件有误: from: '2026-02-30' is not a date (YYYY-MM-DD)"
    assert kp.by("filter-from").get_attribute("aria-invalid") == "true"
    assert kp.by("filter-from").input_value() == "2026-02-30"  # kept, to be corrected
    kp.shot("bad-date")


def test_summaries_draw_the_same_figures(open_kiosk: Callable[..., KioskPage], ledger: LedgerRig,
                                         tmp_path: Path) -> None:
    kp = open_as(open_kiosk, ledger, "/summaries?by=day", "summaries")
    kp.page.wait_for_selector('body[data-chart="4"]')  # 11-30, 12-01, 12-02, 12-03
    assert kp.page.locator("#summary-plot canvas").count() == 1
    want = expected_summary([*ledger.recs.values(), ledger.forged, ledger.nokey])
    total = kp.by("summary-total")
    assert total.locator('[data-col="bags"]').inner_text() == str(sum(v[0] for v in want.values()))
    assert total.locator('[data-col="kg"]').inner_text() == f"{sum(v[1] for v in want.values()) / 1000:.3f}"
    kp.shot("summaries")
