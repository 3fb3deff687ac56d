"""The console's quarantine, dead-letter, audit and key pages over HTTP (httpx) against a real gateway:
real mosquitto, real SQLite, a real HTTP SimPlatform.  One rig for the module; every test makes its
own carts.

Roles: a viewer reads but every action is 403 (and the page shows no buttons); an operator acts; the
audit log and key enrollment are an admin's.  Every POST needs the CSRF token.  Each action's
outcome is flashed on the page after the redirect, and each change has its audit row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from sim_devices.platform import SimPlatform
from tests.browser.action_fixtures import ActionRig
from tests.browser.console_fixtures import csrf_of
from wastecart.broker import PrivateBroker


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, broker: PrivateBroker) -> Iterator[ActionRig]:
    with SimPlatform(seed=15) as platform:
        r = ActionRig(tmp_path_factory.mktemp("actions"), broker, platform)
        try:
            yield r
        finally:
            r.close()


@pytest.fixture(scope="module")
def clients(rig: ActionRig) -> Iterator[dict[str, httpx.Client]]:
    made = {name: rig.client(name) for name in ("view", "ops", "root")}
    try:
        yield made
    finally:
        for c in made.values():
            c.close()


def act(client: httpx.Client, path: str, page: str, lang: str = "zh", **form: str) -> str:
    """POST ``form`` (with the CSRF token of ``page``, read in ``lang``) to ``path``; follow the redirect;
    "true|false: " + the flash's text."""
    token = csrf_of(client.get(page, params={"lang": lang}).text)
    done = client.post(path, data={"csrf": token, **form})
    assert done.status_code == 303, done.text
    shown = client.get(done.headers["location"])
    found = re.search(r'data-testid="flash" data-ok="(true|false)">([^<]*)<', shown.text)
    assert found, f"no flash on {done.headers['location']}"
    assert "data-testid=\"flash\"" not in client.get(done.headers["location"]).text  # shown once
    return f"{found.group(1)}: {found.group(2)}"


def test_a_viewer_reads_but_cannot_act(rig: ActionRig, clients: dict[str, httpx.Client]) -> None:
    _, _, qid = rig.stranger()
    _, record_id = rig.dead()
    view = clients["view"]
    page = view.get(f"/quarantine/{qid}")
    assert page.status_code == 200 and "UNKNOWN_CART" in page.text
    assert 'data-testid="q-release"' not in page.text and 'data-testid="q-discard"' not in page.text
    dead = view.get("/dead")
    assert record_id in dead.text and f'data-testid="retry-{record_id}"' not in dead.text
    token = csrf_of(page.text)
    for path in (f"/quarantine/{qid}/release", f"/quarantine/{qid}/discard", f"/dead/{record_id}/retry",
                 f"/dead/{record_id}/discard"):
        refused = view.post(path, data={"csrf": token, "reason": "because"})
        assert refused.status_code == 403, path
    assert view.get("/audit").status_code == 403 and clients["ops"].get("/audit").status_code == 403
    assert view.post("/keys", data={"csrf": token}).status_code == 403
    assert clients["ops"].get("/keys").status_code == 403
    ops = clients["ops"]
    assert ops.post(f"/quarantine/{qid}/release", data={"csrf": "forged"}).status_code == 403  # CSRF first
    item = rig.app.store.quarantine_item(qid)
    state = rig.app.store.record_state(record_id)
    assert item is not None and item["state"] == "waiting" and state is not None and state["forward_state"] == "dead"
    assert not [e for e in rig.app.store.audit_entries() if str(qid) in e["target"] or record_id in e["target"]]


def test_an_operator_discards_with_a_reason_only(rig: ActionRig, clients: dict[str, httpx.Client]) -> None:
    cart, _, qid = rig.stranger()
    ops = clients["ops"]
    page = ops.get(f"/quarantine/{qid}?lang=en")
    item = rig.app.store.quarantine_item(qid)
    assert item is not None
    assert 'data-testid="q-release"' in page.text and f"kept {item['size']} of {item['size']} bytes" in page.text
    assert 'data-format="json"' in page.text  # a whole signed record: shown as JSON text
    assert act(ops, f"/quarantine/{qid}/discard", f"/quarantine/{qid}", "en", reason="  ") == \
        "false: Not done: reason is required, 1 to 500 characters"
    assert act(ops, f"/quarantine/{qid}/discard", f"/quarantine/{qid}", "en", reason="a bench payload") == \
        f"true: #{qid} discarded"
    assert act(ops, f"/quarantine/{qid}/release", f"/quarantine/{qid}", "en") == \
        f"false: Not done: #{qid} was discarded already"
    entry = rig.app.store.audit_entries(1)[0]
    assert (entry["user"], entry["action"], entry["target"], entry["reason"]) == (
        "ops", "quarantine.discard", f"quarantine {qid}", "a bench payload")
    listed = ops.get(f"/quarantine?state=discarded&cart={cart.cart}")
    assert f'data-testid="q-{qid}"' in listed.text
    assert f'data-testid="q-{qid}"' not in ops.get(f"/quarantine?cart={cart.cart}").text  # waiting by default
    assert ops.get("/quarantine?state=lost").status_code == 400
    assert ops.get("/quarantine/999999").status_code == 404
    token = csrf_of(page.text)
    assert ops.post("/quarantine/999999/discard", data={"csrf": token, "reason": "x"}).status_code == 404


