"""Storage check-in with reconciliation (signed by a keeper; a missing bag REJECTED unless a supervisor
declares it lost), hand-over to the transporter (manifest typed twice, the driver signs, disposal from
the receiver), voids (a reason from the list and a supervisor), and the dwell limits."""

from __future__ import annotations

from typing import Any

from edge import workflow
from edge.messages import Text
from edge.workflow import Commit, CommitFailed, Limits, PinConfirmed, Step
from tests.unit.test_workflow import ROSTER, Cart, valid_body

NATIONAL = "20263301000123"  # 2026, 浙江省 杭州市, serial 000123


def carrying(*bags: tuple[str, int, str], limits: Limits | None = None) -> Cart:
    """A cart whose collector handed over ``bags`` at D01 (committed) and is back in the round."""
    c = Cart(limits=limits or Limits())
    c.scan("S", "COL-1")
    c.handover("D01", *bags)
    return c


def reweigh(c: Cart, **grams: int) -> None:
    for code, g in grams.items():
        c.weigh(g)
        c.scan("B", code, "I")
        assert not c.s.error, c.s.error
        c.weigh(0)


def check_in(c: Cart, room: str = "ROOM1", **grams: int) -> dict[str, Any]:
    """Scan the room, re-weigh the named bags one by one, the keeper signs, finish; the storage_in body."""
    c.scan("R", room)
    reweigh(c, **grams)
    c.scan("S", "KEEP-1")
    [effect] = c.act("finish")
    assert isinstance(effect, Commit) and effect.rtype == "storage_in"
    assert valid_body("storage_in", effect.body) == []
    return effect.body


def by_code(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["package_code"]: p for p in body["packages"]}


def test_all_bags_back_within_tolerance_is_accepted_and_signed_by_the_keeper() -> None:
    c = carrying(("B1", 1000, "I"), ("B2", 2000, "S"))
    body = check_in(c, B1=1040, B2=1910)   # +40 g (< 50 g floor), -90 g (< 5 % of 2000 = 100 g)
    assert body["result"] == "ACCEPTED"
    assert [p["status"] for p in body["packages"]] == ["OK", "OK"]
    assert body["summary"] == {"expected_count": 2, "present_count": 2, "missing_count": 0, "deviation_count": 0,
                               "overdue_count": 0, "warn_count": 0, "expected_g": 3000, "reweigh_g": 2950,
                               "delta_g": -50, "delta_permille": -17, "missing_g": 0}
    assert (body["facility"], body["facility_name"], body["direction"]) == ("ROOM1", "一号暂存间", "IN")
    assert body["operator"] == {"person_id": "COL-1", "name": "王收集", "device_id": "CART-01"}
    assert body["keeper"] == {"person_id": "KEEP-1", "name": "孙库管", "role": "keeper", "auth_method": "card"}
    assert body["incidents"] == [] and body["limits"] == {"ward_max_s": 24 * 3600, "warn_pct": 80}
    c.commit()
    assert c.step() is Step.ROUND and not c.s.carried
    assert [(b.package_code, b.weight_g, b.facility) for b in c.s.stored] == [("B1", 1040, "ROOM1"),
                                                                            ("B2", 1910, "ROOM1")]
    assert all(b.stored_at == c.now for b in c.s.stored)


def test_the_keeper_signs_after_the_last_change_and_only_a_keeper_may() -> None:
    c = carrying(("B1", 1000, "I"), ("B2", 500, "I"))
    c.scan("R", "ROOM1")
    reweigh(c, B1=1000)
    c.scan("S", "KEEP-1")
    assert c.s.storage is not None and c.s.storage.keeper is not None
    reweigh(c, B2=500)                        # a change after the signature: the keeper signs again
    assert c.s.storage is not None and c.s.storage.keeper is None
    c.act("finish")
    assert "暂存间管理员" in c.s.error and c.step() is Step.STORAGE
    c.scan("S", "NUR-1")                      # a nurse may not sign a check-in
    assert "李护士（科室护士）不能确认入库" in c.s.error
    c.scan("S", "SUP-1")                      # nor a supervisor when nothing is reported lost
    assert "周主管" in c.s.error and "暂存间管理员" in c.s.error
    c.send(PinConfirmed("KEEP-1", c.now))     # the keeper's PIN (checked by the shell) signs
    [effect] = c.act("finish")
    assert isinstance(effect, Commit) and effect.body["keeper"]["auth_method"] == "pin"


