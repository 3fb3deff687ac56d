"""The agent's effect handler against a real ledger file: every failure to commit comes back to the
workflow as CommitFailed with its reason, nothing half-written, and the cart can go on.

The regression (issue 10): a body the wire contract cannot encode (a float) raised ``ContractError``
out of ``Ledger.commit``; the agent caught only ``StoreError``, so the workflow stayed in SAVING and
refused every event until the agent restarted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from edge import codes, keys, workflow
from edge.agent import Agent
from edge.clock import SystemClock
from edge.codes import Code
from edge.ledger.store import Committed, Ledger
from edge.workflow import Step, Weighed, Weight

ORG = "H1"


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
    machine = workflow.Machine(workflow.State(org=ORG, cart="CART-01"))
    yield Agent(machine, clock=SystemClock("ntp"), ledger=ledger, code_book=codes.CodeBook(ORG), pin_hashes={},
                org_name="", printer=None, devices=dict, online=lambda: False)
    ledger.close()


def handover(agent: Agent) -> None:
    now = agent.clock.now()
    for event in (workflow.Scanned(Code("S", ORG, "COL-1"), now), workflow.Scanned(Code("D", ORG, "D01"), now),
                  Weighed(Weight(800, True, protocol="toledo"), now), workflow.Scanned(Code("B", ORG, "B1", "I"), now),
                  Weighed(Weight(0, True), now), workflow.Scanned(Code("S", ORG, "NUR-1"), now)):
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
    agent.apply(workflow.Scanned(Code("S", ORG, "NUR-1"), agent.clock.now()))  # the nurse confirms again
    assert agent.state.step is Step.ROUND and agent.state.last_seq == 1 and ledger.head() == 1