def test_enroll_a_key_then_release_and_the_platform_gets_it(rig: ActionRig, clients: dict[str, httpx.Client]) -> None:
    cart, env, qid = rig.stranger()
    root, ops = clients["root"], clients["ops"]
    assert act(ops, f"/quarantine/{qid}/release", f"/quarantine/{qid}").startswith(
        f"false: 未放行：#{qid} 仍未通过校验（UNKNOWN_CART")
    assert act(root, "/keys", "/keys", cart="bad/cart", key=cart.public_key).startswith(
        "false: 未登记：车辆编号 (cart)")
    assert act(root, "/keys", "/keys", cart=cart.cart, key="not-a-key").startswith("false: 未登记：公钥 (key)")
    assert act(root, "/keys", "/keys", cart=cart.cart, key=cart.public_key) == f"true: 车辆 {cart.cart} 的公钥已登记"
    assert (rig.keys / f"{cart.cart}.pub").read_text().strip() == cart.public_key
    assert act(root, "/keys", "/keys", cart=cart.cart, key=cart.public_key).startswith("true: ")  # the same: no-op
    other = wire.public_key_text(Ed25519PrivateKey.generate().public_key())
    assert act(root, "/keys", "/keys", cart=cart.cart, key=other).startswith("false: 未登记：车辆")
    assert act(root, "/keys", "/keys", cart=cart.cart, key=other, replace="1").startswith("false: 未执行：原因")
    assert (rig.keys / f"{cart.cart}.pub").read_text().strip() == cart.public_key
    assert act(root, "/keys", "/keys", cart=cart.cart, key=cart.public_key).startswith("true: ")
    assert act(ops, f"/quarantine/{qid}/release", f"/quarantine/{qid}").startswith(f"true: #{qid} 已放行")
    rig.accepted(str(env["id"]))
    enrolled = [e for e in rig.app.store.audit_entries() if e["target"] == f"cart {cart.cart}"]
    assert [(e["user"], e["action"]) for e in enrolled] == [("root", "key.enroll")]  # refusals and no-ops: none
    released = rig.app.store.audit_entries(1)[0]
    assert (released["user"], released["action"], released["target"]) == ("ops", "quarantine.release",
                                                                          f"quarantine {qid}")


def test_replacing_a_key_needs_the_box_and_a_reason(rig: ActionRig, clients: dict[str, httpx.Client]) -> None:
    root = clients["root"]
    cart = "REPLACE-" + wire.uuid7()[:6].upper()
    first, second = (wire.public_key_text(Ed25519PrivateKey.generate().public_key()) for _ in range(2))
    assert act(root, "/keys", "/keys", cart=cart, key=first).startswith("true: ")
    assert act(root, "/keys", "/keys", cart=cart, key=second, replace="1", reason="the cart's board was swapped") \
        .startswith("true: ")
    assert (rig.keys / f"{cart}.pub").read_text().strip() == second
    entry = rig.app.store.audit_entries(1)[0]
    assert (entry["action"], entry["reason"]) == ("key.enroll", "the cart's board was swapped")
    assert first in entry["detail"] and second in entry["detail"]
    assert f'data-testid="key-{cart}"' in root.get("/keys").text


def test_retry_and_discard_a_dead_letter(rig: ActionRig, clients: dict[str, httpx.Client]) -> None:
    _, retried = rig.dead()
    _, dropped = rig.dead()
    ops = clients["ops"]
    assert act(ops, f"/dead/{retried}/retry", "/dead", "en") == f"true: Record {retried} is being forwarded again"
    rig.accepted(retried)
    assert act(ops, f"/dead/{retried}/retry", "/dead").startswith("false: ")  # accepted now: not a dead letter
    assert act(ops, f"/dead/{dropped}/discard", "/dead", reason="").startswith("false: ")
    assert act(ops, f"/dead/{dropped}/discard", "/dead", reason="refused for good: duplicate of a paper form") \
        .startswith("true: ")
    assert f'data-testid="dead-{dropped}"' not in ops.get("/dead").text
    assert f'data-testid="dead-{dropped}"' in ops.get("/dead?state=discarded").text
    assert act(ops, f"/dead/{dropped}/retry", "/dead").startswith("false: ")
    assert dropped not in {item["id"] for item in rig.platform.records()}
    mine = [(e["user"], e["action"]) for e in rig.app.store.audit_entries() if e["target"] in (
        f"record {retried}", f"record {dropped}")]
    assert mine == [("ops", "dead.discard"), ("ops", "dead.retry")]  # newest first
    assert ops.post("/dead/no-such/retry", data={"csrf": csrf_of(ops.get("/dead").text)}).status_code == 404


def test_the_audit_page_is_an_admins_and_says_the_chain_holds(rig: ActionRig,
                                                              clients: dict[str, httpx.Client]) -> None:
    _, _, qid = rig.stranger()
    act(clients["ops"], f"/quarantine/{qid}/discard", f"/quarantine/{qid}", reason="seen in the audit")
    page = clients["root"].get("/audit?lang=en")
    assert page.status_code == 200
    assert 'data-testid="audit-verdict" data-ok="true"' in page.text and "The audit chain holds" in page.text
    assert "seen in the audit" in page.text and "quarantine.discard" in page.text
    assert 'data-testid="nav-audit"' in page.text
    assert 'data-testid="nav-audit"' not in clients["ops"].get("/dead").text


def test_nothing_without_a_login(rig: ActionRig) -> None:
    with httpx.Client(base_url=rig.url) as anon:
        assert anon.get("/quarantine").status_code == 303
        assert anon.post("/dead/x/retry", data={"csrf": "x"}).status_code == 401
        assert anon.get("/audit").status_code == 303