def test_deviation_and_ward_dwell_are_recorded() -> None:
    c = carrying(("B1", 1000, "I"), ("B2", 2000, "I"), limits=Limits(ward_max_h=1))
    c.later(3601)
    body = check_in(c, B1=1060, B2=2101)   # +60 g > 50 g; +101 g > 100 g
    packages = by_code(body)
    assert (packages["B1"]["status"], packages["B1"]["delta_g"]) == ("DEVIATION", 60)
    assert packages["B2"]["status"] == "DEVIATION"
    assert all(p["overdue"] and p["warn"] and p["dwell_s"] == 3601 for p in body["packages"])
    s = body["summary"]
    assert (s["missing_count"], s["deviation_count"], s["overdue_count"]) == (0, 2, 2)
    assert body["result"] == "ACCEPTED_WITH_NOTE"


def test_ward_dwell_is_measured_from_each_handover() -> None:
    c = Cart(limits=Limits(ward_max_h=24))
    c.scan("S", "COL-1")
    c.handover("D01", ("B1", 500, "I"))
    c.later(20 * 3600)
    c.handover("D02", ("B2", 500, "I"))
    c.later(5 * 3600)
    body = check_in(c, B1=500, B2=500)
    assert {code: (p["overdue"], p["warn"]) for code, p in by_code(body).items()} == {
        "B1": (True, True), "B2": (False, False)}


def test_a_missing_bag_blocks_finish_and_a_rejected_check_in_keeps_every_bag_on_the_cart() -> None:
    c = carrying(("B1", 1000, "I"), ("B2", 2000, "I"), ("B3", 300, "S"))
    c.scan("R", "ROOM1")
    reweigh(c, B1=1000, B2=2000)
    c.scan("S", "KEEP-1")
    c.act("finish")
    assert "1 袋未复称：B3" in c.s.error and c.step() is Step.STORAGE
    [effect] = c.act("reject_storage")
    assert isinstance(effect, Commit) and valid_body("storage_in", effect.body) == []
    assert effect.body["result"] == "REJECTED" and by_code(effect.body)["B3"]["status"] == "MISSING"
    c.commit()
    assert "入库被拒" in c.s.message
    assert [b.package_code for b in c.s.carried] == ["B1", "B2", "B3"] and not c.s.stored


def test_a_supervisor_declares_a_missing_bag_lost_then_the_rest_is_checked_in() -> None:
    c = carrying(("B1", 1000, "I"), ("B3", 300, "S"))
    c.scan("R", "ROOM1")
    reweigh(c, B1=1000)
    c.act("report_lost", "")
    assert "遗失经过" in c.s.error
    c.act("report_lost", "  sharps box  left on the ward trolley ")
    c.scan("S", "KEEP-1")                     # a keeper cannot confirm a loss
    assert "主管" in c.s.error and c.step() is Step.STORAGE
    [effect] = c.scan("S", "SUP-1")
    assert isinstance(effect, Commit) and effect.rtype == "incident"
    assert valid_body("incident", effect.body) == []
    inc = effect.body
    assert (inc["incident_type"], inc["total_g"], inc["description"]) == ("LOST", 300,
                                                                         "sharps box left on the ward trolley")
    assert [b["package_code"] for b in inc["bags"]] == ["B3"] and inc["bags"][0]["department_name"] == "D01科"
    assert inc["confirmed_by"] == {"person_id": "SUP-1", "name": "周主管", "role": "supervisor", "auth_method": "card"}
    c.commit()
    incident_id = c.records[-1][0]
    assert c.step() is Step.STORAGE and [b.package_code for b in c.s.carried] == ["B1"]
    c.scan("S", "KEEP-1")
    [effect] = c.act("finish")
    assert isinstance(effect, Commit) and effect.body["incidents"] == [incident_id]
    assert effect.body["result"] == "ACCEPTED_WITH_NOTE" and [p["package_code"] for p in effect.body["packages"]] == [
        "B1"]
    c.commit()
    assert [b.package_code for b in c.s.stored] == ["B1"] and not c.s.carried


