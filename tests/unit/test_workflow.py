"""The collection round as a pure state machine: no hardware, no clock, no threads.

``Cart`` below drives the machine the way ``edge.app`` does (and is reused by the other
``test_workflow_*`` modules): it sends events with an explicit time and keeps the effects.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edge import wire, workflow
from edge.codes import Code
from edge.messages import Text
from edge.roster import Carrier, Department, Person, Receiver, Room, Roster, Vehicle
from edge.workflow import (
    Action,
    Actuate,
    ActuatorChanged,
    Commit,
    Committed,
    Effect,
    Limits,
    Machine,
    PinConfirmed,
    Printed,
    PrintLabel,
    Scanned,
    State,
    Step,
    Tick,
    Weighed,
    Weight,
)

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
ORG = "H1"
_DISPOSAL = {"INFECTIOUS": "高温蒸汽灭菌", "SHARPS": "高温蒸汽灭菌", "PATHOLOGICAL": "焚烧", "PHARMACEUTICAL": "焚烧"}
# Everyone the workflow tests meet: collectors, nurses of given wards, a keeper, a supervisor, a driver.
ROSTER = Roster(
    version="test-1", org_name="测试医院",
    people={
        "COL-1": Person(name="王收集", roles=("collector",)),
        "COL-2": Person(name="陈收集", roles=("collector",)),
        "NUR-1": Person(name="李护士", roles=("nurse",), departments=("D01", "D02", "D03")),
        "NUR-2": Person(name="赵护士", roles=("nurse",), departments=("D02",)),
        "NUR-7": Person(name="钱护士", roles=("nurse",), departments=("D05",)),
        "KEEP-1": Person(name="孙库管", roles=("keeper",)),
        "SUP-1": Person(name="周主管", roles=("supervisor",)),
        "SUP-2": Person(name="吴主管", roles=("supervisor", "collector")),
        "DRV-1": Person(name="郑司机", roles=("transporter",), carrier="CARRIER1"),
        "DRV-2": Person(name="冯司机", roles=("transporter",), carrier="CARRIER2"),
    },
    departments={d: Department(name=f"{d}科") for d in ("D01", "D02", "D03", "D05")},
    rooms={"ROOM1": Room(name="一号暂存间"), "ROOM2": Room(name="二号暂存间")},
    vehicles={"V1": Vehicle(plate="浙A·00001", carrier="CARRIER1", receiver="PLANT1"),
              "ZJA12345": Vehicle(plate="浙A·12345", carrier="CARRIER1", receiver="PLANT1")},
    carriers={"CARRIER1": Carrier(name="一号转运公司"), "CARRIER2": Carrier(name="二号转运公司")},
    receivers={"PLANT1": Receiver(name="处置中心", licence="浙危废经第1号", disposal=_DISPOSAL)},
)
_uuids = (f"0190c000-0000-7000-8000-{n:012d}" for n in itertools.count(1))


def uuid() -> str:
    return next(_uuids)


def valid_body(rtype: str, body: dict[str, Any]) -> list[str]:
    """Schema errors of ``body`` inside a well-formed envelope (the gateway runs the same check)."""
    env = wire.unsigned_envelope(record_id=uuid(), cart="CART-01", seq=1, created_at=T0.isoformat(),
                                 clock=wire.Clock("ntp", 1), rtype=rtype, body=body, prev_hash=wire.GENESIS_HASH)
    env.update(hash="0" * 64, sig="A" * 86 + "==")
    return wire.validate_record(env)


@dataclass
class Cart:
    """A test shell around ``Machine``: explicit time, effects kept, fresh ids."""

    limits: Limits = field(default_factory=Limits)
    now: datetime = T0
    effects: list[Effect] = field(default_factory=list)
    records: list[tuple[str, str, int, dict[str, Any]]] = field(default_factory=list)  # what the ledger holds

    def __post_init__(self) -> None:
        packages = (f"P{n:04d}" for n in itertools.count(1))
        self.m = Machine(State(org=ORG, cart="CART-01", limits=self.limits, roster=ROSTER), new_round_id=uuid,
                         new_package_id=lambda: next(packages))

    @property
    def s(self) -> State:
        return self.m.state

    def step(self) -> Step:
        """The current step (a call, so mypy does not carry a narrowed step across events)."""
        return self.m.state.step

    def send(self, event: workflow.Event) -> list[Effect]:
        out = self.m.handle(event)
        self.effects += out
        return out

    def later(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def scan(self, kind: str, ident: str, extra: str = "", org: str = ORG) -> list[Effect]:
        return self.send(Scanned(Code(kind, org, ident, extra), self.now))

    def weigh(self, grams: int | None, stable: bool = True, error: Text | None = None) -> None:
        self.send(Weighed(Weight(grams, stable, protocol="toledo", raw="\x02x", error=error), self.now))

    def act(self, action_id: str, value: str = "") -> list[Effect]:
        return self.send(Action(action_id, value, self.now))

    def bag(self, ident: str, grams: int, letter: str = "I") -> None:
        self.weigh(grams)
        self.scan("B", ident, letter)
        self.weigh(0)

    def commit(self) -> Commit:
        """The last effect must be a Commit; answer it with Committed like the ledger would."""
        effect = self.effects[-1]
        assert isinstance(effect, Commit), self.effects
        record = (uuid(), effect.rtype, len(self.records) + 1, effect.body)
        self.records.append(record)
        self.send(Committed(record[2], record[0], self.now))
        return effect

    def start_stop(self, dept: str = "D01", collector: str = "COL-1") -> None:
        self.scan("S", collector)
        self.scan("D", dept)

    def handover(self, dept: str, *bags: tuple[str, int, str]) -> Commit:
        """A whole department stop with a nurse's badge, committed."""
        self.scan("D", dept)
        for ident, grams, letter in bags:
            self.bag(ident, grams, letter)
        self.scan("S", "NUR-1")
        return self.commit()

    def action_ids(self) -> list[str]:
        return [a["id"] for a in workflow.view(self.s, self.now)["actions"]]


