"""The agent against a real ledger file: every failure to commit comes back to the workflow as
CommitFailed with its reason, nothing half-written, and the cart can go on; PINs typed at the kiosk
are limited (``edge.pin_guard``) and answer the same outside the nurse screen, right or wrong.

The regression (issue 10): a body the wire contract cannot encode (a float) raised ``ContractError``
out of ``Ledger.commit``; the agent caught only ``StoreError``, so the workflow stayed in SAVING and
refused every event until the agent restarted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from edge import codes, keys, pins, roster, workflow
from edge.agent import Agent
from edge.clock import SystemClock
from edge.codes import Code
from edge.ledger.store import Committed, Ledger
from edge.messages import t
from edge.pin_guard import PinGuard
from edge.workflow import Step, Weighed, Weight

ORG = "H1"
ROSTER = roster.example()  # COL-01 collects; NUR-01 is the nurse of D01, the department the tests stop at


def state() -> workflow.State:
    return workflow.State(org=ORG, cart="CART-01", roster=ROSTER)


class FloatingLedger(Ledger):
    """The real ledger, handed a body with a float once (as a future body builder might)."""

    poison = True

    def commit(self, rtype: str, body: Mapping[str, Any], **kw: Any) -> Committed:
        if self.poison:
            self.poison = False
            body = {**body, "weight_kg": 1.5}
        return super().commit(rtype, body, **kw)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    ledger = FloatingLedger(tmp_path, "CART-01", keys.load_or_create(tmp_path))
    machine = workflow.Machine(state())
    yield Agent(machine, clock=SystemClock("ntp"), ledger=ledger, code_book=codes.CodeBook(ORG), pin_hashes={},
                printer=None, devices=dict, online=lambda: False)
    ledger.close()


def handover(agent: Agent) -> None:
    now = agent.clock.now()
    for event in (workflow.Scanned(Code("S", ORG, "COL-01"), now), workflow.Scanned(Code("D", ORG, "D01"), now),
                  Weighed(Weight(800, True, protocol="toledo"), now), workflow.Scanned(Code("B", ORG, "B1", "I"), now),
                  Weighed(Weight(0, True), now), workflow.Scanned(Code("S", ORG, "NUR-01"), now)):
        agent.apply(event)


def test_a_body_the_contract_refuses_comes_back_as_commit_failed(agent: Agent) -> None:
    ledger = agent.ledger
    assert isinstance(ledger, FloatingLedger)
    handover(agent)
    s = agent.state
    assert s.step is Step.STOP and len(s.lines) == 1, "back at the stop, the line kept for a retry"
    assert "保存失败" in s.error and s.saving is None and s.last_seq is None
    assert ledger.head() == 0 and ledger.unsynced_count() == 0, "nothing half-written"
    view = agent.snapshot()
    assert view["error"] is not None and "保存失败" in view["error"]["zh"]  # on the kiosk
    agent.apply(workflow.Scanned(Code("S", ORG, "NUR-01"), agent.clock.now()))  # the nurse confirms again
    assert agent.state.step is Step.ROUND and agent.state.last_seq == 1 and ledger.head() == 1
    [(_id, _type, _seq, body)] = ledger.bodies(["handover"])  # signed as the roster says, by name
    assert body["from_party"] == {"person_id": "NUR-01", "name": "李护士", "role": "nurse", "auth_method": "card"}
    assert body["org_name"] == ROSTER.org_name and body["roster"] == ROSTER.stamp()


PIN = "2468"
LOCKED = "PIN 已锁定，请 15 分钟后再试"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def kiosk(tmp_path: Path) -> Iterator[tuple[Agent, list[str], Clock]]:
    """An agent with one nurse's PIN and a guard that locks at the second wrong PIN in a row (on a
    made-up clock); the workflow thread's passes are run by the test (``step``)."""
    ledger = Ledger(tmp_path, "CART-01", keys.load_or_create(tmp_path))
    alarms: list[str] = []
    policy = pins.PinPolicy(free_failures=2, lockout_after=2, kiosk_lockout_after=10, lockout_min=15)
    nurses = {"NUR-01": pins.hash_pin(PIN, iterations=1000)}
    agent = Agent(workflow.Machine(state()), clock=SystemClock("ntp"),
                  ledger=ledger, code_book=codes.CodeBook(ORG), pin_hashes=nurses, printer=None,
                  devices=dict, online=lambda: False, pin_policy=policy, on_alarm=lambda: alarms.append("alarm"))
    clock = Clock()
    agent.pin_guard = PinGuard(policy, clock)
    yield agent, alarms, clock
    ledger.close()


