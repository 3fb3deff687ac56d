"""The fleet as the console shows it: one row per cart from the ``devices`` table, read-only.

``ConsoleDb`` is the console's own connection to the gateway's SQLite file (WAL: its reads never
wait for ingest's writes, and a slow page never holds ingest's lock).  It is ``SqliteUsers`` (the
logins) plus these reads.  A row takes the latest verified telemetry first, the status second;
today's handovers and kilograms come from the records (``gateway.console.records``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from gateway.console.records import HandoversToday, chain_status, recent_records
from gateway.store.users import SqliteUsers

FLEET_MAX = 20_000  # carts listed at most: a county's fleet is a few thousand; bounds the page and the stream
PERIPHERALS = ("scale", "camera", "printer", "actuator")

# since: online_since (migration 5) — when the online flag took its value; status_at for older rows
_FLEET_SQL = ("SELECT cart, site, online, COALESCE(online_since, status_at), last_seen, boot_id, status, telemetry,"
              " telemetry_at FROM devices ORDER BY site, cart LIMIT ?")


def fleet_row(cart: str, site: str, online: int | None, since: float | None, last_seen: float,
              boot_id: str | None, status: dict[str, Any], telemetry: dict[str, Any],
              telemetry_at: float | None, today: tuple[int, float] = (0, 0.0)) -> dict[str, Any]:
    """What the fleet table shows of one cart (JSON-ready; None where the cart said nothing)."""

    def latest(key: str) -> Any:
        return telemetry.get(key, status.get(key))

    return {
        "cart": cart, "site": site,
        "state": "unknown" if online is None else "online" if online else "offline",
        "since": since, "last_seen": last_seen, "boot": boot_id,
        "backlog": telemetry.get("backlog"), "oldest_unsent_s": telemetry.get("oldest_unsent_s"),
        "disk_free_mb": telemetry.get("disk_free_mb"), "telemetry_at": telemetry_at,
        "clock": latest("clock"), "clock_offset_ms": latest("clock_offset_ms"),
        **{name: latest(name) for name in PERIPHERALS},
        "handovers_today": today[0], "kg_today": today[1], "version": latest("version"),
    }


class ConsoleDb(SqliteUsers):
    """Users, and the fleet and cart reads of the console."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._today = HandoversToday()

    def fleet(self) -> list[dict[str, Any]]:
        """Every cart (at most FLEET_MAX), by site and cart, with today's handovers and kg."""
        with self._read("reading the fleet") as db:
            rows = db.execute(_FLEET_SQL, (FLEET_MAX,)).fetchall()
            today = self._today.read(db)
        return [fleet_row(cart, site, online, since, last_seen, boot, _obj(status), _obj(telemetry), tel_at,
                          today.get(cart, (0, 0.0)))
                for cart, site, online, since, last_seen, boot, status, telemetry, tel_at in rows]

    def chain(self, cart: str) -> dict[str, Any]:
        """The cart's chain status (``records.chain_status``)."""
        with self._read("reading a cart's chain") as db:
            return chain_status(db, cart)

    def recent(self, cart: str) -> list[dict[str, Any]]:
        """The cart's latest records, newest first (``records.recent_records``)."""
        with self._read("reading a cart's records") as db:
            return recent_records(db, cart)

    def fleet_mark(self) -> tuple[Any, ...]:
        """Changes whenever any cart's row does (every verified device message moves last_seen), a
        record is stored (today's handovers) or the local day turns: a cheap test before re-reading
        the whole fleet."""
        with self._read("reading the fleet's mark") as db:
            mark = tuple(db.execute("SELECT COUNT(*), MAX(last_seen), SUM(online), MAX(status_at), MAX(telemetry_at),"
                                    " (SELECT MAX(rowid) FROM records) FROM devices").fetchone())
        return (*mark, time.strftime("%Y-%m-%d"))


def _obj(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}