def test_a_whole_stop_commits_one_handover_with_totals() -> None:
    c = Cart()
    c.start_stop()
    c.bag("B1", 1200, "I")
    c.bag("B2", 800, "S")
    c.bag("B3", 300, "I")
    [effect] = c.scan("S", "NUR-1")
    assert isinstance(effect, Commit)
    assert c.step() is Step.SAVING
    body = effect.body
    assert body["department"] == "D01"
    assert body["from_party"] == {"person_id": "NUR-1", "name": "李护士", "role": "nurse", "auth_method": "card"}
    assert body["to_party"] == {"person_id": "COL-1", "name": "王收集", "device_id": "CART-01"}
    assert (body["org_name"], body["department_name"], body["body_version"]) == ("测试医院", "D01科", 2)
    assert body["destination"] == {"facility": "ROOM1", "name": "一号暂存间"}
    assert body["roster"] == {"version": "test-1", "digest": ROSTER.digest}
    assert [ln["weight_g"] for ln in body["lines"]] == [1200, 800, 300]
    assert body["totals"] == [{"category": "INFECTIOUS", "count": 2, "weight_g": 1500},
                              {"category": "SHARPS", "count": 1, "weight_g": 800}]
    assert body["lines"][1]["waste_code"] == "841-002-01"
    # times carry the zone's offset (Asia/Shanghai by default), whatever zone the events came in
    assert body["lines"][0]["weighing"]["measured_at"] == "2026-11-28T17:00:00.000+08:00"
    assert body["handover_at"] == "2026-11-28T17:00:00.000+08:00"
    assert not c.s.message  # "saved" only after the commit came back
    assert c.s.last_seq is None
    c.send(Committed(7, uuid(), T0 + timedelta(seconds=1)))
    after: State = c.s
    assert after.step is Step.ROUND
    assert after.message.zh == "已保存交接记录 #7"
    assert after.last_seq == 7
    assert after.lines == ()
    assert [b.package_code for b in after.carried] == ["B1", "B2", "B3"]


def test_handover_body_matches_the_wire_schema() -> None:
    c = Cart()
    c.start_stop()
    c.bag("B1", 1200)
    [effect] = c.scan("S", "NUR-1")
    assert isinstance(effect, Commit)
    assert valid_body(effect.rtype, effect.body) == []


