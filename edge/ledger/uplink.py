"""Ledger → MQTT: publish unsynced records at QoS 1 and mark them synced on the gateway's ack.

The I/O room: the paho client (``edge.mqtt.Link``: persistent session, the in-flight window, the
retained ``offline`` status as its will), publishing, and the inbox of acks and commands.  What
to publish and when is decided by ``edge.ledger.drain`` (pure, its own tests); this module carries
it out on one drain thread (an ``edge.worker.Worker``).  paho's network thread only hands acks,
commands and connection changes over (callbacks never raise, never touch the ledger).

Reading the next batch, publishing, and applying acks overlap: the drain never waits for an ack
before publishing more while the unacked budget allows.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt

from edge import wire
from edge.errors import StoreError, UplinkError
from edge.ledger.drain import Drain, Restart
from edge.ledger.settings import UplinkSettings
from edge.ledger.store import Ledger
from edge.mqtt import Link, Will
from edge.worker import Worker

log = logging.getLogger(__name__)

BATCH = 500  # records read from the ledger per publish pass: amortises the query, bounds latency
STOP_JOIN_S = 10.0  # s stop() waits for the drain thread (a pass is short: one batch at most)
RETRY_S = 1.0  # s before the next pass after a failed one (e.g. disk full while recording an ack)


class Uplink:
    """One cart's connection to the broker: drains the ledger, applies acks, obeys commands."""

    def __init__(
        self, ledger: Ledger, *, site: str, broker: str, settings: UplinkSettings | None = None,
        status: Callable[[], dict[str, Any]] = dict, on_time: Callable[[int], None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    ) -> None:
        self.ledger, self.site, self.cart = ledger, site, ledger.cart
        self.cfg = settings or UplinkSettings()
        self.retention = timedelta(days=self.cfg.retention_days)
        self.status, self.on_time, self.now = status, on_time, now
        self.boot_id = wire.uuid7()
        try:
            self.link = Link(broker, f"wc-cart-{self.cart}", window=self.cfg.window,
                             will=Will(self._topic(wire.STATUS), self._status_payload("offline")))
        except wire.ContractError as exc:
            raise UplinkError("uplink.bad_broker", reason=str(exc)) from exc
        self.host, self.port = self.link.host, self.link.port
        self.client = self.link.client
        self.connected = threading.Event()
        self.acked = 0  # records marked synced by this process
        self.published = 0  # publish() calls for records (re-sends included); drain thread only
        self.pubacked = 0  # PUBACKs received; paho thread only
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()  # (topic leaf, payload) from paho
        self._synced = threading.Condition()  # notified whenever acks mark records synced
        self._generation = 0  # bumped by every (re)connect
        self._drain = Drain(self.cfg, time.monotonic())
        self._worker = Worker("uplink", self._pass, join_s=STOP_JOIN_S, retry_s=RETRY_S)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    def _topic(self, leaf: str) -> str:
        return wire.topic(self.site, self.cart, leaf)

    def _status_payload(self, state: str) -> bytes:
        return json.dumps({"state": state, "boot_id": self.boot_id, "seq_head": self.ledger.head(),
                           **(self.status() if state == "online" else {})}).encode()

    # paho callbacks: hand over only -------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.warning("broker %s:%s refused the connection: %s", self.host, self.port, rc)
            return
        client.subscribe([(self._topic(wire.ACK), 1), (self._topic(f"{wire.CMD}/#"), 1)])
        self._generation += 1  # the drain sees it: birth message, then re-send from the first unsynced
        self.connected.set()
        self._worker.wake()
        log.info("connected to %s:%s", self.host, self.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connected.clear()
        (log.info if self._worker.stopping else log.warning)("disconnected from broker: %s", rc)

    def _on_publish(self, *_: Any) -> None:
        self.pubacked += 1
        if self._drain.refill_due(self.published - self.pubacked):  # half the window free: refill it
            self._worker.wake()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put((msg.topic.removeprefix(self._topic("")), bytes(msg.payload)))
        self._worker.wake()

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self.link.start()
        self._worker.start()

    def wake(self) -> None:
        """Call after a commit: the drain publishes without waiting for its timer."""
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
            restart = d.check(self._generation, time.monotonic())
            if restart is Restart.CONNECTED:
                self.pubacked = self.published  # a new connection: nothing of ours waits for a PUBACK
                self.client.publish(self._topic(wire.STATUS), self._status_payload("online"), qos=1, retain=True)
            elif restart is Restart.STALLED:
                log.warning("no ack for %.0f s: re-sending from the first unsynced record", self.cfg.resend_after_s)
            paced = self._publish()
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
                leaf, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                if leaf == wire.ACK:
                    self._apply_ack(*wire.decode_ack(payload))
                elif leaf == f"{wire.CMD}/{wire.CMD_RESEND}":
                    from_seq = wire.decode_resend(payload)
                    log.warning("gateway asked to re-send from seq %d", from_seq)
                    self._drain.resend_from(from_seq, time.monotonic())
                elif leaf == f"{wire.CMD}/{wire.CMD_TIME}":
                    if self.on_time:
                        self.on_time(wire.decode_time(payload))
                else:
                    log.warning("ignored a message on %s: unknown command", leaf)
            except wire.ContractError as exc:
                log.warning("ignored a malformed %s message: %s", leaf, exc)

    def _apply_ack(self, upto: int, ids: list[str]) -> None:
        self.acked += self.ledger.mark_synced(upto, ids, self.now())
        self._drain.acked(upto, ids, time.monotonic())
        with self._synced:
            self._synced.notify_all()

    def _publish(self) -> bool:
        """Publish what the drain allows; True if the pacing (not the backlog) stopped it."""
        d = self._drain
        allowance = d.allowance(self.published - self.pubacked, time.monotonic())
        left = allowance.records
        while left > 0:
            batch = self.ledger.unsynced(after_seq=d.published_upto, limit=min(left, BATCH))
            for rec in batch:
                info = self.client.publish(self._topic(wire.RECORD), rec.payload, qos=wire.QOS[wire.RECORD])
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
            left = min(left - len(batch), d.budget(self.published - self.pubacked))
        return allowance.paced

    def _telemetry(self) -> None:
        backlog, oldest_ns = self.ledger.backlog()
        disk = shutil.disk_usage(self.ledger.path.parent)
        payload = {
            "at": self.now().isoformat(timespec="seconds"), "backlog": backlog,
            "oldest_unsent_s": None if oldest_ns is None else round((time.time_ns() - oldest_ns) / 1e9, 1),
            "disk_free_mb": disk.free // 2**20, **self.status(),
        }
        self.client.publish(self._topic(wire.TELEMETRY), json.dumps(payload), qos=wire.QOS[wire.TELEMETRY])
