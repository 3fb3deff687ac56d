"""A real gateway with its operator console on a free port, carts that sign their status, users.

Shared by ``tests/integration/test_console_http.py`` (httpx) and ``tests/browser/test_console.py``
(Chromium).  ``ConsoleRig`` is ``test_gateway_integrity.Rig`` (real mosquitto, real SQLite, a
signed cart) with ``console.port = 0``; users are added through the same ``SqliteUsers`` the CLI
uses, on their own connection.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from edge import wire
from gateway.config import IngestConfig
from gateway.console.auth import Passwords
from gateway.console.settings import ConsoleConfig, LoginLimits
from gateway.store import DB_NAME
from gateway.store.users import SqliteUsers
from sim_devices.platform import SimPlatform
from tests.integration.test_gateway import SITE, WAIT_S
from tests.integration.test_gateway_integrity import Rig
from wastecart.broker import PrivateBroker

PASSWORDS = {"ops": "operator-pass-1", "view": "viewer-pass-1", "root": "admin-pass-12"}
ROLES = {"ops": "operator", "view": "viewer", "root": "admin"}
# Fast tests: a name is locked after 3 wrong passwords, an address after 5, with no back-off before.
TEST_LIMITS = LoginLimits(free_failures=3, lockout_after=3, address_free_failures=5, address_lockout_after=5,
                          lockout_min=1.0)
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


class ConsoleRig(Rig):
    """``Rig`` + the console (``url``) + three users (ops, view, root); ``gateway``: more GatewayConfig
    fields (alerts, webhook, cart_keys_dir)."""

    def __init__(self, tmp_path: Path, broker: PrivateBroker, platform: SimPlatform,
                 gateway: dict[str, Any] | None = None, **console: Any) -> None:
        super().__init__(tmp_path, broker, platform,
                         ingest=IngestConfig(batch_max=50, linger_ms=5, resend_interval_s=5),
                         console=ConsoleConfig(port=0, login=TEST_LIMITS, **console), **(gateway or {}))
        assert self.app.console_url is not None
        self.url = self.app.console_url
        users = SqliteUsers(self.data / DB_NAME)
        hasher = Passwords()
        try:
            for name, password in PASSWORDS.items():
                assert users.add_user(name, ROLES[name], hasher.hash(password), time.time())
        finally:
            users.close()

    def users(self) -> SqliteUsers:
        return SqliteUsers(self.data / DB_NAME)

    def status(self, state: str = "online", boot_id: str | None = None, **extra: Any) -> str:
        """The cart's signed status (its birth, or with state="offline" its will); its boot id."""
        boot_id = boot_id or wire.uuid7()
        body = {"state": state, "boot_id": boot_id, "seq_head": 0, **extra}
        payload = wire.sign_message(wire.STATUS_KIND, SITE, self.cart.cart, body, self.cart.key)
        self.pub.client.publish(wire.topic(SITE, self.cart.cart, wire.STATUS), payload, qos=1).wait_for_publish(WAIT_S)
        return boot_id

    def telemetry(self, boot_id: str, **fields: Any) -> None:
        body = {"at": "2026-01-01T00:00:00Z", "boot_id": boot_id, "backlog": 0, "oldest_unsent_s": None,
                "disk_free_mb": 2048, **fields}
        payload = wire.sign_message(wire.TELEMETRY_KIND, SITE, self.cart.cart, body, self.cart.key)
        self.pub.client.publish(wire.topic(SITE, self.cart.cart, wire.TELEMETRY), payload,
                                qos=1).wait_for_publish(WAIT_S)


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def login(client: httpx.Client, name: str, password: str | None = None) -> httpx.Response:
    """GET /login (session + CSRF token), POST it; the POST's response (303 on success)."""
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"csrf": token, "user": name,
                                       "password": PASSWORDS[name] if password is None else password})


def seed_history(data: Path, cart: str, hours: float = 24.0, every_s: float = 600.0) -> int:
    """Raw telemetry rows of ``cart`` over the last ``hours``, written straight into the store's
    history table (as the bench does): a cart that has reported for a day, so the charts have a
    shape.  Backlog climbs and drains, disk falls, the clock drifts; returns the rows written."""
    now = time.time()
    rows = []
    for i in range(int(hours * 3600 / every_s)):
        at = now - hours * 3600 + i * every_s
        rows.append((cart, at, (i * 7) % 40, (i * 70) % 400, 4000 - i * 5, (i % 12) * 25 - 150, i % 9 == 0, 1))
    with sqlite3.connect(data / DB_NAME) as db:
        db.execute("PRAGMA busy_timeout = 10000")
        db.executemany("INSERT INTO telemetry_raw (cart, at, backlog, oldest_unsent_s, disk_free_mb, clock_offset_ms,"
                       " faults, online) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


class CartProcess:
    """``wastecart sim fleet --carts 1`` as a separate process: the real cart ledger and uplink (birth,
    telemetry, a handover every few seconds), killed with SIGKILL so that the broker sends its will.
    Started again on the same folder it is the same cart (same key), freshly booted."""

    CART = "FLEET-001"  # wastecart.fleet.fleet_cart_id(1)
    RECORDS = 1000  # handovers to commit: at RATE, far more than any test lasts, so the process stays up
    RATE = 0.5  # records/s: one handover every 2 s

    def __init__(self, folder: Path, broker_url: str, gateway_key: str, site: str) -> None:
        self.folder = folder
        self.keys = folder / "keys"  # the gateway's cart_keys_dir: the process writes FLEET-001.pub here
        self.keys.mkdir(parents=True, exist_ok=True)
        self.args = [sys.executable, "-m", "wastecart.cli", "sim", "fleet", "--broker", broker_url,
                     "--data", str(folder), "--carts", "1", "--records", str(self.RECORDS), "--rate", str(self.RATE),
                     "--org", site, "--gateway-key", gateway_key]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def kill(self) -> None:
        """SIGKILL: no clean disconnect, no offline status of its own; the broker publishes the will."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None
