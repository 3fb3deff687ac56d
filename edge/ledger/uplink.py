"""Ledger → MQTT: publish unsynced records at QoS 1 and mark them synced on the gateway's ack.

The I/O room: the paho client (``edge.mqtt.Link``: persistent session, the in-flight window, the
retained ``offline`` status as its will), publishing, and the inbox of acks and commands.  What
to publish and when is decided by ``edge.ledger.drain`` (pure, its own tests); this module carries
it out on one drain thread (an ``edge.worker.Worker``).  paho's network thread only hands acks,
commands and connection changes over (callbacks never raise, never touch the ledger).

Nothing that arrives is believed unless a gateway key signed it (``wire.open_message``), and a
signed ack, reject or command only as far as ``edge.ledger.trust`` finds it is for this ledger and
this boot.  Everything else changes nothing: it is counted (``refused`` in status and telemetry)
and logged at most once per kind per ``LOG_EVERY_S``.  Every command is answered on
``…/cmd_result``: ``resend`` and ``time`` here; the others by the handler the app registered
(``handle``: the agent's ``reprint`` and ``config``), which may answer later from its own thread
(the answer is handed to the drain thread, which signs and publishes it).  What the cart sends
besides records (status, its will, telemetry, command results) it signs with its own key.

Reading the next batch, publishing, and applying acks overlap: the drain never waits for an ack
before publishing more while the unacked budget allows.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt

from edge import wire
from edge.errors import StoreError, UplinkError
from edge.ledger import trust
from edge.ledger.drain import Drain, Restart
from edge.ledger.settings import UplinkSettings
from edge.ledger.store import Ledger
from edge.mqtt import Link
from edge.tls import TlsError
from edge.worker import Worker

log = logging.getLogger(__name__)

# Why a (genuinely signed) reject changed nothing: it must name this cart's own, unsynced bytes.
_NOT_APPLIED = {"unknown": "not in this ledger", "synced": "already stored by the gateway",
                "other_bytes": "the gateway refused bytes this cart never published (someone else's copy)"}

BATCH = 500  # records read from the ledger per publish pass: amortises the query, bounds latency
STOP_JOIN_S = 10.0  # s stop() waits for the drain thread (a pass is short: one batch at most)
RETRY_S = 1.0  # s before the next pass after a failed one (e.g. disk full while recording an ack)
INBOX_MAX = 1000  # messages from the broker waiting for the drain thread; beyond: dropped, counted
LOG_EVERY_S = 10.0  # s: at most one log line per kind of refused message (a flood is one line)
ANSWER_RATE, ANSWER_BURST = 1.0, 10.0  # refused commands answered: 10 at once, then 1/s (no echo flood)
OLDEST_MAX_S = 3_153_600_000  # telemetry's bound for oldest_unsent_s (a century)

Reply = Callable[[trust.CmdAnswer], None]
# A command's handler: its checked arguments and where to send its answer (once, from any thread).
Handler = Callable[[Mapping[str, Any], Reply], None]


class Uplink:
    """One cart's connection to the broker: drains the ledger, applies acks, obeys commands."""

    def __init__(
        self, ledger: Ledger, *, site: str, broker: str, settings: UplinkSettings | None = None,
        status: Callable[[], dict[str, Any]] = dict, on_time: Callable[[int], None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    ) -> None:
        self.ledger, self.site, self.cart = ledger, site, ledger.cart
        self.cfg = settings or UplinkSettings()
        self.gateway_keys = self.cfg.public_keys()
        if not self.gateway_keys:
            raise UplinkError("uplink.no_gateway_key")
        self.retention = timedelta(days=self.cfg.retention_days)
        self.status, self.on_time, self.now = status, on_time, now
        self.boot_id = wire.uuid7()  # in the birth message; a command must name it
        self.refused = dict.fromkeys(trust.REFUSED_KINDS, 0)  # drain thread only
        self._dropped = dict.fromkeys(trust.REFUSED_KINDS, 0)  # paho thread only: inbox full or oversized
        self._last_counter = 0  # the last command counter run this boot
        self._log_throttle = trust.Throttle(LOG_EVERY_S)
        self._answers = trust.Bucket(ANSWER_RATE, ANSWER_BURST)
        self.handlers: dict[str, Handler] = {}  # reprint, config: registered by the app (``handle``)
        # answers of handlers, from their threads, for the drain thread to sign and publish
        self._later: queue.Queue[tuple[str, dict[str, Any], trust.CmdAnswer]] = queue.Queue()
        try:
            self.link = Link(broker, f"wc-cart-{self.cart}", window=self.cfg.window, tls=self.cfg.tls)
        except wire.ContractError as exc:
            raise UplinkError("uplink.bad_broker", reason=str(exc)) from exc
        except TlsError as exc:
            raise UplinkError("uplink.tls", reason=str(exc)) from exc
        self.host, self.port = self.link.host, self.link.port
        self.client = self.link.client
        self.connected = threading.Event()
        self.acked = 0  # records marked synced by this process
        self.early_acks = 0  # acks of a previous run of this ledger, left for the re-sent records' acks
        self.published = 0  # publish() calls for records (re-sends included); drain thread only
        self.sent_other = 0  # QoS 1 publishes of status and command results; drain thread only
        self.pubacked = 0  # PUBACKs received; paho thread only
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue(INBOX_MAX)  # (topic leaf, payload) from paho
        self._synced = threading.Condition()  # notified whenever acks mark records synced
        self._generation = 0  # bumped by every (re)connect
        self._report = threading.Event()  # set by report_soon(): telemetry due on the next connected pass
        self._drain = Drain(self.cfg, time.monotonic())
        self._worker = Worker("uplink", self._pass, join_s=STOP_JOIN_S, retry_s=RETRY_S)
        self._set_will()
        self.client.on_pre_connect = self._on_pre_connect
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    def _topic(self, leaf: str) -> str:
        return wire.topic(self.site, self.cart, leaf)

    def refused_counts(self) -> dict[str, int]:
        """What this process refused, by kind: ack, reject, cmd (status, telemetry)."""
        return trust.refused_counts(self.refused, self._dropped)

    def _status_payload(self, state: str) -> bytes:
        """The signed retained status: ``online`` (birth, with the devices) or ``offline`` (the will)."""
        body = {"state": state, "boot_id": self.boot_id, "seq_head": self.ledger.head(),
                "refused": self.refused_counts(), "rejected": self.ledger.rejected_count()}
        return self._sign(wire.STATUS_KIND, body, self.status() if state == "online" else {})

    def _sign(self, kind: str, body: dict[str, Any], devices: dict[str, Any]) -> bytes:
        """``body`` with the devices' states, signed with the cart's key; a device state outside the
        contract (a bug) is logged and left out rather than stopping the uplink."""
        try:
            return self.ledger.sign(kind, self.site, {**devices, **body})
        except wire.ContractError as exc:
            if not devices:
                raise
            log.error("%s sent without the device states: %s", kind, exc)
            return self.ledger.sign(kind, self.site, body)

    def _set_will(self) -> None:
        self.client.will_set(self._topic(wire.STATUS), self._status_payload("offline"), qos=1, retain=True)

    # paho callbacks: hand over only -------------------------------------------------------

    def _on_pre_connect(self, _c: mqtt.Client, _u: Any) -> None:
        """Before each (re)connect: the will, signed now (same boot_id, the head as it is now)."""
        try:
            self._set_will()
        except wire.ContractError as exc:  # a device state outside the contract: keep the last will
            log.error("could not sign the will: %s", exc)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:  # logged by the link, once per cause, with the identity it refused
            return
        client.subscribe([(self._topic(wire.ACK), 1), (self._topic(f"{wire.CMD}/#"), 1)])
        self._generation += 1  # the drain sees it: birth message, then re-send from the first unsynced
        self.connected.set()
        self._worker.wake()
        log.info("connected to %s:%s", self.host, self.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not self.connected.is_set():  # an attempt that failed: the link said why, once
            return
        self.connected.clear()
        (log.info if self._worker.stopping else log.warning)("disconnected from broker: %s", rc)

    def _on_publish(self, *_: Any) -> None:
        self.pubacked += 1
        if self._drain.refill_due(self._awaiting_puback()):  # half the window free: refill it
            self._worker.wake()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        leaf = msg.topic.removeprefix(self._topic(""))
        try:
            if len(msg.payload) > wire.MESSAGE_MAX:
                raise queue.Full
            self._inbox.put_nowait((leaf, bytes(msg.payload)))
        except queue.Full:  # a flood or an oversized message: never queued, only counted
            kind = "ack" if leaf == wire.ACK else "cmd"
            self._dropped[kind] += 1
            return
        self._worker.wake()

    # lifecycle ----------------------------------------------------------------------------

    def handle(self, name: str, handler: Handler) -> None:
        """Run ``handler`` for genuine commands ``name`` (before ``start``)."""
        self.handlers[name] = handler

    def start(self) -> None:
        self.link.start()
        self._worker.start()

    def wake(self) -> None:
        """Call after a commit: the drain publishes without waiting for its timer."""
        self._worker.wake()

    def report_soon(self) -> None:
        """Something the gateway should hear of now (a PIN lockout): telemetry on the next pass
        instead of at its period (or as soon as the link is up).  Any thread may call it."""
        self._report.set()
        self._worker.wake()

    def wait_synced(self, timeout: float, backlog: int = 0) -> bool:
        """Block until at most ``backlog`` records are unsynced (or the timeout passes)."""
        with self._synced:
            return self._synced.wait_for(lambda: self.ledger.unsynced_count() <= backlog, timeout=timeout)

    def stop(self) -> None:
        self._worker.stop()
        if self.connected.is_set():
            self.client.publish(self._topic(wire.STATUS), self._status_payload("offline"), qos=1, retain=True)
        self.link.stop()

    # the drain: one pass per wake or timer ----------------------------------------------------

    def _pass(self) -> float:
        """Apply what arrived, then publish what the drain policy allows; returns the wait."""
        d = self._drain
        try:
            self._handle_inbox()
            if not self.connected.is_set():
                return d.wait(False)
            restart = d.check(self._generation, time.monotonic(), self.ledger.unsynced_count())
            if restart is Restart.CONNECTED:
                self.pubacked = self.published + self.sent_other  # a new connection: nothing waits for a PUBACK
                self.client.publish(self._topic(wire.STATUS), self._status_payload("online"), qos=1, retain=True)
                self.sent_other += 1
            elif restart is Restart.STALLED:
                log.warning("no ack for %.0f s: re-sending from the first unsynced record", self.cfg.resend_after_s)
            paced = self._publish()
            if self._report.is_set():
                self._report.clear()
                d.telemetry_now(time.monotonic())
            if d.telemetry_due(time.monotonic()):
                self._telemetry()
            if d.maintenance_due(time.monotonic()):
                purged = self.ledger.purge_synced(self.now() - self.retention)
                if purged:
                    log.info("purged %d synced records older than %s", purged, self.retention)
        except StoreError as exc:  # e.g. disk full while recording an ack: retry, lose nothing
            log.error("uplink: %s; retrying", exc)
            return RETRY_S
        return d.wait(paced)

    def _handle_inbox(self) -> None:
        while True:
            try:
                name, body, answer = self._later.get_nowait()
            except queue.Empty:
                break
            self._answer(name, body, "done" if answer.done else "refused", answer.reason)
        while True:
            try:
                leaf, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            if leaf == wire.ACK:
                self._on_ack_topic(payload)
            elif leaf.startswith(f"{wire.CMD}/"):
                self._on_command(leaf.removeprefix(f"{wire.CMD}/"), payload)

    def _open(self, payload: bytes, kinds: tuple[str, ...]) -> tuple[str, dict[str, Any]] | str:
        """A message signed by a gateway key for this cart, or why not (refused, counted, logged)."""
        try:
            return wire.open_message(payload, kinds=kinds, site=self.site, cart=self.cart, keys=self.gateway_keys)
        except wire.ContractError as exc:
            try:
                claimed: dict[str, Any] | None = wire.peek_message(payload)
            except wire.ContractError:
                claimed = None
            self._refuse(trust.claimed_kind(claimed, kinds[0], kinds), str(exc))
            return str(exc)

    def _refuse(self, kind: str, reason: str) -> None:
        self.refused[kind] += 1
        held = self._log_throttle.allow(kind, time.monotonic())
        if held is not None:
            log.warning("refused a gateway %s: %s%s", kind, reason[:300],
                        f" (and {held} more since the last such line)" if held else "")

    def _on_ack_topic(self, payload: bytes) -> None:
        opened = self._open(payload, (wire.ACK_KIND, wire.REJECT_KIND))
        if isinstance(opened, str):
            return
        kind, body = opened
        if kind == wire.ACK_KIND:
            self._apply_ack(body)
        else:
            self._apply_reject(body)
        with self._synced:
            self._synced.notify_all()

    def _apply_ack(self, body: dict[str, Any]) -> None:
        high = max(self._drain.published_high, self.ledger.synced_high())
        upto = int(body["upto_seq"])
        decision = trust.decide_ack(body, own_hash=self.ledger.hash_at(upto) if upto <= self.ledger.head() else None,
                                    high_water=high, id_seqs=self.ledger.seqs_of(body["ids"]) if body["ids"] else {})
        if decision.refused:
            self._refuse(wire.ACK_KIND, decision.refused)
            return
        if decision.early:  # an ack of a previous run: no progress (the stall timer keeps running)
            self.early_acks += 1
            if self._log_throttle.allow("early_ack", time.monotonic()) is not None:
                log.info("an ack up to seq %d from before this start (this run has published up to %d): "
                         "those records go out again and are acknowledged again", upto, high)
            return
        if decision.upto or decision.ids:
            self.acked += self.ledger.mark_synced(decision.upto, decision.ids, self.now())
        self._drain.acked(decision.upto, list(decision.ids), time.monotonic())

    def _apply_reject(self, body: dict[str, Any]) -> None:
        rid, seq = str(body["id"]), int(body["seq"])
        outcome = self.ledger.mark_rejected(rid, seq, body["payload_sha256"], body["reason"], body["detail"],
                                            self.now())
        if outcome in _NOT_APPLIED:
            self._refuse(wire.REJECT_KIND, f"record {rid} at seq {seq}: {_NOT_APPLIED[outcome]}")
            return
        if outcome == "marked":
            log.error("the gateway rejected record seq %d (%s): %s %s; it will not be sent again "
                      "(see `wastecart edge ledger`)", seq, rid, body["reason"], body["detail"][:200])
        self._drain.rejected(seq, time.monotonic())

    def _on_command(self, name: str, payload: bytes) -> None:
        opened = self._open(payload, (wire.CMD_KIND,))
        if isinstance(opened, str):
            self._answer(name, None, "refused", opened)
            return
        body = opened[1]
        decision = trust.decide_command(name, body, boot_id=self.boot_id, last_counter=self._last_counter,
                                        head=self.ledger.head())
        if decision.counts:
            self._last_counter = int(body["counter"])
        if not decision.run:
            self._refuse(wire.CMD_KIND, f"{name[:32]}: {decision.reason}")
            self._answer(name, body, "refused", decision.reason)
            return
        args = decision.args
        if name == wire.CMD_RESEND:
            log.warning("gateway asked to re-send from seq %d", args["from_seq"])
            self._drain.resend_from(int(args["from_seq"]), time.monotonic())
        elif name == wire.CMD_TIME:
            if self.on_time is None:
                self._answer(name, body, "refused", "this cart sets no clock from the gateway")
                return
            self.on_time(int(args["utc_ms"]))
        else:
            self._run_handler(name, body, args)
            return
        self._answer(name, body, "done")

    def _run_handler(self, name: str, body: dict[str, Any], args: Mapping[str, Any]) -> None:
        """A registered handler; its answer comes back through ``_later`` (maybe from another thread)."""
        handler = self.handlers.get(name)
        if handler is None:
            self._answer(name, body, "refused", f"this cart does not carry out {name} commands")
            return
        log.warning("gateway asked for %s %s", name, dict(args))

        def reply(answer: trust.CmdAnswer) -> None:
            self._later.put((name, body, answer))
            self._worker.wake()

        try:
            handler(args, reply)
        except Exception as exc:  # a bug in a handler must not stop the drain; the gateway hears of it
            log.exception("%s command failed", name)
            self._answer(name, body, "refused", f"{name} failed on the cart: {type(exc).__name__}")

    def _answer(self, name: str, body: dict[str, Any] | None, outcome: str, reason: str = "") -> None:
        """The signed ``cmd_result``; refusals at most ``ANSWER_RATE``/s (a flood gets no echo)."""
        if outcome != "done" and not self._answers.take(time.monotonic()):
            return
        boot_id, counter = (str(body["boot_id"]), int(body["counter"])) if body else (self.boot_id, 0)
        payload = self.ledger.sign(wire.CMD_RESULT_KIND, self.site,
                                   wire.cmd_result_body(name, boot_id, counter, outcome, reason))
        self.client.publish(self._topic(wire.CMD_RESULT), payload, qos=wire.QOS[wire.CMD_RESULT])
        self.sent_other += 1

    def _awaiting_puback(self) -> int:
        return self.published + self.sent_other - self.pubacked

    def _publish(self) -> bool:
        """Publish what the drain allows; True if the pacing (not the backlog) stopped it."""
        d = self._drain
        allowance = d.allowance(self._awaiting_puback(), time.monotonic())
        left = allowance.records
        publish, topic, qos = self.client.publish, self._topic(wire.RECORD), wire.QOS[wire.RECORD]
        while left > 0:
            batch = self.ledger.unsynced(after_seq=d.published_upto, limit=min(left, BATCH))
            for rec in batch:
                info = publish(topic, rec.payload, qos=qos)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:  # not connected any more, or paho's queue is full
                    log.info("publish of seq %d deferred: %s", rec.seq, mqtt.error_string(info.rc))
                    return False
                d.sent(rec.seq, rec.id)
                self.published += 1
            if len(batch) < min(left, BATCH):  # the backlog is drained
                return False
            if self._worker.stopping:
                return False
            self._handle_inbox()  # apply acks that arrived meanwhile: overlap, not lock-step
            left = min(left - len(batch), d.budget(self._awaiting_puback()))
        return allowance.paced

    def _telemetry(self) -> None:
        backlog, oldest_ns = self.ledger.backlog()
        disk = shutil.disk_usage(self.ledger.path.parent)
        body = {
            "at": self.now().isoformat(timespec="seconds"), "backlog": backlog,
            "oldest_unsent_s": None if oldest_ns is None else min(OLDEST_MAX_S, max(0, (time.time_ns() - oldest_ns)
                                                                                   // 1_000_000_000)),
            "disk_free_mb": disk.free // 2**20, "boot_id": self.boot_id, "seq_head": self.ledger.head(),
            "refused": self.refused_counts(), "rejected": self.ledger.rejected_count(),
        }
        payload = self._sign(wire.TELEMETRY_KIND, body, self.status())
        self.client.publish(self._topic(wire.TELEMETRY), payload, qos=wire.QOS[wire.TELEMETRY])