def test_guard_rails_refuse_with_a_reason_and_change_nothing_else() -> None:
    c = Cart()
    c.scan("D", "D01")
    assert c.step() is Step.IDLE
    assert "工牌" in c.s.error
    c.scan("S", "COL-1")
    c.scan("B", "B1", "I")
    assert "科室" in c.s.error
    c.scan("D", "D01")
    c.weigh(900, stable=False)
    c.scan("B", "B1", "I")
    assert "未稳定" in c.s.error and "not stable" in c.s.error
    assert not c.s.lines
    c.weigh(900)
    c.scan("B", "B1", "I")
    assert len(c.s.lines) == 1
    assert not c.s.error
    c.scan("B", "B2", "I")  # same load still on the platform: not a new bag
    assert "取下" in c.s.error
    c.weigh(0)
    c.weigh(500)
    c.scan("B", "B1", "I")
    assert "重复" in c.s.error
    assert c.scan("S", "COL-1") == []  # the collector cannot sign for the nurse
    assert "护士" in c.s.error
    c.weigh(None, False, error=Text("超载", "overload"))
    c.scan("B", "B9", "I")
    assert c.s.error.zh == "秤报错：超载" and c.s.error.en == "Scale error: overload"
    c.weigh(None, False)
    c.scan("B", "B9", "I")
    assert "无读数" in c.s.error
    c.weigh(-300)
    c.scan("B", "B9", "I")
    assert "为负" in c.s.error
    c.weigh(5)
    c.scan("B", "B9", "I")
    assert "无重量" in c.s.error
    c.weigh(60_001)
    c.scan("B", "B9", "I")
    assert "最大称量 60 公斤" in c.s.error
    assert [ln.package_code for ln in c.s.lines] == ["B1"]


def test_codes_of_another_organisation_are_refused_whatever_their_kind() -> None:
    c = Cart()
    c.scan("S", "COL-9", org="H2")
    assert c.step() is Step.IDLE and "其他机构" in c.s.error and "H2" in c.s.error
    c.start_stop()
    c.weigh(700)
    for kind in "BSDRV":
        c.scan(kind, "X1", "I", org="H2")
        assert "其他机构" in c.s.error
    assert c.step() is Step.STOP and not c.s.lines


def test_the_same_bag_cannot_be_handed_over_twice_in_a_round_or_before_storage() -> None:
    c = Cart()
    c.scan("S", "COL-1")
    c.handover("D01", ("B1", 1000, "I"))
    c.scan("D", "D02")
    c.weigh(1000)
    c.scan("B", "B1", "I")
    assert "已交接过" in c.s.error
    c.act("cancel")          # leave the empty stop
    c.scan("S", "COL-1")     # end the round: the bag is still carried
    c.scan("S", "COL-2")
    c.scan("D", "D03")
    c.weigh(0)
    c.weigh(1000)
    c.scan("B", "B1", "I")
    assert "已交接过" in c.s.error


def test_nurse_badge_naming_a_department_opens_the_stop_and_pin_confirms() -> None:
    c = Cart()
    c.scan("S", "COL-1")
    c.scan("S", "NUR-7")
    assert "未关联科室" in c.s.error and c.step() is Step.ROUND
    c.scan("S", "NUR-7", "D05")
    assert (c.step(), c.s.department) == (Step.STOP, "D05")
    c.bag("B1", 400)
    c.act("confirm")
    assert c.step() is Step.CONFIRM
    assert c.action_ids() == ["confirm_pin", "back"]
    c.act("confirm_pin", "1234")           # the shell must check PINs: the machine never does
    assert "PIN" in c.s.error and c.step() is Step.CONFIRM
    c.send(PinConfirmed("COL-1", c.now))    # a PIN that belongs to the collector
    assert "收集人员" in c.s.error
    [effect] = c.send(PinConfirmed("NUR-7", c.now))
    assert isinstance(effect, Commit)
    assert effect.body["from_party"] == {"person_id": "NUR-7", "name": "钱护士", "role": "nurse", "auth_method": "pin"}
    assert effect.body["department"] == "D05"


def test_failed_commit_keeps_the_lines_for_a_retry() -> None:
    c = Cart()
    c.start_stop()
    c.bag("B1", 1000)
    c.scan("S", "NUR-1")
    c.send(workflow.CommitFailed(Text("磁盘已满", "disk full"), T0))
    assert c.step() is Step.STOP
    assert len(c.s.lines) == 1
    assert c.s.error.zh == "保存失败，请重试：磁盘已满" and "disk full" in c.s.error.en
    assert c.s.last_seq is None
    assert len(c.scan("S", "NUR-1")) == 1


