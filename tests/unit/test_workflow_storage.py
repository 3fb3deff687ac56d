"""Storage check-in with reconciliation, hand-over to the transporter, and voids."""

from __future__ import annotations

from typing import Any

import pytest

from edge import workflow
from edge.messages import Text
from edge.workflow import Commit, CommitFailed, Limits, Step
from tests.unit.test_workflow import Cart, valid_body


def carrying(*bags: tuple[str, int, str], limits: Limits | None = None) -> Cart:
    """A cart whose collector handed over ``bags`` at D01 (committed) and is back in the round."""
    c = Cart(limits=limits or Limits())
    c.scan("S", "COL-1")
    c.handover("D01", *bags)
    return c


def check_in(c: Cart, room: str = "ROOM1", **reweigh: int) -> dict[str, Any]:
    """Scan the room, re-weigh the named bags one by one, finish; the storage_in body."""
    c.scan("R", room)
    for code, grams in reweigh.items():
        c.weigh(grams)
        c.scan("B", code, "I")
        assert not c.s.error, c.s.error
        c.weigh(0)
    [effect] = c.act("finish")
    assert isinstance(effect, Commit) and effect.rtype == "storage_in"
    assert valid_body("storage_in", effect.body) == []
    return effect.body


def by_code(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["package_code"]: p for p in body["packages"]}


def test_all_bags_back_within_tolerance_is_accepted() -> None:
    c = carrying(("B1", 1000, "I"), ("B2", 2000, "S"))
    body = check_in(c, B1=1040, B2=1910)   # +40 g (< 50 g floor), -90 g (< 5 % of 2000 = 100 g)
    assert body["result"] == "ACCEPTED"
    assert [p["status"] for p in body["packages"]] == ["OK", "OK"]
    assert body["summary"] == {"expected_count": 2, "present_count": 2, "missing_count": 0, "deviation_count": 0,
                               "overdue_count": 0, "expected_g": 3000, "reweigh_g": 2950, "delta_g": -50,
                               "delta_permille": -17, "missing_g": 0}
    assert body["facility"] == "ROOM1" and body["direction"] == "IN"
    assert body["operator"] == {"person_id": "COL-1", "device_id": "CART-01"}
    c.commit()
    assert c.step() is Step.ROUND and not c.s.carried
    assert [(b.package_code, b.weight_g, b.facility) for b in c.s.stored] == [("B1", 1040, "ROOM1"),
                                                                            ("B2", 1910, "ROOM1")]


def test_missing_bag_deviation_and_overdue_are_recorded() -> None:
    c = carrying(("B1", 1000, "I"), ("B2", 2000, "I"), ("B3", 300, "I"),
                 limits=Limits(storage_overdue_h=1))
    c.later(3601)
    body = check_in(c, B1=1060, B2=2101)   # +60 g > 50 g; +101 g > 100 g; B3 never scanned
    packages = by_code(body)
    assert (packages["B1"]["status"], packages["B1"]["delta_g"]) == ("DEVIATION", 60)
    assert packages["B2"]["status"] == "DEVIATION"
    assert packages["B3"] | {"status": "MISSING", "reweigh_g": None, "delta_g": None} == packages["B3"]
    assert all(p["overdue"] for p in body["packages"])
    s = body["summary"]
    assert (s["missing_count"], s["deviation_count"], s["overdue_count"], s["missing_g"]) == (1, 2, 3, 300)
    assert body["result"] == "ACCEPTED_WITH_NOTE"
    c.commit()
    assert [b.package_code for b in c.s.stored] == ["B1", "B2"]   # the missing bag is not in storage


def test_overdue_is_measured_from_each_handover() -> None:
    c = Cart(limits=Limits(storage_overdue_h=48))
    c.scan("S", "COL-1")
    c.handover("D01", ("B1", 500, "I"))
    c.later(47 * 3600)
    c.handover("D02", ("B2", 500, "I"))
    c.later(2 * 3600)
    body = check_in(c, B1=500, B2=500)
    assert {code: p["overdue"] for code, p in by_code(body).items()} == {"B1": True, "B2": False}


def test_batch_weight_covers_the_bags_not_weighed_one_by_one() -> None:
    c = carrying(("B1", 1000, "I"), ("B2", 2000, "I"), ("B3", 500, "S"))
    c.scan("R", "ROOM1")
    c.weigh(1000)
    c.scan("B", "B1", "I")
    c.weigh(0)
    c.weigh(2600)                           # B2 + B3 together: expected 2500, +100 g within 5 % (125 g)
    c.act("batch_weight")
    assert "batch_weight" not in c.action_ids()
    [effect] = c.act("finish")
    assert isinstance(effect, Commit)
    body = effect.body
    assert valid_body("storage_in", body) == []
    assert [p["status"] for p in body["packages"]] == ["OK", "IN_BATCH", "IN_BATCH"]
    assert body["batch"] | {"package_codes": ["B2", "B3"], "expected_g": 2500, "reweigh_g": 2600, "delta_g": 100,
                            "delta_permille": 40, "status": "OK"} == body["batch"]
    assert body["result"] == "ACCEPTED"


