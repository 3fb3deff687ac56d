"""The whole state machine under random event sequences (hypothesis stateful testing).

Every kind of event in every state — scans of all kinds (some of another organisation), good,
unstable, negative, overloaded and missing weights, the buttons the screen offers and arbitrary
ones, PINs, actuator reports, printer answers, commit results (also unasked ones), time passing —
and after each event the invariants the issue names: no bag twice, a handover only with lines and
a confirmer who is not the collector, every record body valid on the wire, "saved" only after
Committed, a JSON-able view whose buttons all work.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from edge import workflow
from edge.codes import CATEGORY_LETTERS, Code
from edge.messages import Text, msg
from edge.workflow import (
    ACTUATOR_STATES,
    Action,
    Actuate,
    ActuatorChanged,
    Commit,
    CommitFailed,
    Committed,
    Effect,
    Limits,
    Machine,
    PinConfirmed,
    Printed,
    PrintLabel,
    Rejected,
    Scanned,
    State,
    Step,
    Tick,
    Weighed,
    Weight,
)
from tests.unit.test_workflow import ORG, ROSTER, T0, valid_body

IDENTS = ["COL-1", "NUR-1", "NUR-2", "KEEP-1", "SUP-1", "SUP-2", "DRV-1", "DRV-2", "NOBODY", "D01", "B1", "B2", "B3",
          "P0001", "ROOM1", "V1", "OLD1"]
NATIONAL = "20263301000123"
OLD = "0190c000-0000-7000-8000-0000000000a1"
# A ledger written before body versions (version 1): the runs start from it, so every step of every run
# also checks that old records still replay to where the bags are.
V1_LEDGER: list[tuple[str, str, int, dict[str, Any]]] = [(OLD, "handover", 1, {
    "org": ORG, "round_id": OLD, "handover_at": (T0 - timedelta(hours=1)).isoformat(timespec="milliseconds"),
    "department": "D01", "from_party": {"person_id": "NUR-1", "auth_method": "card"},
    "to_party": {"person_id": "COL-1", "device_id": "CART-01"},
    "lines": [{"package_code": c, "category": "INFECTIOUS", "waste_code": "841-001-01", "weight_g": 500,
               "weighing": {"gross_g": 500, "tare_g": 0, "net_g": 500, "stable": True, "protocol": "toledo",
                            "raw": ""}} for c in ("OLD1", "OLD2")],
    "totals": [{"category": "INFECTIOUS", "count": 2, "weight_g": 1000}], "destination": None})]
# record type -> the signatures it carries and the role each needs
SIGNER_ROLE = {"handover": {"from_party": "nurse"}, "storage_in": {"keeper": "keeper"},
               "incident": {"confirmed_by": "supervisor", "keeper": "keeper"}, "void": {"approved_by": "supervisor"},
               "correction": {"approved_by": "supervisor"}}
good_weight = st.builds(lambda g: Weight(g, True, protocol="toledo", raw="x"), st.integers(20, 9000))
weights = st.one_of(
    good_weight, good_weight,
    st.just(Weight(0, True)),                                     # platform emptied
    st.builds(lambda g: Weight(g, False), st.integers(20, 9000)),  # unstable
    st.builds(lambda g: Weight(g, True), st.integers(-500, -1)),   # negative
    st.builds(lambda g: Weight(g, True), st.integers(60_001, 100_000)),  # over the machine's limit
    st.just(Weight(None, False, error=Text("超载", "overload"))),
    st.just(Weight(None, False)),
)
VALUES = {"reason": ["", "torn bag", "DUPLICATE", "OTHER", "OTHER|bag torn"],
          "text": ["", NATIONAL, "L-1", "bad num!", "room1", "甲醛"],
          "pin": ["1234"],
          None: [""]}
ANY_ACTIONS = ["end_round", "choose:INFECTIOUS", "choose:SHARPS", "choose", "print_label", "remove_last",
               "edit:B1", "edit:P0001", "confirm", "confirm_pin", "back", "cancel", "batch_weight", "finish",
               "manifest", "void_bag", "void:0190c000-0000-7000-8000-000000000001", "scale_out", "scale_in",
               "start_storage", "start_transfer", "nonsense", "choose:RADIOACTIVE", "manifest_local", "report_lost",
               "reject_storage", "note:MIXED_DRUGS", "components", "choose:CHEMICAL",
               "correct:0190c000-0000-7000-8000-000000000001"]


class Workflow(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        packages = (f"P{n:04d}" for n in itertools.count(1))
        start = State(org=ORG, cart="CART-01", limits=Limits(round_max_h=1, ward_max_h=1, storage_overdue_h=2),
                      roster=ROSTER)
        ids = (f"0190c000-0000-7000-8000-{n:012d}" for n in itertools.count(1))  # the same in every replay of
        self.uuid: Callable[[], str] = lambda: next(ids)                      # a case (hypothesis shrinks by it)
        self.m = Machine(workflow.replay(start, V1_LEDGER), new_round_id=self.uuid,
                         new_package_id=lambda: next(packages))
        self.seqs: set[int] = {1}
        self.seq = itertools.count(2)
        self.outstanding: Commit | None = None
        self.records: list[tuple[str, str, int, dict[str, Any]]] = list(V1_LEDGER)

    # driving ------------------------------------------------------------------------------

    def send(self, event: workflow.Event) -> None:
        if isinstance(event, CommitFailed):
            self.outstanding = None
        before = self.m.state
        for effect in self.m.handle(event):
            self.check_effect(before, self.m.state, effect)

    def ledger_commits(self) -> None:
        """The ledger stores the outstanding record and answers Committed, as edge.app does."""
        assert self.outstanding is not None
        record = (self.uuid(), self.outstanding.rtype, next(self.seq), self.outstanding.body)
        self.records.append(record)
        self.seqs.add(record[2])
        self.outstanding = None
        self.send(Committed(record[2], record[0], self.now))

    def check_effect(self, before: State, after: State, effect: Effect) -> None:
        if isinstance(effect, Commit):
            self.outstanding = effect
            event(f"commit {effect.rtype}")
            assert valid_body(effect.rtype, effect.body) == [], (effect.rtype, effect.body)
            assert after.step is Step.SAVING and after.saving is not None and after.last_seq is None
            if effect.rtype == "handover":
                body = effect.body
                assert before.lines and before.collector is not None
                assert body["from_party"]["person_id"] not in (before.collector, body["to_party"]["person_id"])
                codes = [ln["package_code"] for ln in body["lines"]]
                assert len(codes) == len(set(codes))
                assert not set(codes) & {b.package_code for b in (*before.carried, *before.stored)}
                for ln in body["lines"]:
                    assert ln["weighing"]["stable"] is True and ln["weight_g"] == ln["weighing"]["net_g"] > 0
            self.signatures_allowed(before, effect.rtype, effect.body)
            if effect.rtype == "correction":   # only of a transfer, never of anything else
                assert any(r[0] == effect.body["corrected_record_id"] and r[1] == "transfer" for r in self.records)
            if effect.rtype == "void":   # no void undoes a departed transfer, nor any of its bags
                assert effect.body["voided_type"] in ("handover", "storage_in")
                gone = {code for code, place in self.places().items() if place == "vehicle"}
                assert effect.body["package_code"] not in gone
                assert not any(r[0] == effect.body["voided_record_id"] and r[1] == "transfer" for r in self.records)
        elif isinstance(effect, PrintLabel):
            assert effect.code.kind == "B" and effect.code.org == ORG
            assert effect.code.extra in CATEGORY_LETTERS
        else:
            assert isinstance(effect, Actuate) and effect.direction in ("extend", "retract")
            assert before.actuator != "none"

    def signatures_allowed(self, before: State, rtype: str, body: dict[str, Any]) -> None:
        """Every signature is by a person the roster allows for it (and never by the collector)."""
        collector = before.collector
        for key, role in SIGNER_ROLE.get(rtype, {}).items():
            party = body.get(key)
            if party is None:
                continue
            person = ROSTER.people[party["person_id"]]
            assert party["role"] == role and person.has(role), (rtype, key, party)
            assert party["person_id"] != collector
            assert party["name"] == person.name
        if rtype == "handover":
            assert body["department"] in ROSTER.people[body["from_party"]["person_id"]].departments
        if rtype == "storage_in":
            assert "keeper" in body
        if rtype == "transfer":
            driver = body["carrier"]["driver"]
            assert driver["role"] == "transporter" and ROSTER.people[driver["person_id"]].has("transporter")
            assert body["disposal_method"] and body["final_destination"]
        if rtype in ("void", "incident"):
            assert ("approved_by" if rtype == "void" else "confirmed_by") in body

    def places(self) -> dict[str, str]:
        """Where each bag is by the ledger alone (a model written here, not ``apply_record``):
        cart, storage, vehicle, voided or lost.  Every bag that entered has exactly one place."""
        place: dict[str, str] = {}
        stored_by: dict[str, list[str]] = {}
        lines_of: dict[str, list[str]] = {}
        for record_id, rtype, _seq, body in self.records:
            if rtype == "handover":
                codes = [ln["package_code"] for ln in body["lines"]]
                # never while the cart still answers for it; once it left (vehicle) or was written off
                # (voided, lost) the cart no longer holds it, and a code seen again starts a new path
                assert all(place.get(c) in (None, "voided", "vehicle", "lost") for c in codes), "handed over twice"
                place.update(dict.fromkeys(codes, "cart"))
                lines_of[record_id] = codes
            elif rtype == "storage_in" and body.get("result") != "REJECTED":
                assert body.get("body_version") is None or all(p["status"] != "MISSING" for p in body["packages"])
                moved = [p["package_code"] for p in body["packages"] if p["status"] != "MISSING"]
                assert all(place[c] == "cart" for c in moved)
                place.update(dict.fromkeys(moved, "storage"))
                for p in body["packages"]:
                    if p["status"] == "MISSING":       # version 1: a missing bag was dropped
                        place[p["package_code"]] = "missing_v1"
                stored_by[record_id] = moved
            elif rtype == "incident":
                for b in body["bags"]:
                    assert place[b["package_code"]] in ("cart", "storage")
                    place[b["package_code"]] = "lost"
            elif rtype == "transfer":
                for ln in body["lines"]:
                    assert place[ln["package_code"]] == "storage"
                    place[ln["package_code"]] = "vehicle"
            elif rtype == "void":
                code, target = body["package_code"], body["voided_record_id"]
                if code:
                    assert place[code] in ("cart", "storage")
                    place[code] = "voided"
                elif target in lines_of:
                    place.update({c: "voided" for c in lines_of[target] if place[c] == "cart"})
                elif target in stored_by:
                    place.update({c: "cart" for c in stored_by[target] if place[c] == "storage"})
        return place

    def next_sensible_thing(self, data: st.DataObject) -> None:
        """What a collector would do now: keeps random runs reaching the deep steps."""
        s, now = self.m.state, self.now
        bags = [b.package_code for b in (*s.carried, *s.stored)]
        fresh = data.draw(st.sampled_from(["B1", "B2", "B3", "B4", "B5"]))
        letter = data.draw(st.sampled_from(["I", "S", ""]))
        grams = data.draw(st.integers(20, 9000))
        if s.step is Step.IDLE:
            self.send(Scanned(Code("S", ORG, "COL-1"), now))
        elif s.step is Step.SAVING:
            self.ledger_commits()
        elif s.print_job is not None:
            self.send(Printed(True, None, now))
        elif s.pending is not None or s.editing is not None:
            self.send(Action("choose", data.draw(st.sampled_from(["INFECTIOUS", "SHARPS"])), now))
            if s.pending is not None and s.pending.package_code is None:
                self.send(Action("print_label", "", now))
        elif s.step is Step.ROUND:
            last_transfer = s.last_record is not None and s.last_record.rtype == "transfer"
            kinds = "D" + "RR" * bool(s.carried) + "VV" * bool(s.stored) + "X" * bool(bags) + "C" * last_transfer
            kind = data.draw(st.sampled_from(kinds))
            if kind == "X":
                last = s.last_record
                void_last = (last is not None and last.rtype in ("handover", "storage_in")
                             and data.draw(st.booleans()))
                self.send(Action(f"void:{last.record_id}" if last and void_last else "void_bag", "DUPLICATE", now))
            elif kind == "C" and s.last_record is not None:
                self.send(Action(f"correct:{s.last_record.record_id}", "WRONG_LABEL", now))
            else:
                self.send(Scanned(Code(kind, ORG, {"D": "D01", "R": "ROOM1", "V": "V1"}[kind]), now))
        elif s.storage is not None and s.storage.lost is not None:
            self.send(Scanned(Code("S", ORG, data.draw(st.sampled_from(["SUP-1", "KEEP-1"]))), now))
        elif s.step is Step.STORAGE and (s.reweighs or s.batch) and data.draw(st.booleans()):
            if s.storage is not None and s.storage.keeper is None:
                self.send(Scanned(Code("S", ORG, "KEEP-1"), now))
            self.send(Action(data.draw(st.sampled_from(["finish", "finish", "report_lost", "reject_storage"])),
                             "not found", now))
        elif s.step in (Step.STOP, Step.CONFIRM) and s.lines and data.draw(st.booleans()):
            self.send(Scanned(Code("S", ORG, data.draw(st.sampled_from(["NUR-1", "NUR-1", "NUR-2"]))), now))
        elif s.step in (Step.STOP, Step.STORAGE):
            self.send(Weighed(Weight(0, True), now))
            self.send(Weighed(Weight(grams, True, protocol="toledo", raw="x"), now))
            ident = data.draw(st.sampled_from(bags)) if s.step is Step.STORAGE and bags else fresh
            self.send(Scanned(Code("B", ORG, ident, letter), now))
        elif s.step is Step.TRANSFER:
            for _ in range(2):
                self.send(Action("manifest", NATIONAL, now))
            self.send(Scanned(Code("S", ORG, data.draw(st.sampled_from(["DRV-1", "DRV-2"]))), now))
            self.send(Action("finish", "", now))
        elif s.step is Step.CORRECT and s.correction is not None:
            if s.correction.manifest is None:
                number = data.draw(st.sampled_from([NATIONAL, "20263301000999"]))
                for _ in range(2):
                    self.send(Action("manifest", number, now))
            else:
                self.send(Scanned(Code("S", ORG, data.draw(st.sampled_from(["SUP-1", "KEEP-1"]))), now))
        elif s.step is Step.VOID and s.void is not None and s.void.record_id is not None:
            self.send(Scanned(Code("S", ORG, data.draw(st.sampled_from(["SUP-1", "SUP-2", "NUR-1"]))), now))
        elif s.step is Step.VOID and bags:
            self.send(Scanned(Code("B", ORG, data.draw(st.sampled_from(bags)), "I"), now))

    # Hypothesis picks rules uniformly: offering the guided step three times keeps runs going deep.
    @rule(data=st.data())
    def collector_acts(self, data: st.DataObject) -> None:
        self.next_sensible_thing(data)

    @rule(data=st.data())
    def collector_acts_again(self, data: st.DataObject) -> None:
        self.next_sensible_thing(data)

    @rule(data=st.data())
    def collector_acts_once_more(self, data: st.DataObject) -> None:
        self.next_sensible_thing(data)

    @rule(kind=st.sampled_from("SDBRV"), ident=st.sampled_from(IDENTS),
          extra=st.sampled_from(["", "I", "S", "P", "D01"]), foreign=st.integers(0, 9))
    def scan(self, kind: str, ident: str, extra: str, foreign: int) -> None:
        self.send(Scanned(Code(kind, "H2" if foreign == 0 else ORG, ident, extra), self.now))

    @rule(weight=weights)
    def weigh(self, weight: Weight) -> None:
        self.send(Weighed(weight, self.now))

    @rule(data=st.data())
    def tap_a_listed_button(self, data: st.DataObject) -> None:
        actions = workflow.view(self.m.state, self.now)["actions"]
        if actions:
            a = data.draw(st.sampled_from(actions))
            self.send(Action(a["id"], data.draw(st.sampled_from(VALUES[a["needs"]])), self.now))

    @rule(action_id=st.sampled_from(ANY_ACTIONS), value=st.sampled_from(["", "SHARPS", "L-1", "torn"]))
    def tap_anything(self, action_id: str, value: str) -> None:
        self.send(Action(action_id, value, self.now))

    @rule(person=st.sampled_from(["NUR-1", "NUR-2", "COL-1", "KEEP-1", "SUP-1", "DRV-1", "NOBODY", "bad id"]))
    def pin(self, person: str) -> None:
        self.send(PinConfirmed(person, self.now))

    @rule(state=st.sampled_from([*ACTUATOR_STATES, "extended", "bogus"]))
    def actuator(self, state: str) -> None:
        self.send(ActuatorChanged(state, self.now))

    @rule(ok=st.booleans())
    def printer_answers(self, ok: bool) -> None:
        self.send(Printed(ok, None if ok else Text("缺纸", "paper out"), self.now))

    @precondition(lambda self: self.m.state.saving is not None)
    @rule(ok=st.integers(0, 4))
    def ledger_answers(self, ok: int) -> None:
        if ok:
            self.ledger_commits()
        else:
            self.send(CommitFailed(Text("磁盘已满", "disk full"), self.now))

    @rule(ok=st.booleans())
    def unasked_ledger_answer(self, ok: bool) -> None:
        saving = self.m.state.saving is not None
        self.send(Committed(9999, self.uuid(), self.now) if ok and not saving
                  else CommitFailed(Text("x", "x"), self.now))

    @rule(seconds=st.integers(0, 4000))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        self.send(Tick(self.now))

    @rule()
    def rejected(self) -> None:
        self.send(Rejected(Text("二维码校验失败", "check characters do not match"), self.now))

    # invariants ---------------------------------------------------------------------------

    @invariant()
    def no_bag_twice(self) -> None:
        s = self.m.state
        on_list = [ln.package_code for ln in s.lines]
        assert len(on_list) == len(set(on_list))
        elsewhere = [b.package_code for b in (*s.carried, *s.stored)]
        assert len(elsewhere) == len(set(elsewhere))
        assert not set(on_list) & set(elsewhere)

    @invariant()
    def every_bag_is_in_exactly_one_place(self) -> None:
        """On the cart, in storage, on a vehicle, voided or lost — by the ledger — and the machine's
        carried / stored are exactly the ledger's cart / storage: no bag that entered is silently gone."""
        s = self.m.state
        places = self.places()
        on_cart = {c for c, p in places.items() if p == "cart"}
        in_storage = {c for c, p in places.items() if p == "storage"}
        assert on_cart == {b.package_code for b in s.carried}
        assert in_storage == {b.package_code for b in s.stored}
        assert set(places.values()) <= {"cart", "storage", "vehicle", "voided", "lost"}

    @invariant()
    def steps_are_consistent(self) -> None:
        s = self.m.state
        assert (s.step is Step.IDLE) == (s.collector is None)
        if s.step is Step.IDLE:
            assert s.lines == () and s.round_id is None
        if s.step in (Step.STOP, Step.CONFIRM):
            assert s.department is not None
        assert (s.step is Step.SAVING) == (s.saving is not None)
        if s.print_job is not None and not s.print_job.reprint:
            assert s.pending is not None
        assert all(ln.weight_g >= workflow.EMPTY_BELOW_G for ln in s.lines)

    @invariant()
    def the_ledger_replays_to_the_same_bags(self) -> None:
        s = self.m.state
        rebuilt = workflow.replay(replace(s, carried=(), stored=(), last_record=None), self.records)
        assert (rebuilt.carried, rebuilt.stored, rebuilt.last_record) == (s.carried, s.stored, s.last_record)

    @invariant()
    def saved_only_after_committed(self) -> None:
        v = workflow.view(self.m.state, self.now)
        assert v["saved_seq"] is None or v["saved_seq"] in self.seqs
        if self.m.state.step is Step.SAVING:
            assert v["saved_seq"] is None

    @invariant()
    def view_is_json_and_its_buttons_work(self) -> None:
        s = self.m.state
        v = workflow.view(s, self.now)
        json.dumps(v, allow_nan=False)
        assert v["step"] == s.step.value
        not_available = msg("err.not_available")
        for a in v["actions"]:
            assert workflow.action_known(a["id"]), a
            for value in VALUES[a["needs"]]:
                after, _ = workflow.step(s, Action(a["id"], value, self.now), lambda: OLD, lambda: "PNEW")
                assert after.error != not_available, (s.step, a["id"])


TestWorkflow = Workflow.TestCase
TestWorkflow.settings = settings(max_examples=200, stateful_step_count=40, deadline=None,
                                 suppress_health_check=[HealthCheck.too_slow])