def test_a_chosen_category_prints_a_label_with_a_new_package_code() -> None:
    c = Cart()
    c.start_stop()
    c.act("print_label")
    assert "不可用" in c.s.error               # nothing to print yet
    c.weigh(800)
    assert "choose:SHARPS" in c.action_ids()
    c.act("choose:SHARPS")
    assert c.s.pending is not None and c.s.pending.category == "SHARPS"
    [effect] = c.act("print_label")
    assert isinstance(effect, PrintLabel)
    assert effect.code == Code("B", ORG, "P0001", "S")
    assert effect.fields.weight_g == 800 and effect.fields.category_name == "损伤性废物"
    assert effect.fields.department == "D01" and effect.fields.waste_code == "841-002-01"
    c.scan("B", "X9", "S")
    assert "打印" in c.s.error                  # wait for the printer
    c.send(Printed(False, Text("缺纸", "paper out"), c.now))
    assert "缺纸" in c.s.error and not c.s.lines
    [again] = c.act("print_label")             # retry: the same package code
    assert isinstance(again, PrintLabel) and again.code.ident == "P0001"
    c.send(Printed(True, None, c.now))
    [line] = c.s.lines
    assert (line.package_code, line.category, line.weight_g, line.label) == ("P0001", "SHARPS", 800, "printed")


def test_a_chosen_category_may_be_completed_by_scanning_a_matching_label() -> None:
    c = Cart()
    c.start_stop()
    c.weigh(600)
    c.act("choose", "PATHOLOGICAL")           # the value form of choose:<CATEGORY>
    c.scan("B", "B7", "I")
    assert "不符" in c.s.error and "does not match" in c.s.error
    c.scan("B", "B7", "P")
    assert [(ln.package_code, ln.category) for ln in c.s.lines] == [("B7", "PATHOLOGICAL")]


def test_cancelled_print_ignores_the_late_printer_answer() -> None:
    c = Cart()
    c.start_stop()
    c.weigh(600)
    c.act("choose:INFECTIOUS")
    c.act("print_label")
    c.act("cancel")
    assert c.s.pending is None and c.s.print_job is None
    c.send(Printed(True, None, c.now))
    assert not c.s.lines


def test_label_without_category_asks_for_one_and_stays_editable() -> None:
    c = Cart()
    c.start_stop()
    c.weigh(450)
    c.scan("B", "B5")                          # e.g. a hospital's own label format without a letter
    view = workflow.view(c.s, c.now)
    assert view["prompt"]["zh"] == "请选择废物类别"
    assert len(view["categories"]) == 5
    c.scan("B", "B6")
    assert "当前这一袋" in c.s.error
    c.act("choose:CHEMICAL")
    [line] = c.s.lines
    assert (line.package_code, line.category, line.label, line.editable) == ("B5", "CHEMICAL", "plain", True)
    c.weigh(0)
    c.act("edit:B5")
    assert c.s.editing == "B5"
    assert c.act("choose:PHARMACEUTICAL") == []    # no label shows the category: no reprint
    assert c.s.lines[0].category == "PHARMACEUTICAL" and c.s.editing is None


def test_editing_a_printed_line_reprints_its_label_with_the_same_code() -> None:
    c = Cart()
    c.start_stop()
    c.weigh(300)
    c.act("choose:INFECTIOUS")
    c.act("print_label")
    c.send(Printed(True, None, c.now))
    c.weigh(0)
    c.act("edit:P0001")
    [effect] = c.act("choose:SHARPS")
    assert isinstance(effect, PrintLabel) and effect.code == Code("B", ORG, "P0001", "S")
    assert c.s.lines[0].category == "INFECTIOUS"   # changed only once the new label is out
    c.send(Printed(True, None, c.now))
    assert c.s.lines[0].category == "SHARPS" and c.s.editing is None


def test_a_line_whose_label_states_the_category_is_not_editable() -> None:
    c = Cart()
    c.start_stop()
    c.bag("B1", 500, "I")
    assert "edit:B1" not in c.action_ids()
    c.act("edit:B1")
    assert "不可用" in c.s.error
    assert workflow.view(c.s, c.now)["lines"][0]["editable"] is False


def test_remove_last_line_then_take_the_bag_again() -> None:
    c = Cart()
    c.start_stop()
    c.bag("B1", 500)
    c.weigh(700)
    c.scan("B", "B2", "S")
    c.act("remove_last")
    assert [ln.package_code for ln in c.s.lines] == ["B1"]
    c.scan("B", "B2", "I")                      # the bag is still on the platform: taken again
    assert [(ln.package_code, ln.category) for ln in c.s.lines] == [("B1", "INFECTIOUS"), ("B2", "INFECTIOUS")]