def test_a_supervisor_cannot_confirm_a_loss_in_their_own_round() -> None:
    c = Cart()
    c.scan("S", "SUP-2")                      # a supervisor who also collects
    c.handover("D01", ("B1", 1000, "I"), ("B2", 500, "I"))
    c.scan("R", "ROOM1")
    reweigh(c, B1=1000)
    c.act("report_lost", "gone")
    assert c.scan("S", "SUP-2") == [] and "不能为自己送来的" in c.s.error   # their badge is the collector's here
    assert c.send(PinConfirmed("SUP-2", c.now)) == [] and "另一位主管" in c.s.error


def test_batch_weight_covers_the_bags_not_weighed_one_by_one() -> None:
    c = carrying(("B1", 1000, "I"), ("B2", 2000, "I"), ("B3", 500, "S"))
    c.scan("R", "ROOM1")
    reweigh(c, B1=1000)
    c.weigh(2600)                           # B2 + B3 together: expected 2500, +100 g within 5 % (125 g)
    c.act("batch_weight")
    assert "batch_weight" not in c.action_ids()
    c.weigh(0)
    c.scan("S", "KEEP-1")
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
    assert "收集人员不能为自己送来的医废签收" in c.s.error
    c.scan("B", "B1", "I")
    c.scan("S", "KEEP-1")
    body = c.act("finish")[0]
    assert isinstance(body, Commit) and body.body["keeper"]["person_id"] == "KEEP-1"
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


def test_places_must_be_on_the_roster() -> None:
    c = Cart()
    c.scan("S", "COL-1")
    for kind, code, words in (("D", "D77", "科室 D77 不在人员名单中"), ("R", "ROOM9", "暂存间 ROOM9"),
                              ("V", "V9", "车辆 V9")):
        c.scan(kind, code)
        assert words in c.s.error and c.step() is Step.ROUND


def stored_cart() -> Cart:
    c = carrying(("B1", 1000, "I"), ("B2", 800, "S"))
    check_in(c, B1=1000, B2=800)
    c.commit()
    return c


def manifest_twice(c: Cart, number: str, action: str = "manifest") -> None:
    c.act(action, number)
    assert "再输入一次" in c.s.message, c.s.error
    c.act(action, number)
    assert "已确认" in c.s.message, c.s.error


def test_transfer_with_manifest_typed_twice_the_driver_signing_and_disposal_filled() -> None:
    c = stored_cart()
    c.later(40 * 3600)                        # 40 h in storage: past 80 % of 48 h, not overdue
    c.scan("V", "ZJA12345")
    assert c.step() is Step.TRANSFER and c.s.place == "ZJA12345"
    c.act("finish")
    assert "联单" in c.s.error
    c.act("manifest", "bad number!")
    assert "格式" in c.s.error
    c.act("manifest", "YF-2026-0001")
    assert "不是14位全国联单号" in c.s.error
    c.act("manifest", "20263399000123")       # 3399 is not a city of Zhejiang
    assert "3399" in c.s.error and c.s.transfer is not None and c.s.transfer.first is None
    c.act("manifest", NATIONAL)
    assert "浙江省" in c.s.message and "杭州市" in c.s.message
    c.act("manifest", "20263301000124")       # the second entry differs: start again
    assert "不一致" in c.s.error and c.s.manifest is None
    manifest_twice(c, NATIONAL)
    c.act("finish")
    assert "司机" in c.s.error
    c.scan("S", "KEEP-1")
    assert "孙库管（暂存间管理员）不能确认转运" in c.s.error
    c.scan("S", "DRV-2")                      # a driver of another carrier
    assert "二号转运公司" in c.s.error and "一号转运公司" in c.s.error
    c.scan("S", "DRV-1")
    [effect] = c.act("finish")
    assert isinstance(effect, Commit) and effect.rtype == "transfer"
    body = effect.body
    assert valid_body("transfer", body) == []
    assert body["manifest"] == {"type": "national", "number": NATIONAL}
    assert body["carrier"] | {"vehicle": "ZJA12345", "plate": "浙A·12345", "org": "CARRIER1",
                              "name": "一号转运公司"} == body["carrier"]
    assert body["carrier"]["driver"]["person_id"] == "DRV-1"
    assert body["receiver"] == {"id": "PLANT1", "name": "处置中心", "licence": "浙危废经第1号"}
    assert body["disposal_method"] == "高温蒸汽灭菌" and body["final_destination"] == "处置中心 许可证 浙危废经第1号"
    assert {ln["disposal_method"] for ln in body["lines"]} == {"高温蒸汽灭菌"}
    assert all(ln["warn"] and not ln["overdue"] and ln["dwell_s"] == 40 * 3600 for ln in body["lines"])
    assert body["summary"] == {"count": 2, "weight_g": 1800, "overdue_count": 0, "warn_count": 2}
    assert body["totals"] == [{"category": "INFECTIOUS", "count": 1, "weight_g": 1000},
                              {"category": "SHARPS", "count": 1, "weight_g": 800}]
    c.commit()
    assert not c.s.stored and c.step() is Step.ROUND


