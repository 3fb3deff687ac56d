"""The collection round as a pure state machine: no hardware, no clock, no threads."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from edge import wire, workflow
from edge.codes import Code
from edge.workflow import Commit, Committed, Machine, Scanned, State, Step, Weighed, Weight

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
ORG = "H1"
_ids = (f"0190c000-0000-7000-8000-{n:012d}" for n in itertools.count())


def machine() -> Machine:
    return Machine(State(org=ORG, cart="CART-01"), new_round_id=lambda: next(_ids))


def scan(m: Machine, kind: str, ident: str, extra: str = "") -> list[Commit]:
    return m.handle(Scanned(Code(kind, ORG, ident, extra), T0))


def weigh(m: Machine, grams: int, stable: bool = True) -> None:
    m.handle(Weighed(Weight(grams, stable, protocol="toledo", raw="\x02x"), T0))


def bag(m: Machine, ident: str, grams: int, letter: str = "I") -> None:
    weigh(m, grams)
    scan(m, "B", ident, letter)
    weigh(m, 0)


def test_a_whole_stop_commits_one_handover_with_totals() -> None:
    m = machine()
    scan(m, "S", "COL-1")
    scan(m, "D", "D01")
    bag(m, "B1", 1200)
    bag(m, "B2", 800, "S")
    bag(m, "B3", 300)
    [effect] = scan(m, "S", "NUR-1")
    assert m.state.step is Step.SAVING
    body = effect.body
    assert body["department"] == "D01"
    assert body["from_party"] == {"person_id": "NUR-1", "auth_method": "card"}
    assert body["to_party"] == {"person_id": "COL-1", "device_id": "CART-01"}
    assert [ln["weight_g"] for ln in body["lines"]] == [1200, 800, 300]
    assert body["totals"] == [{"category": "INFECTIOUS", "count": 2, "weight_g": 1500},
                              {"category": "SHARPS", "count": 1, "weight_g": 800}]
    assert body["lines"][1]["waste_code"] == "841-002-01"
    assert m.state.message == ""  # "saved" only after the commit came back
    m.handle(Committed(7, "x", T0 + timedelta(seconds=1)))
    after: State = m.state  # a new state object (mypy narrowed the old one to SAVING)
    assert after.step is Step.ROUND
    assert after.message == "已保存交接记录 #7"
    assert m.state.lines == ()


def test_handover_body_matches_the_wire_schema() -> None:
    m = machine()
    scan(m, "S", "COL-1")
    scan(m, "D", "D01")
    bag(m, "B1", 1200)
    [effect] = scan(m, "S", "NUR-1")
    env = wire.unsigned_envelope(record_id=wire.uuid7(), cart="CART-01", seq=1, created_at=T0.isoformat(),
                                 clock=wire.Clock("ntp", 1), rtype=effect.rtype, body=effect.body,
                                 prev_hash=wire.GENESIS_HASH)
    env.update(hash="0" * 64, sig="A" * 86 + "==")
    assert wire.validate_record(env) == []


def test_guard_rails_refuse_with_a_reason_and_change_nothing_else() -> None:
    m = machine()
    scan(m, "D", "D01")
    assert m.state.step is Step.IDLE
    assert "工牌" in m.state.error
    scan(m, "S", "COL-1")
    scan(m, "B", "B1", "I")
    assert "科室" in m.state.error
    scan(m, "D", "D01")
    weigh(m, 900, stable=False)
    scan(m, "B", "B1", "I")
    assert "未稳定" in m.state.error
    assert m.state.lines == ()
    weigh(m, 900)
    scan(m, "B", "B1", "I")
    assert len(m.state.lines) == 1
    scan(m, "B", "B2", "I")  # same load still on the platform: not a new bag
    assert "取下" in m.state.error
    weigh(m, 0)
    weigh(m, 500)
    scan(m, "B", "B1", "I")
    assert "重复" in m.state.error
    assert scan(m, "S", "COL-1") == []  # the collector cannot sign for the nurse
    assert "护士" in m.state.error
    m.handle(Weighed(Weight(None, False, error="超载 (overload)"), T0))
    scan(m, "B", "B9", "I")
    assert "秤" in m.state.error


def test_failed_commit_keeps_the_lines_for_a_retry() -> None:
    m = machine()
    scan(m, "S", "COL-1")
    scan(m, "D", "D01")
    bag(m, "B1", 1000)
    scan(m, "S", "NUR-1")
    m.handle(workflow.CommitFailed("disk full", T0))
    assert m.state.step is Step.STOP
    assert len(m.state.lines) == 1
    assert "保存失败" in m.state.error
    assert len(scan(m, "S", "NUR-1")) == 1


events = st.one_of(
    st.builds(lambda k, i, x: Scanned(Code(k, ORG, i, x), T0), st.sampled_from("SDBRV"),
              st.sampled_from(["COL-1", "NUR-1", "D01", "B1", "B2"]), st.sampled_from(["", "I", "S"])),
    st.builds(lambda g, s: Weighed(Weight(g, s), T0), st.one_of(st.none(), st.integers(-100, 30_000)),
              st.booleans()),
    st.builds(lambda n: Committed(n, "id", T0), st.integers(1, 9)),
    st.builds(lambda: workflow.CommitFailed("x", T0)),
)


@settings(max_examples=300)
@given(st.lists(events, max_size=40))
def test_any_event_sequence_keeps_the_invariants(seq: list[workflow.Event]) -> None:
    m = machine()
    for ev in seq:
        for effect in m.handle(ev):
            assert effect.body["lines"], "a handover is never committed without lines"
            assert all(ln["weight_g"] >= workflow.EMPTY_BELOW_G for ln in effect.body["lines"])
            codes_ = [ln["package_code"] for ln in effect.body["lines"]]
            assert len(codes_) == len(set(codes_)), "the same bag twice in one handover"
            assert effect.body["from_party"]["person_id"] != effect.body["to_party"]["person_id"]
            assert m.state.step is Step.SAVING
        if m.state.step is Step.IDLE:
            assert m.state.collector is None
            assert m.state.lines == ()
