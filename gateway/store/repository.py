"""What the gateway's parts need of a store, as four narrow interfaces.

The ingest worker sees an ``IngestRepository``, the forwarder an ``Outbox``, the app and operators
``Queries``, the alert workers ``Alerting``, the console ``Audit`` and ``Actions``; ``GatewayRepository``
is all of them plus ``close``.
``SqliteStore`` is today's one implementation; a PostgreSQL one is meant to sit beside it and pass
the same tests.  Whatever the back-end, the contract of CONVENTIONS 6 holds: ``store_batch`` is ONE
transaction that is durable when it returns (ingest acks only then), ``mark_forwarding`` is durable
before the POST, and every failure is a ``GatewayStoreError``.

The CLI's ``gateway status`` reads through the back-end's read-only summary
(``gateway.store.read_summary`` for SQLite), which must never migrate or write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from gateway.store.actions import ActionResult, DeadState, QuarantineState
from gateway.store.history import Retention
from gateway.store.model import (
    BatchResult,
    Command,
    Condition,
    DeviceUpdate,
    FleetRow,
    Gap,
    Incoming,
    Outcome,
    Pending,
    QuarantineRow,
    Rejected,
)


class IngestRepository(Protocol):
    """The ingest transactions: one commit per batch, then the cart's high-water mark and gaps."""

    def store_batch(self, items: Sequence[Incoming | Rejected], now: float,
                    devices: Sequence[DeviceUpdate] = ()) -> BatchResult:
        """Store, de-duplicate or quarantine every item, raise alerts, note device state: ONE commit."""
        ...

    def upto_seq(self, cart: str) -> int:
        """Largest N such that seqs 1..N of ``cart`` are all stored (what the cart's ack says)."""
        ...

    def head(self, cart: str) -> tuple[int, str]:
        """(upto_seq, the stored hash of the cart's record at upto_seq; GENESIS_HASH for 0)."""
        ...

    def record_command(self, site: str, cart: str, name: str, args: Mapping[str, int | str | bool], now: float,
                       requested_by: str | None = None) -> Command | None:
        """The cart's next command counter taken and the command logged, in one transaction; None
        while no verified status named the cart's boot.  ``requested_by``: the operator (their audit
        row ``command.<name>`` in the same transaction); None: the gateway itself."""
        ...

    def open_gaps(self) -> list[Gap]:
        """Every cart with a gap still open."""
        ...


class Outbox(Protocol):
    """Forwarding state: stored -> forwarding -> accepted | dead (| stored again for a retry)."""

    def recover_forwarding(self, now: float) -> int:
        """Records left in 'forwarding' by a previous run are due again, outcome unknown."""
        ...

    def due_for_forwarding(self, now: float, limit: int) -> list[Pending]:
        """Verified, stored records whose next attempt is due, oldest due first."""
        ...

    def next_attempt_at(self) -> float | None:
        """When the earliest forwardable record becomes due (unix s), or None."""
        ...

    def mark_forwarding(self, record_id: str, now: float) -> int:
        """Durably note an attempt BEFORE the request; returns its number."""
        ...

    def mark_accepted(self, record_id: str, now: float) -> None: ...

    def mark_retry(self, record_id: str, error: str, next_attempt_at: float, *, unknown: bool = False) -> None:
        """Back to 'stored' for a later attempt; ``unknown``: the platform may have it already."""
        ...

    def mark_dead(self, record_id: str, reason: str) -> None: ...