def at_the_stop(agent: Agent) -> None:
    now = agent.clock.now()
    for event in (workflow.Scanned(Code("S", ORG, "COL-01"), now), workflow.Scanned(Code("D", ORG, "D01"), now),
                  Weighed(Weight(800, True, protocol="toledo"), now), workflow.Scanned(Code("B", ORG, "B1", "I"), now),
                  Weighed(Weight(0, True), now)):
        agent.apply(event)
    assert agent.state.step is Step.STOP and len(agent.state.lines) == 1


def at_the_nurse_screen(agent: Agent) -> None:
    at_the_stop(agent)
    agent.apply(workflow.Action("confirm", "", agent.clock.now()))
    assert agent.state.step is Step.CONFIRM


def saved(agent: Agent) -> int:
    """Records in the agent's ledger."""
    ledger = agent.ledger
    assert isinstance(ledger, Ledger)
    return ledger.head()


def step(agent: Agent) -> Step:
    return agent.state.step


def typed(agent: Agent, pin: str) -> str:
    """The PIN typed on the kiosk, then one pass of the workflow thread: the refusal shown (zh)."""
    agent.act("confirm_pin", pin)
    agent._pass()
    return agent.state.error.zh if agent.state.error else ""


def test_outside_the_nurse_screen_a_right_and_a_wrong_pin_get_the_same_answer(
        kiosk: tuple[Agent, list[str], Clock]) -> None:
    agent, _alarms, _clock = kiosk
    at_the_stop(agent)
    right, right_state = typed(agent, PIN), agent.state
    agent.apply(workflow.Action("cancel", "", agent.clock.now()))  # the next answer starts from a clean banner
    agent.apply(workflow.Action("confirm", "", agent.clock.now()))
    agent.apply(workflow.Action("back", "", agent.clock.now()))
    assert agent.state.step is Step.STOP and not agent.state.error
    wrong, wrong_state = typed(agent, "0000"), agent.state
    assert right == wrong == t("err.not_available").zh
    assert right_state.step is wrong_state.step is Step.STOP
    assert saved(agent) == 0 and agent.pin_guard.failures == 0  # neither PIN was even looked at


def test_a_pin_answer_is_not_applied_once_the_nurse_screen_is_gone(kiosk: tuple[Agent, list[str], Clock]) -> None:
    """The step changed while the PIN was checked: the answer is "not available", whatever was typed."""
    agent, _alarms, _clock = kiosk
    at_the_nurse_screen(agent)
    answers = []
    for pin in (PIN, "0000"):
        agent.act("confirm_pin", pin)  # checked on the kiosk's thread, its answer queued
        agent.apply(workflow.Action("back", "", agent.clock.now()))  # meanwhile the collector went back
        agent._pass()
        answers.append((agent.state.step, agent.state.error.zh if agent.state.error else ""))
        agent.apply(workflow.Action("confirm", "", agent.clock.now()))
    assert answers == [(Step.STOP, t("err.not_available").zh)] * 2 and saved(agent) == 0


def test_wrong_pins_lock_entry_with_a_message_and_one_alarm_per_lockout(
        kiosk: tuple[Agent, list[str], Clock]) -> None:
    agent, alarms, clock = kiosk
    at_the_nurse_screen(agent)
    assert typed(agent, "0000") == t("agent.wrong_pin").zh and alarms == []
    assert typed(agent, "1111") == LOCKED and alarms == ["alarm"]
    assert typed(agent, PIN) == LOCKED and typed(agent, "0000") == LOCKED  # unchecked while locked
    assert alarms == ["alarm"] and saved(agent) == 0 and agent.state.step is Step.CONFIRM
    assert (agent.pin_guard.failures, agent.pin_guard.lockouts) == (2, 1)
    clock.t += 15 * 60
    assert typed(agent, "0000") == t("agent.wrong_pin").zh
    # a second lockout, a second alarm; within a day of the first, it lasts twice as long
    assert typed(agent, "1111") == LOCKED.replace("15", "30") and alarms == ["alarm", "alarm"]
    clock.t += 30 * 60
    assert typed(agent, PIN) == ""  # after expiry the right PIN confirms: the handover is saved
    assert saved(agent) == 1 and agent.state.last_seq == 1 and step(agent) is Step.ROUND
    [(_id, _type, _seq, body)] = agent.ledger.bodies(["handover"])
    assert (body["from_party"]["person_id"], body["from_party"]["auth_method"]) == ("NUR-01", "pin")
