"""Who may sign what (the roster's roles and departments), label notes and components, the zone of
every time, and the dwell warnings on the kiosk (issue 16)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from edge import workflow
from edge.workflow import Commit, Limits, PinConfirmed, PrintLabel, Step, Tick
from tests.unit.test_workflow import ROSTER, Cart, valid_body
from tests.unit.test_workflow_storage import carrying, check_in


def test_only_a_collector_on_the_roster_starts_a_round() -> None:
    c = Cart()
    c.scan("S", "NOBODY")
    assert "工牌 NOBODY 不在人员名单中（名单版本 test-1）" in c.s.error and c.step() is Step.IDLE
    c.scan("S", "NUR-1")
    assert "李护士（科室护士）不能开始收集" in c.s.error and c.step() is Step.IDLE
    c.scan("S", "COL-1")
    assert c.step() is Step.ROUND and "王收集" in c.s.message


def test_a_handover_is_signed_only_by_a_nurse_of_that_department() -> None:
    c = Cart()
    c.start_stop("D02")
    c.bag("B1", 700)
    assert c.scan("S", "KEEP-1") == []
    assert "孙库管（暂存间管理员）不能确认交接：须由D02科的护士" in c.s.error
    assert c.scan("S", "NUR-7") == []
    assert "钱护士是D05科的护士，不能为D02科签字" in c.s.error
    assert c.send(PinConfirmed("SUP-1", c.now)) == [] and "周主管（主管）" in c.s.error
    [effect] = c.scan("S", "NUR-2")
    assert isinstance(effect, Commit)
    assert effect.body["from_party"]["name"] == "赵护士" and effect.body["department_name"] == "D02科"


def test_a_nurse_badge_opens_only_her_own_department() -> None:
    c = Cart()
    c.scan("S", "COL-1")
    c.scan("S", "NUR-2", "D01")
    assert "赵护士是D02科的护士" in c.s.error and c.step() is Step.ROUND


def test_label_notes_and_components_go_on_the_label_and_into_the_record() -> None:
    c = Cart()
    c.start_stop()
    c.weigh(900)
    c.act("choose:INFECTIOUS")
    ids = c.action_ids()
    assert {"note:MIXED_DRUGS", "note:DOUBLE_BAG", "note:DISINFECTED"} <= set(ids)
    c.act("note:MIXED_DRUGS")
    c.act("note:DOUBLE_BAG")
    c.act("note:DOUBLE_BAG")                  # a second tap takes it off again
    [chosen] = [a for a in workflow.view(c.s, c.now)["actions"] if a["id"] == "note:MIXED_DRUGS"]
    assert chosen["style"] == "chosen"
    [job] = c.act("print_label")
    assert isinstance(job, PrintLabel)
    f = job.fields
    assert (f.notes, f.org_name, f.department_name) == ("含少量药物性废物", "测试医院", "D01科")
    assert f.produced_at.utcoffset() == timedelta(hours=8) and f.produced_at.hour == 17   # T0 is 09:00 UTC


def test_chemical_waste_needs_its_main_components_before_printing() -> None:
    c = Cart()
    c.start_stop()
    c.weigh(900)
    c.act("choose:CHEMICAL")
    assert "note:MIXED_DRUGS" not in c.action_ids()   # notes apply to their categories only
    assert c.act("print_label") == [] and "主要成分" in c.s.error
    c.act("components", "x" * 40)
    assert "1-24" in c.s.error
    c.act("components", " 戊二醛  废液 ")
    [job] = c.act("print_label")
    assert isinstance(job, PrintLabel) and job.fields.main_components == "戊二醛 废液"
    c.send(workflow.Printed(True, None, c.now))
    [effect] = c.scan("S", "NUR-1")
    assert isinstance(effect, Commit)
    assert effect.body["lines"][0]["main_components"] == "戊二醛 废液"
    assert valid_body("handover", effect.body) == []


def test_times_follow_the_configured_zone() -> None:
    c = Cart()
    c.m.state = workflow.State(org="H1", cart="CART-01", roster=ROSTER, zone=ZoneInfo("Europe/Berlin"))
    c.start_stop()
    c.bag("B1", 500)
    [effect] = c.scan("S", "NUR-1")
    assert isinstance(effect, Commit)
    assert effect.body["handover_at"] == "2026-11-28T10:00:00.000+01:00"


def test_the_kiosk_warns_at_80_percent_of_the_ward_limit_and_again_when_overdue() -> None:
    c = carrying(("B1", 1000, "I"), limits=Limits(ward_max_h=10))
    c.act("end_round")                        # the round's own 4 h warning would come first
    c.later(7.9 * 3600)
    c.send(Tick(c.now))
    assert not c.s.error and workflow.view(c.s, c.now)["dwell"] == []
    c.later(0.2 * 3600)                       # 8.1 h of 10 h
    c.send(Tick(c.now))
    assert "即将超时" in c.s.error and "交接后未入库" in c.s.error
    [d] = workflow.view(c.s, c.now)["dwell"]
    assert (d["package_code"], d["where"], d["level"], d["limit_h"]) == ("B1", "cart", "warn", 10.0)
    voice = c.s.voice_seq
    c.send(Tick(c.now + timedelta(minutes=1)))
    assert c.s.voice_seq == voice             # said once, not at every tick
    c.later(2 * 3600)
    c.send(Tick(c.now))
    assert "已超时" in c.s.error


def test_the_kiosk_warns_about_bags_long_in_storage() -> None:
    c = carrying(("B1", 1000, "I"), limits=Limits(storage_overdue_h=48))
    check_in(c, B1=1000)
    c.commit()
    c.act("end_round")
    c.later(38 * 3600)
    c.send(Tick(c.now))
    assert not c.s.error
    c.later(1 * 3600)                         # 39 h in storage >= 80 % of 48 h
    c.send(Tick(c.now))
    assert "在暂存间" in c.s.error
    assert workflow.view(c.s, c.now)["dwell"][0]["where"] == "storage"