def test_the_scale_slides_out_for_weighing_and_in_after_the_handover() -> None:
    c = Cart()
    assert c.scan("S", "COL-1") == []
    assert c.scan("D", "D01") == []            # no actuator reported: never asked to move
    c.act("cancel")
    c.send(ActuatorChanged("retracted", c.now))
    assert c.scan("D", "D01") == [Actuate("extend")]
    c.weigh(800)
    c.scan("B", "B1", "I")
    assert "未伸出" in c.s.error and not c.s.lines
    c.send(ActuatorChanged("extended", c.now))
    c.scan("B", "B1", "I")
    assert len(c.s.lines) == 1
    c.scan("S", "NUR-1")
    assert c.send(Committed(1, uuid(), c.now)) == [Actuate("retract")]
    c.send(ActuatorChanged("fault", c.now, Text("滑出机构未到位", "end stop not reached in 5 s")))
    assert "滑出机构未到位" in c.s.error.zh and "end stop not reached" in c.s.error.en
    assert "scale_in" in c.action_ids()
    assert c.act("scale_in") == [Actuate("retract")]


def test_an_actuator_in_an_unknown_position_must_extend_before_weighing() -> None:
    c = Cart()
    c.send(ActuatorChanged("unknown", c.now))  # fitted, but neither end stop closed at start-up
    assert c.scan("S", "COL-1") == []
    assert c.scan("D", "D01") == [Actuate("extend")]
    c.weigh(800)
    c.scan("B", "B1", "I")
    assert "未伸出" in c.s.error and not c.s.lines
    assert "scale_out" in c.action_ids()


def test_a_round_left_open_too_long_warns_once_and_can_still_be_closed() -> None:
    c = Cart(limits=Limits(round_max_h=1))
    c.scan("S", "COL-1")
    c.later(3599)
    c.send(Tick(c.now))
    assert not c.s.error and not workflow.view(c.s, c.now)["round_overdue"]
    c.later(2)
    voice = c.s.voice_seq
    c.send(Tick(c.now))
    assert "超过 1 小时" in c.s.error and c.s.voice_seq == voice + 1
    assert workflow.view(c.s, c.now)["round_overdue"] is True
    c.send(Tick(c.now))
    assert c.s.voice_seq == voice + 1           # spoken once
    c.handover("D01", ("B1", 500, "I"))
    assert c.s.last_seq == 1
    c.act("end_round")
    assert c.step() is Step.IDLE and not workflow.view(c.s, c.now)["round_overdue"]


def test_fleet_builds_handover_bodies_from_a_bare_state() -> None:
    """wastecart.fleet constructs State, Stop and Line positionally: keep that working."""
    weigh = {"gross_g": 5, "tare_g": 0, "net_g": 5, "stable": True, "protocol": "toledo", "raw": ""}
    state = State(org=ORG, cart="CART-01", step=Step.STOP, round=workflow.Round("COL-1", uuid(), T0),
                  visit=workflow.Stop("D01", lines=(workflow.Line("B1", "SHARPS", 5, weigh),)))
    assert valid_body("handover", workflow.handover_body(state, nurse="NUR-1", at=T0)) == []


events = st.one_of(
    st.builds(lambda k, i, x: Scanned(Code(k, ORG, i, x), T0), st.sampled_from("SDBRV"),
              st.sampled_from(["COL-1", "NUR-1", "D01", "B1", "B2"]), st.sampled_from(["", "I", "S"])),
    st.builds(lambda g, s: Weighed(Weight(g, s), T0), st.one_of(st.none(), st.integers(-100, 30_000)),
              st.booleans()),
    st.builds(lambda n: Committed(n, uuid(), T0), st.integers(1, 9)),
    st.builds(lambda: workflow.CommitFailed(Text("x", "x"), T0)),
    st.builds(lambda a: Action(a, "r", T0), st.sampled_from(["confirm", "remove_last", "cancel", "choose:SHARPS",
                                                            "print_label", "finish", "batch_weight"])),
    st.builds(lambda ok: Printed(ok, None, T0), st.booleans()),
)


@settings(max_examples=200)
@given(st.lists(events, max_size=40))
def test_any_event_sequence_keeps_the_invariants(seq: list[workflow.Event]) -> None:
    c = Cart()
    for ev in seq:
        for effect in c.send(ev):
            if not isinstance(effect, Commit) or effect.rtype != "handover":
                continue
            assert effect.body["lines"], "a handover is never committed without lines"
            assert all(ln["weight_g"] >= workflow.EMPTY_BELOW_G for ln in effect.body["lines"])
            codes_ = [ln["package_code"] for ln in effect.body["lines"]]
            assert len(codes_) == len(set(codes_)), "the same bag twice in one handover"
            assert effect.body["from_party"]["person_id"] != effect.body["to_party"]["person_id"]
            assert c.step() is Step.SAVING
        if c.step() is Step.IDLE:
            assert c.s.collector is None
            assert not c.s.lines