def test_storage_guard_rails() -> None:
    c = carrying(("B1", 1000, "I"))
    c.scan("R", "ROOM1")
    c.act("finish")
    assert "复核" in c.s.error                # nothing re-weighed yet: not an "all missing" record
    c.weigh(1000)
    c.scan("B", "B9", "I")
    assert "不在本车" in c.s.error
    c.weigh(1000, stable=False)
    c.scan("B", "B1", "I")
    assert "未稳定" in c.s.error
    c.weigh(1000)
    c.scan("B", "B1", "I")
    c.weigh(0)
    c.weigh(1000)
    c.scan("B", "B1", "I")
    assert "已复核" in c.s.error
    c.act("remove_last")                      # undo the re-weigh
    assert not c.s.reweighs
    c.scan("S", "COL-1")
    assert "完成或取消" in c.s.error
    c.scan("S", "KEEP-1")                     # the storage keeper signs too
    c.scan("B", "B1", "I")
    body = c.act("finish")[0]
    assert isinstance(body, Commit) and body.body["keeper"] == {"person_id": "KEEP-1", "auth_method": "card"}
    c.send(CommitFailed(Text("io", "io"), c.now))
    assert c.step() is Step.STORAGE and len(c.s.reweighs) == 1    # retry possible
    c.act("cancel")
    assert c.step() is Step.ROUND and [b.package_code for b in c.s.carried] == ["B1"]


def test_nothing_to_store_is_refused_and_a_stop_must_be_confirmed_first() -> None:
    c = Cart()
    c.scan("S", "COL-1")
    c.scan("R", "ROOM1")
    assert c.step() is Step.STORAGE and "finish" not in c.action_ids()
    c.act("finish")
    assert "不可用" in c.s.error
    c.act("cancel")
    c.scan("D", "D01")
    c.bag("B1", 500)
    c.scan("R", "ROOM1")
    assert "未确认" in c.s.error and c.step() is Step.STOP


def stored_cart() -> Cart:
    c = carrying(("B1", 1000, "I"), ("B2", 800, "S"))
    check_in(c, B1=1000, B2=800)
    c.commit()
    return c


def test_transfer_to_the_transporter_with_manifest_and_totals() -> None:
    c = stored_cart()
    c.scan("V", "ZJA12345")
    assert c.step() is Step.TRANSFER and c.s.place == "ZJA12345"
    c.act("finish")
    assert "联单" in c.s.error
    c.act("manifest", "bad number!")
    assert "格式" in c.s.error
    c.act("manifest", " 33010020260001 ")
    [effect] = c.act("finish")
    assert isinstance(effect, Commit) and effect.rtype == "transfer"
    body = effect.body
    assert valid_body("transfer", body) == []
    assert body["manifest"] == {"type": "national", "number": "33010020260001"}
    assert body["carrier"] == {"vehicle": "ZJA12345"}
    assert body["totals"] == [{"category": "INFECTIOUS", "count": 1, "weight_g": 1000},
                              {"category": "SHARPS", "count": 1, "weight_g": 800}]
    assert {ln["facility"] for ln in body["lines"]} == {"ROOM1"}
    c.commit()
    assert not c.s.stored and c.step() is Step.ROUND


@pytest.mark.parametrize(("number", "kind"), [("33010020260001", "national"), ("YF-2026-0001", "local")])
def test_manifest_type_follows_the_number(number: str, kind: str) -> None:
    c = stored_cart()
    c.scan("V", "V1")
    c.act("manifest", number)
    [effect] = c.act("finish")
    assert isinstance(effect, Commit) and effect.body["manifest"]["type"] == kind


def test_transfer_without_stored_bags_is_not_offered() -> None:
    c = carrying(("B1", 1000, "I"))
    c.scan("V", "V1")
    c.act("manifest", "L1")
    assert "finish" not in c.action_ids()
    assert c.action_ids() == ["manifest", "cancel"]


