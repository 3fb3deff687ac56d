"""A console rig for the quarantine / dead-letter / audit / key pages: ``ConsoleRig`` with a cart key
folder (``cart_keys_dir``, where the console enrolls keys) and a forwarder that gives up after two
attempts, so that a platform failing every request makes a dead letter in well under a second.

Shared by ``tests/integration/test_console_actions.py`` (httpx) and
``tests/browser/test_console_actions.py`` (Chromium).  Each helper uses a new cart, so tests that
share one rig (module scope) do not see each other's rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from gateway.config import ForwardConfig
from sim_devices.platform import SimPlatform
from tests.browser.console_fixtures import ConsoleRig, login
from tests.integration.test_gateway import WAIT_S, Cart, unique
from wastecart.broker import PrivateBroker

# fast retries (as tests.integration.test_gateway), and a dead letter after the second failed attempt
FORWARD = ForwardConfig(timeout_s=5, backoff_base_s=0.01, backoff_max_s=0.1, rate_per_s=1000, max_attempts=2)


class ActionRig(ConsoleRig):
    """``ConsoleRig`` + ``keys`` (the gateway's cart_keys_dir) + helpers that make quarantine rows and
    dead letters through the real broker, ingest and forwarder."""

    def __init__(self, tmp_path: Path, broker: PrivateBroker, platform: SimPlatform) -> None:
        self.keys = tmp_path / "keys"
        self.keys.mkdir(parents=True, exist_ok=True)
        super().__init__(tmp_path, broker, platform, gateway={"cart_keys_dir": self.keys, "forward": FORWARD})

    def until(self, what: str, check: Any) -> None:
        """Wait (on the app's change signal) until ``check()`` holds."""
        assert self.app.wait_until(lambda _: bool(check()), WAIT_S), f"never happened: {what}"

    def stranger(self) -> tuple[Cart, dict[str, Any], int]:
        """A genuine record of a cart whose key the gateway lacks: quarantined UNKNOWN_CART.
        (cart, its envelope, the quarantine row id)."""
        cart = Cart(unique("NEW"))
        env = cart.record(1)
        self.pub.publish(cart.cart, env)
        rows: list[dict[str, Any]] = []

        def found() -> bool:
            rows[:] = self.app.store.quarantine_list(None, cart=cart.cart)
            return bool(rows)

        self.until(f"{cart.cart} quarantined", found)
        assert rows[0]["kind"] == "UNKNOWN_CART", rows[0]
        return cart, env, int(rows[0]["id"])

    def dead(self) -> tuple[Cart, str]:
        """A record of a new (enrolled) cart that the platform refuses until it is dead-lettered; the
        platform is healthy again when this returns.  (cart, record id)."""
        cart = Cart(unique("DEAD"))
        (self.keys / f"{cart.cart}.pub").write_text(cart.public_key + "\n")
        env = cart.record(1)
        self.platform.error_rate = 1.0
        try:
            self.pub.publish(cart.cart, env)
            self.until(f"record {env['id']} dead", lambda: (self.app.store.record_state(env["id"]) or {}).get(
                "forward_state") == "dead")
        finally:
            self.platform.error_rate = 0.0
        return cart, str(env["id"])

    def accepted(self, record_id: str) -> None:
        """Until the platform holds ``record_id`` (and the gateway marked it accepted)."""
        self.until(f"record {record_id} accepted", lambda: (self.app.store.record_state(record_id) or {}).get(
            "forward_state") == "accepted")
        assert record_id in {item["id"] for item in self.platform.records()}

    def client(self, name: str) -> httpx.Client:
        """An httpx client logged in as ``name`` (close it)."""
        c = httpx.Client(base_url=self.url, timeout=WAIT_S)
        assert login(c, name).status_code == 303
        return c