def test_in_storage_dwell_is_measured_from_the_check_in_not_the_handover() -> None:
    c = carrying(("B1", 1000, "I"), limits=Limits(ward_max_h=24, storage_overdue_h=48))
    c.later(20 * 3600)                        # 20 h on the cart
    check_in(c, B1=1000)
    c.commit()
    c.later(30 * 3600)                        # 30 h in storage (50 h since the handover): not overdue
    c.scan("V", "V1")
    manifest_twice(c, NATIONAL)
    c.scan("S", "DRV-1")
    [effect] = c.act("finish")
    assert isinstance(effect, Commit)
    [line] = effect.body["lines"]
    assert (line["dwell_s"], line["overdue"]) == (30 * 3600, False)
    assert effect.body["limits"] == {"storage_max_s": 48 * 3600, "warn_pct": 80}


def test_a_local_manifest_is_marked_local_on_purpose() -> None:
    c = stored_cart()
    c.scan("V", "V1")
    c.act("manifest_local", NATIONAL)
    assert "14位" in c.s.error                # a national number is not taken as local
    manifest_twice(c, "YF-2026-0001", "manifest_local")
    c.scan("S", "DRV-1")
    [effect] = c.act("finish")
    assert isinstance(effect, Commit) and effect.body["manifest"] == {"type": "local", "number": "YF-2026-0001"}


def test_a_manifest_from_next_year_is_refused() -> None:
    c = stored_cart()
    c.scan("V", "V1")
    c.act("manifest", "20273301000123")
    assert "2027" in c.s.error and c.s.manifest is None


def test_transfer_without_stored_bags_is_not_offered() -> None:
    c = carrying(("B1", 1000, "I"))
    c.scan("V", "V1")
    assert "finish" not in c.action_ids()
    assert c.action_ids() == ["confirm_pin", "manifest", "manifest_local", "cancel"]


def test_void_of_the_last_record_needs_a_listed_reason_and_a_supervisor() -> None:
    c = carrying(("B1", 1000, "I"))
    handover_id = c.s.last_record.record_id if c.s.last_record else ""
    void_id = f"void:{handover_id}"
    [button] = [a for a in workflow.view(c.s, c.now)["actions"] if a["id"] == void_id]
    assert [r["id"] for r in button.get("reasons", [])][:2] == ["WRONG_WEIGHT", "WRONG_CATEGORY"]
    c.act(void_id, "wrong department")        # free text alone is not a reason from the list
    assert "列表" in c.s.error
    c.act(void_id, "OTHER")
    assert "写明" in c.s.error
    assert c.act(void_id, "WRONG_DEPARTMENT|nurse scanned the wrong code") == []
    assert c.step() is Step.VOID and "主管" in c.s.message
    assert c.scan("S", "NUR-1") == [] and "李护士（科室护士）不能确认" in c.s.error
    [effect] = c.scan("S", "SUP-1")
    assert isinstance(effect, Commit) and effect.rtype == "void"
    assert valid_body("void", effect.body) == []
    assert effect.body | {"voided_record_id": handover_id, "voided_type": "handover", "package_code": None,
                          "reason_code": "WRONG_DEPARTMENT", "reason": "科室选错：nurse scanned the wrong code"
                          } == effect.body
    assert effect.body["approved_by"]["person_id"] == "SUP-1"
    c.commit()
    assert not c.s.carried                    # the bag may now be handed over again
    assert not any(a.startswith("void:") for a in c.action_ids())   # a void is not voided
    c.handover("D02", ("B1", 1000, "I"))
    assert [b.department for b in c.s.carried] == ["D02"]


