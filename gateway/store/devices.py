"""Devices, boots, commands and their results: what the gateway believes about each cart.

Only verified messages get here (``gateway.ingest.checks.check_device``: signed by the cart's key,
every number within its bound).  Even then a status is believed only as far as it is consistent:
- a status or telemetry of an earlier boot of the cart (a ``boot_id`` seen before that is not the
  current one) is a replay: it changes nothing (REPLAYED alert, collapsed; ``status_stale``);
- a status whose ``seq_head`` is beyond the highest seq verified from that cart is flagged, not
  believed (``status_ahead`` counts it): ``devices.seq_head`` keeps what was verified,
  ``seq_head_claimed`` the claim.  No alert: a signed claim ahead of what arrived is what every
  cart with a backlog says when it reconnects; the records themselves prove or disprove it.
The will (``offline``, signed by the cart when it connected) is a status like any other.
``online_since`` is when the online flag took its current value; ``faulty_since`` (JSON) says since
when each peripheral has been reporting a fault (``gateway.alerts.catalogue.faulty``), so that the
rules (``[alerts].peripheral_faulty_min``) survive a gateway restart.  Every applied telemetry is
also appended to the history (``SqliteHistory``).

A telemetry whose ``pin_lockouts`` (PIN entry locked at the cart's kiosk, counted since its boot)
is above the previous telemetry's of the same boot — or above 0 in a boot's first telemetry —
raises PIN_LOCKOUT: someone may be guessing nurses' PINs at that cart.  Repeats collapse into the
open alert's count, like every alert.

Commands: ``record_command`` takes the cart's next counter (``command_counters``, persistent, so a
restarted gateway — or another one sharing the store — never reuses one) and logs the command in
the same transaction; no verified boot known, no command.  A command an operator asked for names
them (``requested_by``) and writes its audit row (``command.<name>``) in that transaction too.
``cart_commands`` lists a cart's commands with the cart's answer to each (joined by boot and counter).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from gateway.alerts.catalogue import PERIPHERALS, faulty
from gateway.store import audit
from gateway.store.connection import SqliteConnection, bump
from gateway.store.history import SqliteHistory
from gateway.store.model import Alert, BatchResult, Command, DeviceUpdate
from gateway.store.quarantine import SqliteQuarantine


class SqliteDevices(SqliteQuarantine, SqliteHistory, SqliteConnection):
    """Device state from verified messages; the command counter; command results."""

    def _device(self, db: sqlite3.Connection, update: DeviceUpdate, now: float, result: BatchResult) -> str:
        """Apply one verified device message; returns "applied" or why it changed nothing."""
        data = update.data
        if update.leaf == "cmd_result":
            db.execute("INSERT INTO cmd_results (cart, site, name, boot_id, counter, outcome, reason, received_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (update.cart, update.site, data["name"], data["boot_id"], data["counter"], data["outcome"],
                        data["reason"], now))
            return "applied"
        row = db.execute("SELECT boot_id, telemetry, online, faulty_since FROM devices WHERE cart = ?",
                         (update.cart,)).fetchone()
        current = row[0] if row else None
        boot = data.get("boot_id")
        if isinstance(boot, str) and boot != current and db.execute(
                "SELECT 1 FROM boots WHERE cart = ? AND boot_id = ?", (update.cart, boot)).fetchone():
            bump(db, "status_stale")
            self._alert(db, now, Alert("REPLAYED", update.cart, update.site, f"boot {boot}",
                                       f"{update.leaf} of an earlier boot {boot} (current {current}): ignored"),
                        result)
            return "stale"
        self._seen(db, update.cart, update.site, now)
        text = json.dumps(data, ensure_ascii=False)
        if update.leaf == "telemetry":
            self._pin_lockouts(db, update, json.loads(row[1]) if row and row[1] else None, now, result)
            since = _faulty_since(data, json.loads(row[3]) if row and row[3] else {}, now)
            db.execute("UPDATE devices SET telemetry = ?, telemetry_at = ?, faulty_since = ? WHERE cart = ?",
                       (text, now, json.dumps(since, sort_keys=True), update.cart))
            self._record_telemetry(db, update.cart, data, row[2] if row else None, now)
            return "applied"
        if isinstance(boot, str) and boot != current:
            db.execute("INSERT OR IGNORE INTO boots (cart, boot_id, first_seen) VALUES (?, ?, ?)",
                       (update.cart, boot, now))
        claimed = int(data["seq_head"])
        verified = self._max_seq(db, update.cart)
        head = claimed
        if claimed > verified:  # normal while a backlog drains: kept as the cart's claim, not as truth
            head = verified
            bump(db, "status_ahead")
        online = 1 if data["state"] == "online" else 0
        db.execute("UPDATE devices SET online_since = CASE WHEN online IS ? THEN COALESCE(online_since, ?) ELSE ? END,"
                   " online = ?, boot_id = ?, seq_head = ?, seq_head_claimed = ?, status = ?, status_at = ?"
                   " WHERE cart = ?", (online, now, now, online, boot, head, claimed, text, now, update.cart))
        return "applied"

    def _pin_lockouts(self, db: sqlite3.Connection, update: DeviceUpdate, previous: dict[str, Any] | None,
                      now: float, result: BatchResult) -> None:
        """PIN_LOCKOUT when the cart's kiosk locked PIN entry since its previous telemetry of this boot."""
        data = update.data
        lockouts = data.get("pin_lockouts")
        if not isinstance(lockouts, int) or lockouts <= 0:
            return
        boot = data.get("boot_id")
        before = 0
        if previous is not None and previous.get("boot_id") == boot:
            seen = previous.get("pin_lockouts")
            before = seen if isinstance(seen, int) else 0
        if lockouts <= before:
            return
        self._alert(db, now, Alert(
            "PIN_LOCKOUT", update.cart, update.site, f"kiosk PIN entry, boot {boot}",
            f"PIN entry locked at the kiosk {lockouts - before} more time(s): {lockouts} lockout(s) and "
            f"{data.get('pin_failures', '?')} wrong PIN(s) since boot {boot}"), result)

    @staticmethod
    def _max_seq(db: sqlite3.Connection, cart: str) -> int:
        row = db.execute("SELECT max_seq FROM carts WHERE cart = ?", (cart,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _seen(db: sqlite3.Connection, cart: str, site: str, now: float) -> None:
        db.execute("INSERT INTO devices (cart, site, last_seen) VALUES (?, ?, ?)"
                   " ON CONFLICT (cart) DO UPDATE SET site = excluded.site, last_seen = excluded.last_seen",
                   (cart, site, now))

    def record_command(self, site: str, cart: str, name: str, args: Mapping[str, int | str | bool], now: float,
                       requested_by: str | None = None) -> Command | None:
        """Take the cart's next command counter and log the command, in one transaction; None if no
        verified status named the cart's boot yet (a command must name it).  ``requested_by``: the
        operator who asked (None: the gateway itself); their audit row is written in the same transaction."""
        with self._tx("recording a command") as db:
            row = db.execute("SELECT boot_id FROM devices WHERE cart = ?", (cart,)).fetchone()
            if row is None or row[0] is None:
                return None
            boot_id = str(row[0])
            counter = int(db.execute(
                "INSERT INTO command_counters (cart, counter) VALUES (?, 1)"
                " ON CONFLICT (cart) DO UPDATE SET counter = counter + 1 RETURNING counter", (cart,)).fetchone()[0])
            db.execute("INSERT INTO commands (cart, site, name, boot_id, counter, args, sent_at, requested_by)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (cart, site, name, boot_id, counter, json.dumps(dict(args), sort_keys=True), now, requested_by))
            if requested_by is not None:
                audit.append(db, now, requested_by, f"command.{name}", f"cart {cart}",
                             detail={"site": site, "counter": counter, "boot_id": boot_id, "args": dict(args)})
        return Command(site, cart, name, boot_id, counter, dict(args))

    def cart_commands(self, cart: str, limit: int = 50) -> list[dict[str, Any]]:
        """The cart's commands, newest first: {counter, name, args (dict), sent_at, requested_by,
        boot_id, outcome, reason, answered_at}; outcome None while the cart has not answered."""
        with self._read("reading a cart's commands") as db:
            rows = db.execute(
                "SELECT c.counter, c.name, c.args, c.sent_at, c.requested_by, c.boot_id, r.outcome, r.reason,"
                " r.received_at FROM commands c LEFT JOIN cmd_results r ON r.id = (SELECT max(id) FROM cmd_results"
                " WHERE cart = c.cart AND counter = c.counter AND boot_id = c.boot_id)"
                " WHERE c.cart = ? ORDER BY c.counter DESC LIMIT ?", (cart, limit)).fetchall()
        return [{"counter": r[0], "name": r[1], "args": json.loads(r[2]), "sent_at": r[3], "requested_by": r[4],
                 "boot_id": r[5], "outcome": r[6], "reason": r[7], "answered_at": r[8]} for r in rows]

    def cmd_results(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first: {cart, site, name, boot_id, counter, outcome, reason, received_at}."""
        with self._read("reading command results") as db:
            cur = db.execute("SELECT cart, site, name, boot_id, counter, outcome, reason, received_at"
                             " FROM cmd_results ORDER BY id DESC LIMIT ?", (limit,))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _faulty_since(data: dict[str, Any], before: dict[str, Any], now: float) -> dict[str, float]:
    """Peripherals reporting a fault now, each with the time its fault was first seen (kept across
    telemetries while it lasts; forgotten when it clears)."""
    since: dict[str, float] = {}
    for name in PERIPHERALS:
        if faulty(data.get(name)):
            earlier = before.get(name)
            since[name] = float(earlier) if isinstance(earlier, int | float) else now
    return since