class Queries(Protocol):
    """What operators, the app's ``stats()`` and the tests read."""

    def counts(self) -> dict[str, int]: ...

    def quarantined(self, limit: int = 100) -> list[QuarantineRow]: ...

    def quarantine_row(self, quarantine_id: int) -> QuarantineRow | None: ...

    def release(self, quarantine_id: int, rec: Incoming, now: float) -> Outcome:
        """Store a quarantined record that passes its checks now; the row is marked released."""
        ...

    def cmd_results(self, limit: int = 100) -> list[dict[str, Any]]: ...

    def cart_commands(self, cart: str, limit: int = 50) -> list[dict[str, Any]]:
        """The cart's commands, newest first, each with the cart's answer (outcome None: none yet)."""
        ...

    def alerts(self, limit: int = 100, cart: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        """Newest first; ``state``: active | open | acknowledged | resolved."""
        ...

    def alert(self, alert_id: int) -> dict[str, Any] | None: ...

    def acknowledge_alert(self, alert_id: int, who: str, note: str, now: float) -> bool:
        """Who saw it, when, a note; resolves an event alert, a condition stays until it clears."""
        ...

    def telemetry_series(self, cart: str, since: float, until: float, max_points: int = 500) -> list[dict[str, Any]]:
        """The cart's telemetry history in [since, until], at most ``max_points`` points."""
        ...

    def chain_state(self, record_id: str) -> str | None: ...

    def device(self, cart: str) -> dict[str, Any] | None: ...

    def record_state(self, record_id: str) -> dict[str, Any] | None: ...

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]: ...


class Alerting(Protocol):
    """What the alert workers need (``gateway.alerts``): the fleet's state, one transaction per rules
    pass, the webhook's queue, and the history's upkeep."""

    def fleet_state(self) -> list[FleetRow]: ...

    def apply_conditions(self, holding: Iterable[Condition], now: float) -> list[tuple[str, int]]:
        """Open, refresh and resolve condition alerts in ONE transaction; the changes (event, id)."""
        ...

    def enable_webhook(self, queue_max: int) -> None:
        """Queue every alert change for the webhook from now on (bounded)."""
        ...

    def webhook_head(self) -> tuple[int, str, int, float] | None:
        """The oldest queued notification: (id, JSON body, attempts, next attempt at)."""
        ...

    def webhook_sent(self, item_id: int) -> None: ...

    def webhook_retry(self, item_id: int, error: str, next_attempt_at: float) -> None: ...

    def history_maintenance(self, now: float, keep: Retention) -> int:
        """One bounded step of rollup and retention; the rows consumed (0: nothing left to do)."""
        ...


class Audit(Protocol):
    """The operators' audit log (``gateway.store.audit``): appended in the transaction of each change."""

    def append_audit(self, user: str, action: str, target: str, reason: str = "",
                     detail: Mapping[str, Any] | str = "", now: float | None = None) -> int: ...

    def audit_entries(self, limit: int = 100, before_id: int | None = None) -> list[dict[str, Any]]: ...

    def verify_audit(self) -> tuple[int, int | None]: ...


class Actions(Protocol):
    """Operators' actions on quarantine and dead letters (``gateway.store.actions``): each ONE transaction
    with its audit row; a refusal changes nothing and writes none."""

    def release_quarantined(self, quarantine_id: int, rec: Incoming, now: float, user: str) -> Outcome: ...

    def discard_quarantined(self, quarantine_id: int, user: str, reason: str, now: float) -> ActionResult: ...

    def retry_dead(self, record_id: str, user: str, now: float) -> ActionResult: ...

    def discard_dead(self, record_id: str, user: str, reason: str, now: float) -> ActionResult: ...

    def audited(self, user: str, action: str, target: str, reason: str, detail: Mapping[str, Any],
                now: float, change: Callable[[], None]) -> int: ...

    def quarantine_list(self, state: QuarantineState | None = None, kind: str | None = None,
                        cart: str | None = None, limit: int = 50,
                        before_id: int | None = None) -> list[dict[str, Any]]: ...

    def quarantine_item(self, quarantine_id: int) -> dict[str, Any] | None: ...

    def dead_list(self, state: DeadState | None = "waiting", limit: int = 50,
                  before: int | None = None) -> list[dict[str, Any]]: ...


class GatewayRepository(IngestRepository, Outbox, Queries, Alerting, Audit, Actions, Protocol):
    """One gateway's store, as the composition root holds it."""

    def close(self) -> None: ...