def test_void_of_a_storage_in_puts_the_bags_back_on_the_cart() -> None:
    c = stored_cart()
    assert c.s.last_record is not None
    c.act(f"void:{c.s.last_record.record_id}", "WRONG_WEIGHT|re-weighed on the wrong scale")
    c.send(PinConfirmed("SUP-1", c.now))      # a supervisor's PIN confirms as well as the badge
    c.commit()
    assert [b.package_code for b in c.s.carried] == ["B1", "B2"] and not c.s.stored


def transferred_cart() -> Cart:
    """Two bags checked in and handed to the transporter (committed): the transfer is the last record."""
    c = stored_cart()
    c.scan("V", "V1")
    manifest_twice(c, NATIONAL)
    c.scan("S", "DRV-1")
    c.act("finish")
    c.commit()
    return c


def test_a_departed_transfer_cannot_be_voided() -> None:
    c = transferred_cart()
    assert c.s.last_record is not None and c.s.last_record.rtype == "transfer"
    assert not any(a.startswith("void") for a in c.action_ids())
    c.act(f"void:{c.s.last_record.record_id}", "DUPLICATE")
    assert "不可用" in c.s.error and c.step() is Step.ROUND
    assert f"correct:{c.s.last_record.record_id}" in c.action_ids()   # it is corrected instead


def test_a_departed_transfers_manifest_is_corrected_by_a_new_record_a_supervisor_confirms() -> None:
    c = transferred_cart()
    transfer_id = c.records[-1][0]
    fix = f"correct:{transfer_id}"
    c.act(fix, "typo")
    assert "列表" in c.s.error and c.step() is Step.ROUND
    c.act(fix, "OTHER|digits swapped on the paper copy")
    assert c.step() is Step.CORRECT and NATIONAL in c.s.message
    c.scan("S", "SUP-1")
    assert "先输入两次" in c.s.error
    c.act("manifest", NATIONAL)
    assert "相同" in c.s.error                 # the same number is no correction
    manifest_twice(c, "20263301000321")
    assert c.scan("S", "KEEP-1") == [] and "主管" in c.s.error
    [effect] = c.scan("S", "SUP-1")
    assert isinstance(effect, Commit) and effect.rtype == "correction"
    assert valid_body("correction", effect.body) == []
    assert effect.body["corrected_record_id"] == transfer_id and effect.body["changes"] == {"manifest": {
        "from": {"type": "national", "number": NATIONAL}, "to": {"type": "national", "number": "20263301000321"}}}
    assert effect.body["approved_by"]["person_id"] == "SUP-1" and effect.body["reason_code"] == "OTHER"
    c.commit()
    assert c.step() is Step.ROUND and not c.s.stored and not c.s.carried   # no bag moved
    # a second correction starts from the corrected number, and replay agrees with the live cart
    c.act(fix, "WRONG_LABEL")
    assert c.s.correction is not None and c.s.correction.was == ("national", "20263301000321")
    c.act("cancel")
    rebuilt = workflow.replay(workflow.State(org="H1", cart="CART-01", roster=ROSTER), c.records)
    assert rebuilt.last_record == c.s.last_record and rebuilt.last_record is not None
    assert rebuilt.last_record.manifest == ("national", "20263301000321")


def test_void_one_bag_by_scanning_it() -> None:
    c = carrying(("B1", 1000, "I"), ("B2", 500, "I"))
    handover_id = c.s.carried[0].record_id
    c.act("void_bag", "")
    assert "原因" in c.s.error and c.step() is Step.ROUND
    c.act("void_bag", "WRONG_LABEL|bag torn, repacked")
    assert c.step() is Step.VOID
    c.scan("S", "SUP-1")
    assert "先扫描" in c.s.error
    c.scan("B", "B9", "I")
    assert "不在本车" in c.s.error
    assert c.scan("B", "B2", "I") == [] and "医废袋 B2" in c.s.message
    [effect] = c.scan("S", "SUP-1")
    assert isinstance(effect, Commit)
    assert effect.body | {"package_code": "B2", "voided_record_id": handover_id, "voided_type": "handover",
                          "reason_code": "WRONG_LABEL"} == effect.body
    assert valid_body("void", effect.body) == []
    c.commit()
    assert [b.package_code for b in c.s.carried] == ["B1"]


def test_void_commit_failure_returns_to_the_round() -> None:
    c = carrying(("B1", 1000, "I"))
    c.act("void_bag", "DUPLICATE")
    c.scan("B", "B1", "I")
    c.scan("S", "SUP-1")
    c.send(CommitFailed(Text("io", "io"), c.now))
    assert c.step() is Step.ROUND and c.s.void_reason is None and len(c.s.carried) == 1


