"""What the gateway says to carts after a commit: acks, rejects and commands, each SIGNED with its key.

- **ack** (``…/ack``): ``wire.ack_body(upto_seq, upto_hash, ids)`` per cart, ``upto_hash`` the
  stored hash of the cart's record at ``upto_seq`` (``BatchResult.heads``), so an ack binds to the
  cart's own ledger; ids in chunks of ``ACK_IDS_MAX`` (the schema's bound).
- **reject** (``…/ack``): ``wire.reject_body(id, seq, reason, detail, payload_sha256)`` (of the
  bytes refused) for a quarantined record the cart can act on (``Outcome.reject``: known cart, id
  and seq readable, FORGED / ALTERED / MALFORMED / SCHEMA, and its id not stored here from a
  genuine copy).
- **command** (``…/cmd/{name}``): ``wire.command_body(name, boot_id, counter, args)``; the store
  takes the counter and logs the command in one transaction (``record_command``) and knows the
  cart's boot from its last verified status: no boot known, no command.  An operator's command
  (``operator_command``, from the console) is logged with who asked and its audit row, in that
  same transaction.

Publishing never blocks: paho queues it (QoS 1) and the cart re-publishes what stays unacked.

Benchmark only: ``key=None`` sends the same messages with an empty ``sig`` and no schema check of
the body (``WASTECART_BENCH_UNSIGNED_ACKS``, see ``gateway.app``): a cart refuses every one of them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from gateway.store import BatchResult, DeviceUpdate, Gap, Incoming, IngestRepository, Rejected

log = logging.getLogger(__name__)

ACK_IDS_MAX = 1_000  # ids in one ack (messages.schema.json body_ack.ids maxItems)
REJECT_LOG_EVERY = 1_000  # after the first few, one log line per this many rejects sent


class ResendPacer:
    """At most one resend request per cart every ``interval_s``: the cart restarts its drain from
    the asked seq, so asking again while it is still re-sending would only multiply duplicates."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}

    def allow(self, cart: str) -> bool:
        """True (and remember it) if ``cart`` may be asked now."""
        now = self._clock()
        last = self._last.get(cart)
        if last is not None and now - last < self._interval:
            return False
        self._last[cart] = now
        return True


