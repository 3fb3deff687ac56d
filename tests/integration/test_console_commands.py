"""Remote commands from the console to a real cart (issue 15): real mosquitto, real gateway and
SQLite, the console over HTTP (httpx), and a cart that really runs them — its ledger, its agent with
a printer on a SimPrinter, its uplink believing only the gateway's key (``CommandRig``).

What is checked: each command is answered by the cart and the answer is on the cart's list (done,
or refused and why); a reprint puts the bag's label on the printer; a config changes the running
workflow and outlives a restart; bad input is named and nothing is sent; a viewer is refused; who
asked is in the store and in the audit log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from edge import codes, remote
from sim_devices.platform import SimPlatform
from tests.browser.command_fixtures import CommandRig
from tests.browser.console_fixtures import csrf_of
from tests.integration.test_gateway import SITE
from wastecart.broker import PrivateBroker


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, broker: PrivateBroker) -> Iterator[CommandRig]:
    with SimPlatform(seed=15) as platform:
        r = CommandRig(tmp_path_factory.mktemp("commands"), broker, platform)
        try:
            yield r
        finally:
            r.close()


@pytest.fixture(scope="module")
def ops(rig: CommandRig) -> Iterator[httpx.Client]:
    c = rig.client("ops")
    try:
        yield c
    finally:
        c.close()


def test_a_reprint_puts_the_bags_label_on_the_carts_printer(rig: CommandRig, ops: httpx.Client) -> None:
    before = len(rig.printer.jobs())
    sent = rig.send(ops, "reprint", label="BAG00002")
    assert sent.status_code == 200, sent.text
    counter = sent.json()["counter"]
    answer = rig.answer(ops, counter)
    assert (answer["name"], answer["outcome"], answer["requested_by"]) == ("reprint", "done", "ops")
    assert "BAG00002" in answer["reason"]
    job = rig.printer.wait_jobs(before + 1)[-1]
    assert [codes.decode(q).ident for q in job["qr"]] == ["BAG00002"]
    # the label's own QR text works as well as the bare package code
    again = rig.answer(ops, rig.send(ops, "reprint", label=job["qr"][0]).json()["counter"])
    assert again["outcome"] == "done"
    assert codes.decode(rig.printer.wait_jobs(before + 2)[-1]["qr"][0]).ident == "BAG00002"


def test_a_reprint_the_cart_cannot_do_is_refused_with_why(rig: CommandRig, ops: httpx.Client) -> None:
    unknown = rig.answer(ops, rig.send(ops, "reprint", label="BAG09999").json()["counter"])
    assert unknown["outcome"] == "refused" and "not in this cart's ledger" in unknown["reason"]
    good = codes.encode(codes.Code("B", SITE, "BAG00001", "I"))
    damaged = good[:-1] + ("0" if good[-1] != "0" else "1")  # the gateway cannot tell; the cart's parser can
    refused = rig.answer(ops, rig.send(ops, "reprint", label=damaged).json()["counter"])
    assert refused["outcome"] == "refused" and "check characters" in refused["reason"]
    rig.printer.set_state("paper_out")
    try:
        jammed = rig.answer(ops, rig.send(ops, "reprint", label="BAG00001").json()["counter"])
    finally:
        rig.printer.set_state("ok")
    assert jammed["outcome"] == "refused" and jammed["reason"].startswith("printer error")


def test_a_config_changes_the_running_workflow_and_outlives_a_restart(rig: CommandRig, ops: httpx.Client) -> None:
    sent = rig.send(ops, "config", tolerance_g="80", storage_overdue_s="86400", tolerance_pct="")
    answer = rig.answer(ops, sent.json()["counter"])
    assert answer["outcome"] == "done" and answer["args"] == {"tolerance_g": 80, "storage_overdue_s": 86400}
    assert "tolerance_g 50→80" in answer["reason"] and "storage_overdue_s 172800→86400" in answer["reason"]
    assert (rig.limits.tolerance_g, rig.limits.storage_overdue_h) == (80, 24.0)
    saved = json.loads((rig.cart_dir / remote.OVERRIDES_FILE).read_text())
    assert saved == {"tolerance_g": 80, "storage_overdue_s": 86400}
    listed = ops.get(f"/api/carts/{rig.cart.cart}/commands").json()
    assert listed["config"]["tolerance_g"] == {"min": 0, "max": 5000, "last": 80}
    rig.restart_cart()  # a new boot on the same folder
    assert (rig.limits.tolerance_g, rig.limits.storage_overdue_h) == (80, 24.0)
    same = rig.answer(ops, rig.send(ops, "config", tolerance_g="80").json()["counter"])  # the new boot's
    assert same["outcome"] == "done" and same["reason"] == "no change: already set"


def test_time_and_resend_are_answered(rig: CommandRig, ops: httpx.Client) -> None:
    asked_ms = time.time_ns() // 1_000_000
    timed = rig.answer(ops, rig.send(ops, "time").json()["counter"])
    assert timed["outcome"] == "done" and abs(timed["args"]["utc_ms"] - asked_ms) < 5_000
    assert timed["args"]["utc_ms"] in rig.offered
    resent = rig.answer(ops, rig.send(ops, "resend", from_seq="1").json()["counter"])
    assert resent["outcome"] == "done"
    beyond = rig.answer(ops, rig.send(ops, "resend", from_seq="99").json()["counter"])
    assert beyond["outcome"] == "refused" and "beyond the head 3 + 1" in beyond["reason"]


@pytest.mark.parametrize(("name", "form", "error"), [
    ("resend", {"from_seq": "zero"}, "起始序号：请输入整数"),
    ("reprint", {"label": "bag 1"}, "袋子编码：不是包装编码，也不是袋子标签的二维码内容"),
    ("config", {"max_bag_g": "10"}, "单袋上限（克）：须在 1000–1000000 之间"),
    ("config", {}, "请至少填写一项参数"),
])
def test_bad_input_is_named_and_nothing_is_sent(rig: CommandRig, ops: httpx.Client, name: str,
                                                form: dict[str, str], error: str) -> None:
    before = rig.app.store.cart_commands(rig.cart.cart)
    refused = rig.send(ops, name, **form)
    assert refused.status_code == 400 and refused.json() == {"error": error}
    assert rig.app.store.cart_commands(rig.cart.cart) == before


def test_a_viewer_is_refused_and_every_post_needs_the_token(rig: CommandRig, ops: httpx.Client) -> None:
    before = rig.app.store.cart_commands(rig.cart.cart)
    view = rig.client("view")
    try:
        page = view.get(f"/carts/{rig.cart.cart}")
        assert 'data-testid="cmd-viewer"' in page.text and 'data-testid="cmd-form-reprint"' not in page.text
        assert rig.send(view, "reprint", label="BAG00001").status_code == 403
        plain = view.post(f"/carts/{rig.cart.cart}/commands/time", data={"csrf": csrf_of(page.text)})
        assert plain.status_code == 403 and 'data-testid="error"' in plain.text  # the page's form, no script
        assert view.get(f"/api/carts/{rig.cart.cart}/commands").json()["may_send"] is False
    finally:
        view.close()
    assert ops.post(f"/carts/{rig.cart.cart}/commands/time", data={}).status_code == 403  # no CSRF token
    assert rig.send(ops, "reboot").status_code == 404
    assert ops.post("/carts/NO-SUCH/commands/time", data={},
                    headers={"X-CSRF-Token": "x"}).status_code == 403  # CSRF is checked before anything
    assert rig.app.store.cart_commands(rig.cart.cart) == before
    assert ops.get("/api/carts/NO-SUCH/commands").status_code == 404


def test_who_asked_is_in_the_audit_log(rig: CommandRig, ops: httpx.Client) -> None:
    counter = rig.send(ops, "time").json()["counter"]
    rig.answer(ops, counter)
    entries = [e for e in rig.app.store.audit_entries(200) if e["action"].startswith("command.")]
    mine = next(e for e in entries if json.loads(e["detail"])["counter"] == counter)
    assert (mine["user"], mine["action"], mine["target"]) == ("ops", "command.time", f"cart {rig.cart.cart}")
    assert {e["action"] for e in entries} >= {"command.reprint", "command.config", "command.time", "command.resend"}
    assert all(e["user"] == "ops" for e in entries)  # the gateway's own time offers are not the operator's
    assert rig.app.store.verify_audit()[1] is None
    gateways = [c for c in rig.app.store.cart_commands(rig.cart.cart) if c["requested_by"] is None]
    assert gateways and all(c["name"] in ("time", "resend") for c in gateways)  # its offers at each birth