def test_tolerance_is_the_larger_of_the_floor_and_the_share() -> None:
    lim = Limits(tolerance_g=50, tolerance_pct=5)
    assert workflow.tolerance_g(lim, 400) == 50
    assert workflow.tolerance_g(lim, 4000) == 200


def test_replay_of_the_ledger_rebuilds_what_the_cart_carries_and_stored() -> None:
    c = carrying(("B1", 1000, "I"), ("B2", 800, "S"), ("B3", 300, "I"))
    c.scan("R", "ROOM1")
    reweigh(c, B1=1010, B2=800)
    c.act("report_lost", "not found")
    c.scan("S", "SUP-1")
    c.commit()                                # the incident
    c.scan("S", "KEEP-1")
    c.act("finish")
    c.commit()
    c.handover("D02", ("B4", 700, "P"), ("B5", 200, "I"))
    c.act("void_bag", "DUPLICATE")
    c.scan("B", "B5", "I")
    c.scan("S", "SUP-1")
    c.commit()
    fresh = workflow.State(org="H1", cart="CART-01", roster=ROSTER)
    rebuilt = workflow.replay(fresh, c.records)
    assert rebuilt.carried == c.s.carried and rebuilt.stored == c.s.stored
    assert rebuilt.last_record == c.s.last_record
    assert [b.package_code for b in rebuilt.carried] == ["B4"]
    assert [(b.package_code, b.weight_g) for b in rebuilt.stored] == [("B1", 1010), ("B2", 800)]


def test_records_of_version_1_still_replay() -> None:
    """Bodies written before this version (no body_version, no names, storage_overdue on the wrong
    interval) replay to where the bags were: the ledger written then is still the truth."""
    h1 = "0190c000-0000-7000-8000-000000000101"
    handover_v1 = {"org": "H1", "round_id": h1, "handover_at": "2026-11-01T09:00:00.000+00:00", "department": "D01",
                   "from_party": {"person_id": "NUR-1", "auth_method": "card"},
                   "to_party": {"person_id": "COL-1", "device_id": "CART-01"},
                   "lines": [{"package_code": c, "category": "INFECTIOUS", "waste_code": "841-001-01", "weight_g": 500,
                              "weighing": {"gross_g": 500, "tare_g": 0, "net_g": 500, "stable": True,
                                           "protocol": "toledo", "raw": ""}} for c in ("B1", "B2")],
                   "totals": [{"category": "INFECTIOUS", "count": 2, "weight_g": 1000}], "destination": None}
    pkg = {"category": "INFECTIOUS", "waste_code": "841-001-01", "department": "D01", "handover_record_id": h1,
           "handed_over_at": "2026-11-01T09:00:00.000+00:00", "expected_g": 500, "overdue": False}
    storage_v1 = {"org": "H1", "facility": "ROOM1", "direction": "IN", "moved_at": "2026-11-01T10:00:00.000+00:00",
                  "operator": {"person_id": "COL-1", "device_id": "CART-01"},
                  "packages": [pkg | {"package_code": "B1", "reweigh_g": 510, "delta_g": 10, "status": "OK"},
                               pkg | {"package_code": "B2", "reweigh_g": None, "delta_g": None, "status": "MISSING"}],
                  "tolerance": {"min_g": 50, "pct": 5}, "overdue_after_s": 172800,
                  "summary": {"expected_count": 2, "present_count": 1, "missing_count": 1, "deviation_count": 0,
                              "overdue_count": 0, "expected_g": 500, "reweigh_g": 510, "delta_g": 10,
                              "delta_permille": 20, "missing_g": 500},
                  "result": "ACCEPTED_WITH_NOTE"}
    assert valid_body("handover", handover_v1) == [] and valid_body("storage_in", storage_v1) == []
    s = workflow.replay(workflow.State(org="H1", cart="CART-01", roster=ROSTER),
                        [(h1, "handover", 1, handover_v1), ("0190c000-0000-7000-8000-000000000102", "storage_in", 2,
                                                            storage_v1)])
    assert [(b.package_code, b.weight_g, b.facility) for b in s.stored] == [("B1", 510, "ROOM1")] and not s.carried


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