class Replies:
    """Signs and publishes acks, rejects and commands; counts what it sent and what failed."""

    def __init__(self, client: mqtt.Client, store: IngestRepository, key: Ed25519PrivateKey | None,
                 pacer: ResendPacer, counters: dict[str, int]) -> None:
        self._client = client
        self._store = store
        self._key = key
        self._pacer = pacer
        self._counters = counters
        for name in ("acks_published", "ack_failures", "rejects_sent", "reject_failures", "resends_sent",
                     "time_offers", "cmd_failures", "cmd_no_boot"):
            counters.setdefault(name, 0)

    # ---------------------------------------------------------------- after a commit

    def after_commit(self, items: Sequence[Incoming | Rejected], result: BatchResult,
                     devices: Sequence[DeviceUpdate]) -> None:
        """Acks per cart, rejects, a resend for each cart with a gap, a time offer per birth."""
        self._acks(items, result)
        self._rejects(items, result)
        for gap in result.gaps:
            self.ask_resend(gap)
        for update, verdict in zip(devices, result.devices, strict=True):
            # a cart that came online may have booted without NTP or RTC: give it our clock
            born = update.leaf == "status" and verdict == "applied" and update.data.get("state") == "online"
            if born and self.command(update.site, update.cart, wire.CMD_TIME,
                                     {"utc_ms": time.time_ns() // 1_000_000}) is not None:
                self._counters["time_offers"] += 1

    def _acks(self, items: Sequence[Incoming | Rejected], result: BatchResult) -> None:
        acked: dict[tuple[str, str], list[str]] = {}
        for item, outcome in zip(items, result.outcomes, strict=True):
            if isinstance(item, Incoming) and outcome.id is not None:
                ids = acked.setdefault((item.site, item.cart), [])
                if outcome.id not in ids:
                    ids.append(outcome.id)
        for (site, cart), ids in acked.items():
            upto, upto_hash = result.heads.get(cart) or self._store.head(cart)
            for start in range(0, len(ids), ACK_IDS_MAX):
                body = wire.ack_body(upto, upto_hash, ids[start:start + ACK_IDS_MAX])
                if self._send(wire.ACK_KIND, site, cart, wire.topic(site, cart, wire.ACK), body):
                    self._counters["acks_published"] += 1
                else:  # the cart re-publishes unacked records; they come back as duplicates and get acked
                    self._counters["ack_failures"] += 1

    def _rejects(self, items: Sequence[Incoming | Rejected], result: BatchResult) -> None:
        for item, outcome in zip(items, result.outcomes, strict=True):
            if not (isinstance(item, Rejected) and outcome.reject and item.site and item.cart and item.subject
                    and item.seq):
                continue
            # payload_sha256: the bytes refused, so a cart can tell a bad copy someone else published
            # under its record's id from its own record (it refuses a reject of bytes it never sent)
            body = wire.reject_body(item.subject, item.seq, outcome.reject, item.reason,
                                    hashlib.sha256(item.payload).hexdigest())
            if self._send(wire.REJECT_KIND, item.site, item.cart, wire.topic(item.site, item.cart, wire.ACK), body):
                self._counters["rejects_sent"] += 1
                n = self._counters["rejects_sent"]
                if n <= 10 or n % REJECT_LOG_EVERY == 0:
                    log.info("ingest: told cart %s record %s (seq %d) is rejected: %s (%d rejects sent)",
                             item.cart, item.subject, item.seq, outcome.reject, n)
            else:
                self._counters["reject_failures"] += 1

    # ---------------------------------------------------------------- commands

    def ask_resend(self, gap: Gap) -> None:
        if not self._pacer.allow(gap.cart):
            return
        log.info("ingest: cart %s has seqs up to %d of %d: asking to re-send from %d",
                 gap.cart, gap.upto_seq, gap.max_seq, gap.from_seq)
        if self.command(gap.site, gap.cart, wire.CMD_RESEND, {"from_seq": gap.from_seq}) is not None:
            self._counters["resends_sent"] += 1

    def command(self, site: str, cart: str, name: str, args: Mapping[str, int | str],
                requested_by: str | None = None) -> int | None:
        """Log the command with the cart's next counter, sign it for its current boot, publish it;
        its counter, or None if no boot is known or it could not be sent."""
        cmd = self._store.record_command(site, cart, name, dict(args), time.time(), requested_by)
        if cmd is None:
            self._counters["cmd_no_boot"] += 1
            log.info("ingest: no %s command to %s/%s: no verified status has named its boot yet", name, site, cart)
            return None
        body = wire.command_body(cmd.name, cmd.boot_id, cmd.counter, cmd.args)
        if not self._send(wire.CMD_KIND, site, cart, wire.cmd_topic(site, cart, name), body):
            self._counters["cmd_failures"] += 1
            return None
        return cmd.counter

    def operator_command(self, site: str, cart: str, name: str, args: Mapping[str, Any],
                         requested_by: str) -> int | None:
        """A command an operator asked for in the console: its args are checked against the wire
        contract BEFORE it is logged (a command the cart would refuse unread is not sent, nor
        audited as sent); logged with ``requested_by`` and its audit row, signed, published."""
        if self._key is not None:
            body = wire.command_body(name, wire.uuid7(), 1, dict(args))
            errors = wire.validate_message_body(wire.CMD_KIND, body)
            if errors:
                log.warning("console: %s command to %s/%s by %s not sent: %s", name, site, cart, requested_by,
                            "; ".join(errors[:3]))
                return None
        counter = self.command(site, cart, name, args, requested_by)
        log.info("console: %s asked cart %s/%s to %s %s: %s", requested_by, site, cart, name, dict(args),
                 f"sent as command {counter}" if counter is not None else "not sent")
        return counter

    # ---------------------------------------------------------------- signing and publishing

    def _send(self, kind: str, site: str, cart: str, topic: str, body: Mapping[str, Any]) -> bool:
        try:
            payload = (wire.sign_message(kind, site, cart, body, self._key) if self._key is not None
                       else wire.canonical({"v": 1, "kind": kind, "site": site, "cart": cart, "body": dict(body),
                                            "sig": ""}))
        except wire.ContractError as exc:  # a bug: what we built is outside the contract
            log.error("ingest: %s to %s/%s not sent: %s", kind, site, cart, exc)
            return False
        info = self._client.publish(topic, payload, qos=wire.QOS[wire.ACK if kind != wire.CMD_KIND else wire.CMD])
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("ingest: %s to %s/%s not sent (%s)", kind, site, cart, mqtt.error_string(info.rc))
            return False
        return True