def test_void_of_the_last_record_is_a_new_record_and_undoes_its_effect() -> None:
    c = carrying(("B1", 1000, "I"))
    handover_id = c.s.last_record.record_id if c.s.last_record else ""
    void_id = f"void:{handover_id}"
    assert void_id in c.action_ids()
    c.act(void_id, "  ")
    assert "原因" in c.s.error
    [effect] = c.act(void_id, "wrong department")
    assert isinstance(effect, Commit) and effect.rtype == "void"
    assert valid_body("void", effect.body) == []
    assert effect.body | {"voided_record_id": handover_id, "voided_type": "handover", "package_code": None,
                          "reason": "wrong department"} == effect.body
    c.commit()
    assert not c.s.carried                    # the bag may now be handed over again
    assert not any(a.startswith("void:") for a in c.action_ids())   # a void is not voided
    c.handover("D02", ("B1", 1000, "I"))
    assert [b.department for b in c.s.carried] == ["D02"]


def test_void_of_a_storage_in_puts_the_bags_back_on_the_cart() -> None:
    c = stored_cart()
    assert c.s.last_record is not None
    c.act(f"void:{c.s.last_record.record_id}", "re-weighed on the wrong scale")
    c.commit()
    assert [b.package_code for b in c.s.carried] == ["B1", "B2"] and not c.s.stored


def test_void_one_bag_by_scanning_it() -> None:
    c = carrying(("B1", 1000, "I"), ("B2", 500, "I"))
    handover_id = c.s.carried[0].record_id
    c.act("void_bag", "")
    assert "原因" in c.s.error and c.step() is Step.ROUND
    c.act("void_bag", "bag torn, repacked")
    assert c.step() is Step.VOID
    c.scan("B", "B9", "I")
    assert "不在本车" in c.s.error
    [effect] = c.scan("B", "B2", "I")
    assert isinstance(effect, Commit)
    assert effect.body | {"package_code": "B2", "voided_record_id": handover_id, "voided_type": "handover",
                          "reason": "bag torn, repacked"} == effect.body
    assert valid_body("void", effect.body) == []
    c.commit()
    assert [b.package_code for b in c.s.carried] == ["B1"]


def test_void_commit_failure_returns_to_the_round() -> None:
    c = carrying(("B1", 1000, "I"))
    c.act("void_bag", "x")
    c.scan("B", "B1", "I")
    c.send(CommitFailed(Text("io", "io"), c.now))
    assert c.step() is Step.ROUND and c.s.void_reason is None and len(c.s.carried) == 1


def test_tolerance_is_the_larger_of_the_floor_and_the_share() -> None:
    lim = Limits(tolerance_g=50, tolerance_pct=5)
    assert workflow.tolerance_g(lim, 400) == 50
    assert workflow.tolerance_g(lim, 4000) == 200


def test_replay_of_the_ledger_rebuilds_what_the_cart_carries_and_stored() -> None:
    c = carrying(("B1", 1000, "I"), ("B2", 800, "S"), ("B3", 300, "I"))
    check_in(c, B1=1010, B2=800)                # B3 missing
    c.commit()
    c.handover("D02", ("B4", 700, "P"), ("B5", 200, "I"))
    c.act("void_bag", "torn")
    c.scan("B", "B5", "I")
    c.commit()
    fresh = workflow.State(org="H1", cart="CART-01")
    rebuilt = workflow.replay(fresh, c.records)
    assert rebuilt.carried == c.s.carried and rebuilt.stored == c.s.stored
    assert rebuilt.last_record == c.s.last_record
    assert [b.package_code for b in rebuilt.carried] == ["B4"]
    assert [(b.package_code, b.weight_g) for b in rebuilt.stored] == [("B1", 1010), ("B2", 800)]
    # and a voided last record replays to the same place as it was undone live
    c.act(f"void:{c.records[-2][0]}", "x")      # the D02 handover is no longer the last record
    assert "不可用" in c.s.error
    c.scan("V", "V1")
    c.act("manifest", "L-1")
    c.act("finish")
    c.commit()
    assert c.s.last_record is not None
    c.act(f"void:{c.s.last_record.record_id}", "wrong vehicle")
    c.commit()
    rebuilt = workflow.replay(fresh, c.records)
    assert rebuilt.stored == c.s.stored and len(rebuilt.stored) == 2 and rebuilt.carried == c.s.carried


def test_a_room_or_vehicle_code_may_be_typed_instead_of_scanned() -> None:
    c = carrying(("B1", 1000, "I"))
    assert {"start_storage", "start_transfer"} <= set(c.action_ids())
    c.act("start_storage", "no room!")
    assert "格式" in c.s.error and c.step() is Step.ROUND
    c.act("start_storage", " room1 ")
    assert (c.step(), c.s.place) == (Step.STORAGE, "ROOM1")
    c.act("cancel")
    c.act("start_transfer", "v1")
    assert (c.step(), c.s.place) == (Step.TRANSFER, "V1")
