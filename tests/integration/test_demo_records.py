"""`wastecart demo` with two rounds makes every kind of record a regulator reads (issue 16): the
handovers signed by each department's own nurse, then in the last round one bag missing at the
storage check-in, declared lost by the supervisor (an incident), the check-in signed by the keeper,
and the transfer with a national manifest number typed twice and the driver's signature — each
record with the roster's names, all of them at the gateway and the platform, none left on the cart."""

from __future__ import annotations

import io
import json
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.codes import LETTER_OF
from edge.ledger.export import read_ledger
from edge.workflow import Step
from edge.workflow.state import DEFAULT_ZONE
from gateway.store.schema import DB_NAME
from wastecart import demo
from wastecart.broker import PrivateBroker

ROUNDS = 2


def test_the_last_round_checks_in_with_a_lost_bag_and_hands_over_to_the_transporter(
        broker: PrivateBroker, tmp_path: Path) -> None:
    said, summaries = io.StringIO(), list[dict[str, Any]]()
    summary = demo.run(ROUNDS, out=said, emit=summaries.append, data=tmp_path, broker=broker.url, kiosk_port=0,
                       console_port=0)
    assert summaries == [summary]
    types = ["handover", "handover", "incident", "storage_in", "transfer"]
    assert summary["committed"] == summary["stored_at_gateway"] == summary["accepted_by_platform"] == len(types)
    assert summary["records"] == {"handover": 2, "storage_in": 1, "transfer": 1, "incident": 1}
    assert summary["duplicates_at_platform"] == 0 and summary["unsynced_on_cart"] == 0
    assert summary["bags"] == ROUNDS * 3

    rows = read_ledger(tmp_path / "cart")
    assert [r["type"] for r in rows] == types and all(r["synced"] for r in rows)
    bodies = [r["record"]["body"] for r in rows]
    h1, h2, incident, stored, transfer = bodies
    roster = demo.demo_roster()

    for h in (h1, h2):  # the nurse of that department signed, by name; names beside every code
        nurse = h["from_party"]
        assert nurse["person_id"] == f"NUR-{h['department']}" and nurse["role"] == "nurse"
        assert h["department_name"] == roster.department_name(h["department"])
        assert nurse["name"] == roster.name_of(nurse["person_id"]) and h["org_name"] == roster.org_name
        assert h["to_party"]["name"] == "王建华" and h["roster"] == roster.stamp()
    handed = {ln["package_code"]: ln["weight_g"] for h in (h1, h2) for ln in h["lines"]}
    assert len(handed) == ROUNDS * 3

    [lost] = incident["bags"]  # one bag, the oldest, was not found at the check-in
    assert lost["package_code"] == h1["lines"][0]["package_code"] and incident["incident_type"] == "LOST"
    assert incident["total_g"] == lost["weight_g"] == handed[lost["package_code"]]
    assert incident["confirmed_by"]["person_id"] == demo.SUPERVISOR
    assert incident["confirmed_by"]["role"] == "supervisor" and incident["reported_by"]["person_id"] == demo.COLLECTOR
    assert lost["package_code"] in incident["description"]

    assert stored["keeper"]["person_id"] == demo.KEEPER and stored["keeper"]["name"] == "孙立新"
    assert stored["result"] == "ACCEPTED_WITH_NOTE" and stored["incidents"] == [rows[2]["id"]]
    assert {p["package_code"] for p in stored["packages"]} == set(handed) - {lost["package_code"]}
    assert {p["status"] for p in stored["packages"]} == {"OK"}  # re-weighed within the tolerance
    assert stored["summary"]["missing_count"] == 0 and stored["facility"] == demo.ROOM

    year = datetime.now(DEFAULT_ZONE).year
    assert re.fullmatch(rf"{year}{demo.MANIFEST_AREA}\d{{6}}", transfer["manifest"]["number"])
    assert transfer["manifest"]["type"] == "national"
    assert transfer["carrier"]["driver"]["person_id"] == demo.DRIVER and transfer["carrier"]["vehicle"] == demo.VEHICLE
    assert {ln["package_code"] for ln in transfer["lines"]} == {p["package_code"] for p in stored["packages"]}
    receiver = roster.receivers[roster.vehicles[demo.VEHICLE].receiver]
    assert all(ln["disposal_method"] == receiver.disposal[ln["category"]] for ln in transfer["lines"])
    assert transfer["final_destination"].startswith(receiver.name) and transfer["disposal_method"]
    for body in bodies:  # times in the hospital's zone, with its offset
        at = body.get("handover_at") or body.get("occurred_at") or body.get("moved_at") or body["handed_over_at"]
        assert at.endswith("+08:00"), at

    db = sqlite3.connect(tmp_path / "gateway" / DB_NAME)
    try:
        at_gateway = [(t, json.loads(env)["body"]) for t, env in db.execute(
            "SELECT type, envelope FROM records ORDER BY seq")]
    finally:
        db.close()
    assert at_gateway == list(zip(types, bodies, strict=True))

    text = said.getvalue()
    assert f"round {ROUNDS}/{ROUNDS}: storage {demo.ROOM}: 5 of 6 bags re-weighed and checked in, " \
           f"{lost['package_code']} reported lost (incident)" in text
    assert f"transfer on {demo.VEHICLE}: 5 bags, manifest {transfer['manifest']['number']}" in text


def test_typed_console_commands_check_the_bags_in_as_the_roster_says(broker: PrivateBroker, tmp_path: Path) -> None:
    """What the demo's help tells a person to type: the room, a bag on the scale, the keeper's badge —
    and a badge the roster does not allow to sign is refused by name."""
    d = demo.Demo(rounds=1, bags_per_round=1, data=tmp_path, broker_url=broker.url)
    try:
        d.start()
        d.round(1)
        [bag] = d.cart.state.carried
        assert "badge COL-0001" in d.CONSOLE_HELP and f"room {demo.ROOM}" in d.CONSOLE_HELP
        for line, settled in (("badge COL-0001", lambda s: s.step is Step.ROUND),
                              (f"room {demo.ROOM}", lambda s: s.step is Step.STORAGE and s.actuator == "extended"),
                              (f"load {bag.weight_g}", lambda s: s.weight is not None and s.weight.stable
                               and s.weight.net_g == bag.weight_g),
                              (f"bag {bag.package_code} {LETTER_OF[bag.category]}", lambda s: len(s.reweighs) == 1),
                              ("empty", lambda s: s.armed),
                              ("badge NUR-D02", lambda s: "不能确认入库" in s.error),
                              (f"badge {demo.KEEPER}", lambda s: s.storage is not None and s.storage.keeper)):
            assert d.console(line).startswith(("camera shows", "scale:")), line
            assert d.cart.wait_until(settled, demo.STEP_TIMEOUT_S), (line, d.cart.state.step, d.cart.state.error)
        d.cart.agent.act("finish", None)
        assert d.cart.wait_until(lambda s: s.step is Step.ROUND and bool(s.stored), demo.STEP_TIMEOUT_S)
        assert [b.package_code for b in d.cart.state.stored] == [bag.package_code]
    finally:
        d.stop()
