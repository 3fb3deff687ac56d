"""A real gateway with its console and a real cart that obeys it: the rig of the remote-command tests.

``CommandRig`` is ``ConsoleRig`` (real mosquitto, real SQLite, the console, users ops / view / root)
whose cart runs for real: its ledger (signed with the cart key the gateway trusts) holding a few
handovers, the agent with a printer on a ``SimPrinter`` and its config kept in the cart's folder,
and the uplink believing the gateway's key with the agent's ``reprint`` and ``config`` handlers —
wired as ``edge.app.EdgeApp`` wires them.  ``restart_cart`` starts a new process's worth of agent
and uplink on the same folder (a new boot), to see a config outlive a restart.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from edge import codes, remote, roster, wire, workflow
from edge.agent import Agent
from edge.clock import SystemClock
from edge.devices.printer import Printer
from edge.devices.printer.settings import PrinterSettings
from edge.ledger.settings import UplinkSettings
from edge.ledger.store import Ledger
from edge.ledger.uplink import Uplink
from sim_devices.platform import SimPlatform
from sim_devices.printer import SimPrinter
from tests.browser.console_fixtures import ConsoleRig, csrf_of, login
from tests.integration.test_gateway import SITE, WAIT_S, handover_body
from wastecart.broker import PrivateBroker

BAGS = 3  # handovers in the cart's ledger: bags BAG00001 .. BAG00003
ROSTER = roster.example()


class CommandRig(ConsoleRig):
    def __init__(self, tmp_path: Path, broker: PrivateBroker, platform: SimPlatform) -> None:
        super().__init__(tmp_path, broker, platform)
        self.broker_url = broker.url
        self.printer = SimPrinter(tmp_path / "printer").start()
        self.cart_dir = tmp_path / "cart"
        self.cart_dir.mkdir()
        self.ledger = Ledger(self.cart_dir, self.cart.cart, self.cart.key)
        for seq in range(1, BAGS + 1):
            self.ledger.commit("handover", handover_body(self.cart.cart, seq), now=datetime.now(UTC),
                               clock=wire.Clock("ntp", 0))
        self.offered: list[int] = []  # utc_ms of the time commands the cart took
        self.agent: Agent | None = None
        self.uplink: Uplink | None = None
        self.start_cart()

    def start_cart(self) -> None:
        """The agent and uplink as the app builds them; returns once the gateway knows this boot."""
        # the roster gives the reprinted label its 产生单位 (the organisation's name)
        machine = workflow.Machine(workflow.State(org=SITE, cart=self.cart.cart, roster=ROSTER))
        self.agent = Agent(machine, clock=SystemClock("ntp"), ledger=self.ledger, code_book=codes.CodeBook(SITE),
                           pin_hashes={}, printer=Printer(PrinterSettings(url=self.printer.tcp_url)),
                           devices=dict, online=lambda: True, overrides=self.cart_dir / remote.OVERRIDES_FILE)
        self.uplink = Uplink(self.ledger, site=SITE, broker=self.broker_url,
                             settings=UplinkSettings(gateway_keys=(self.app.public_key,)), on_time=self.offered.append)
        for name, handler in self.agent.remote_handlers().items():
            self.uplink.handle(name, handler)
        self.agent.start()
        self.uplink.start()
        boot = self.uplink.boot_id
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            device = self.app.store.device(self.cart.cart)
            if device is not None and device["boot_id"] == boot:
                return
            time.sleep(0.05)
        raise AssertionError(f"the gateway never saw boot {boot} of {self.cart.cart}")

    def stop_cart(self) -> None:
        if self.uplink is not None:
            self.uplink.stop()
            self.uplink = None
        if self.agent is not None:
            self.agent.stop()
            self.agent = None

    def restart_cart(self) -> None:
        self.stop_cart()
        self.start_cart()

    @property
    def limits(self) -> workflow.Limits:
        assert self.agent is not None
        return self.agent.state.limits

    def client(self, name: str) -> httpx.Client:
        """A logged-in console client of user ``name``."""
        c = httpx.Client(base_url=self.url, timeout=WAIT_S)
        assert login(c, name).status_code == 303
        return c

    def send(self, client: httpx.Client, name: str, **form: str) -> httpx.Response:
        """POST a command from the cart page as its script does (JSON answer, CSRF header)."""
        token = csrf_of(client.get(f"/carts/{self.cart.cart}").text)
        return client.post(f"/carts/{self.cart.cart}/commands/{name}", data=form,
                           headers={"X-CSRF-Token": token, "Accept": "application/json"})

    def answer(self, client: httpx.Client, counter: int) -> dict[str, Any]:
        """The command ``counter`` as the cart page lists it, once the cart has answered."""
        deadline = time.monotonic() + WAIT_S
        while True:
            listed = client.get(f"/api/carts/{self.cart.cart}/commands").json()
            row = next((c for c in listed["commands"] if c["counter"] == counter), None)
            if row is not None and row["outcome"] is not None:
                return dict(row)
            if time.monotonic() > deadline:
                raise AssertionError(f"no answer to command {counter}: {row}")
            time.sleep(0.05)

    def close(self) -> None:
        self.stop_cart()
        self.ledger.close()
        self.printer.stop()
        super().close()
