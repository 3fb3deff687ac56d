"""Quarantine, dead letters, keys and the audit log in Debian's Chromium (Playwright), against a real
gateway (mosquitto, SQLite) and the real HTTP SimPlatform:

(a) a record of a cart whose key the gateway lacks is quarantined (UNKNOWN_CART); an admin enrolls
    the key on the console's key page and releases the record; it is stored and the platform accepts it;
(b) the platform refuses a record until it is dead-lettered; fixed, an operator retries it from the
    console and the platform accepts it;
(c) a viewer sees no action buttons and a POST made anyway is refused (403);
(d) an operator discards a payload with a reason; the audit log lists those actions with who, when
    and why, for an admin only.

One rig for the module; the tests run in this order and (d) reads what (a)-(b) did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sim_devices.platform import SimPlatform
from tests.browser.action_fixtures import ActionRig
from tests.browser.conftest import KioskPage, console_login
from tests.browser.console_fixtures import PASSWORDS
from wastecart.broker import PrivateBroker

DONE: dict[str, Any] = {}  # what (a) and (b) did, for (d)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, broker: PrivateBroker) -> Iterator[ActionRig]:
    with SimPlatform(seed=16) as platform:
        r = ActionRig(tmp_path_factory.mktemp("browser-actions"), broker, platform)
        try:
            yield r
        finally:
            r.close()


def log_in(open_kiosk: Callable[..., KioskPage], rig: ActionRig, name: str) -> KioskPage:
    return console_login(open_kiosk, rig.url + "?lang=en", name, PASSWORDS[name])


def flash(kp: KioskPage) -> str:
    shown = kp.by("flash")
    shown.wait_for()
    return f"{shown.get_attribute('data-ok')}: {shown.inner_text()}"


def test_a_enroll_the_key_release_and_the_platform_accepts(open_kiosk: Callable[..., KioskPage],
                                                           rig: ActionRig) -> None:
    cart, env, qid = rig.stranger()
    kp = log_in(open_kiosk, rig, "root")
    kp.by("nav-quarantine").click()
    kp.page.wait_for_selector('body[data-page="quarantine"]')
    line = kp.by(f"q-{qid}")
    assert line.get_attribute("data-kind") == "UNKNOWN_CART" and line.get_attribute("data-state") == "waiting"
    kp.by(f"q-open-{qid}").click()
    kp.page.wait_for_selector('body[data-page="quarantine-item"]')
    assert kp.by("q-payload").get_attribute("data-format") == "json"
    assert str(env["id"]) in kp.by("q-payload").inner_text()  # the kept record, readable
    kp.by("q-release").click()  # no key yet: refused, and why
    assert flash(kp).startswith(f"false: Not released: #{qid} still fails its checks (UNKNOWN_CART")
    kp.shot("quarantine-unknown-cart")

    kp.by("q-enroll").click()  # the key page, the cart filled in
    kp.page.wait_for_selector('body[data-page="keys"]')
    assert kp.by("keys-cart").input_value() == cart.cart
    kp.by("keys-key").fill(cart.public_key)
    kp.by("keys-submit").click()
    assert flash(kp) == f"true: Cart {cart.cart}'s key is enrolled"
    kp.by(f"key-{cart.cart}").wait_for()
    kp.shot("keys-enrolled")

    kp.page.goto(f"{rig.url}quarantine/{qid}")
    kp.by("q-release").click()
    assert flash(kp).startswith(f"true: #{qid} released")
    assert kp.by("q-state").inner_text() == "released" and kp.by("q-actions").count() == 0
    kp.shot("quarantine-released")
    assert rig.app.store.chain_state(str(env["id"])) == "verified"  # stored
    rig.accepted(str(env["id"]))  # and forwarded: the platform holds it
    DONE["qid"], DONE["cart"] = qid, cart.cart


def test_b_retry_a_dead_letter_once_the_platform_is_fixed(open_kiosk: Callable[..., KioskPage],
                                                          rig: ActionRig) -> None:
    _, record_id = rig.dead()  # refused (503) until the forwarder gave up; the platform is fixed after
    assert record_id not in {item["id"] for item in rig.platform.records()}
    kp = log_in(open_kiosk, rig, "ops")
    kp.by("nav-dead").click()
    kp.page.wait_for_selector('body[data-page="dead"]')
    line = kp.by(f"dead-{record_id}")
    assert "HTTP 503" in line.inner_text()  # the platform's last answer
    kp.shot("dead-letter")
    kp.by(f"retry-{record_id}").click()
    assert flash(kp) == f"true: Record {record_id} is being forwarded again"
    assert kp.by(f"dead-{record_id}").count() == 0  # no longer waiting
    rig.accepted(record_id)
    kp.shot("dead-retried")
    DONE["record"] = record_id


def test_c_a_viewer_sees_no_buttons_and_is_refused(open_kiosk: Callable[..., KioskPage], rig: ActionRig) -> None:
    _, _, qid = rig.stranger()
    _, record_id = rig.dead()
    kp = log_in(open_kiosk, rig, "view")
    assert kp.by("nav-audit").count() == 0
    kp.page.goto(f"{rig.url}quarantine/{qid}")
    kp.by("q-state").wait_for()
    assert kp.by("q-release").count() == 0 and kp.by("q-discard").count() == 0 and kp.by("q-enroll").count() == 0
    kp.page.goto(f"{rig.url}dead")
    kp.by(f"dead-{record_id}").wait_for()
    assert kp.by(f"retry-{record_id}").count() == 0 and kp.by(f"discard-{record_id}").count() == 0
    kp.allow_console("403")
    status = kp.page.evaluate(
        """async (path) => {
            const csrf = document.querySelector('input[name="csrf"]').value;
            const r = await fetch(path, {method: "POST", headers: {"X-CSRF-Token": csrf}});
            return r.status;
        }""", f"/dead/{record_id}/retry")
    assert status == 403
    state = rig.app.store.record_state(record_id)
    assert state is not None and state["forward_state"] == "dead"
    kp.page.goto(f"{rig.url}audit")
    assert kp.by("error").inner_text() == "You may not do this"
    kp.shot("viewer-refused")
    DONE["waiting_qid"] = qid


def test_d_the_audit_log_shows_who_when_and_why_to_an_admin_only(open_kiosk: Callable[..., KioskPage],
                                                                 rig: ActionRig) -> None:
    assert {"qid", "record", "waiting_qid"} <= set(DONE), "runs after (a), (b) and (c)"
    ops = log_in(open_kiosk, rig, "ops")
    ops.page.goto(f"{rig.url}quarantine/{DONE['waiting_qid']}")
    ops.by("q-discard-reason").fill("a cart we do not run: its dealer's demo")
    ops.by("q-discard").click()
    assert flash(ops) == f"true: #{DONE['waiting_qid']} discarded"
    ops.page.goto(f"{rig.url}audit")
    ops.allow_console("403")
    assert ops.by("error").count() == 1 and ops.by("audit").count() == 0

    kp = log_in(open_kiosk, rig, "root")
    kp.by("nav-audit").click()
    kp.page.wait_for_selector('body[data-page="audit"]')
    assert kp.by("audit-verdict").get_attribute("data-ok") == "true"
    rows = kp.page.locator('[data-testid="audit"] tbody tr')
    seen = {(rows.nth(i).get_attribute("data-action"), rows.nth(i).get_attribute("data-user"),
             rows.nth(i).locator("td").nth(4).inner_text()) for i in range(rows.count())}
    assert ("key.enroll", "root", f"cart {DONE['cart']}") in seen
    assert ("quarantine.release", "root", f"quarantine {DONE['qid']}") in seen
    assert ("dead.retry", "ops", f"record {DONE['record']}") in seen
    discard = kp.page.locator('[data-testid="audit"] tbody tr[data-action="quarantine.discard"]')
    assert discard.count() == 1
    assert discard.locator("td").nth(5).inner_text() == "a cart we do not run: its dealer's demo"
    assert all(rows.nth(i).locator("td").nth(1).inner_text().startswith("20") for i in range(rows.count()))  # when
    kp.shot("audit-log")
