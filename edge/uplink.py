"""Ledger → MQTT: publish unsynced records at QoS 1 and mark them synced on the gateway's ack.

One drain thread owns the decisions; paho's network thread only hands acks, commands and
connection changes over (callbacks never raise, never touch the ledger).  Two bounds keep memory
and paho's 16-bit message ids safe: ``window`` QoS 1 messages in flight to the broker (paho's own
window; 20–100 measured best) and ``max_unacked`` records published but not yet acknowledged by
the gateway.  Reading the next batch, publishing, and applying acks overlap: the drain never waits
for an ack before publishing more while the unacked budget allows.

After a reconnect, a ``resend`` command, or when acks stop coming for ``resend_after_s``, the drain
starts again from the first unsynced record (or the asked seq): the gateway de-duplicates, so
re-sending is always safe, and trusting a PUBACK is not (a broker killed with SIGKILL forgets).
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.errors import StoreError, UplinkError
from edge.store import Ledger

log = logging.getLogger(__name__)

BATCH = 500  # records read from the ledger per publish pass: amortises the query, bounds latency
MAINTENANCE_S = 3600.0  # how often synced records past retention are purged
PACE_TICK_S = 0.05  # a paced drain publishes in slices this far apart (s)


@dataclass(frozen=True)
class UplinkSettings:
    window: int = 100  # QoS 1 messages in flight to the broker (paho's window)
    max_unacked: int = 5000  # records published, not yet acknowledged by the gateway (< 65,535)
    resend_after_s: float = 30.0  # no ack progress for this long: re-send from the first unsynced
    drain_rate: float = 500.0  # records/s when draining a backlog (0 = as fast as acks allow)
    telemetry_s: float = 10.0
    retention: timedelta | None = None  # purge synced records older than this (None: keep all)


class Uplink:
    def __init__(
        self, ledger: Ledger, *, site: str, broker: str, settings: UplinkSettings | None = None,
        status: Callable[[], dict[str, Any]] = dict, on_time: Callable[[int], None] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    ) -> None:
        try:
            self.host, self.port, tls = wire.broker_address(broker)
        except wire.ContractError as exc:
            raise UplinkError(str(exc)) from exc
        self.ledger, self.site, self.cart = ledger, site, ledger.cart
        self.cfg = settings or UplinkSettings()
        self.status, self.on_time, self.now = status, on_time, now
        self.boot_id = wire.uuid7()
        self.connected = threading.Event()
        self.acked = 0  # records marked synced by this process
        self.published = 0  # publish() calls for records (re-sends included); drain thread only
        self.pubacked = 0  # PUBACKs received; paho thread only
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()  # (topic leaf, payload) from paho
        self._synced = threading.Condition()  # notified whenever acks mark records synced
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._generation = 0  # bumped by every (re)connect
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"wc-cart-{self.cart}",
                                  clean_session=False, protocol=mqtt.MQTTv311)
        if tls:
            self.client.tls_set()
        self.client.max_inflight_messages_set(self.cfg.window)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.will_set(self._topic(wire.STATUS), self._status_payload("offline"), qos=1, retain=True)
        self.client.on_socket_open = wire.tcp_nodelay
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
        self._wake.set()
        log.info("connected to %s:%s", self.host, self.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connected.clear()
        (log.info if self._stop.is_set() else log.warning)("disconnected from broker: %s", rc)

    def _on_publish(self, *_: Any) -> None:
        self.pubacked += 1
        if self.published - self.pubacked < self.cfg.window // 2:  # half the window free: refill it
            self._wake.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put((msg.topic.removeprefix(self._topic("")), bytes(msg.payload)))
        self._wake.set()

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        self._thread.start()

    def wake(self) -> None:
        """Call after a commit: the drain publishes without waiting for its timer."""
        self._wake.set()

    def wait_synced(self, timeout: float, backlog: int = 0) -> bool:
        """Block until at most ``backlog`` records are unsynced (or the timeout passes)."""
        with self._synced:
            return self._synced.wait_for(lambda: self.ledger.unsynced_count() <= backlog, timeout=timeout)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        if self.connected.is_set():
            self.client.publish(self._topic(wire.STATUS), self._status_payload("offline"), qos=1, retain=True)
        self.client.disconnect()
        self.client.loop_stop()

    # the drain ----------------------------------------------------------------------------

    def _run(self) -> None:
        d = _Drain()
        next_telemetry = next_maintenance = 0.0
        paced = False
        while not self._stop.is_set():
            try:
                # The timer for telemetry and the resend check; a paced drain comes back sooner.
                self._wake.wait(timeout=PACE_TICK_S if paced else 1.0)
                self._wake.clear()
                self._handle_inbox(d)
                if not self.connected.is_set():
                    continue
                if d.generation != self._generation:
                    d.generation = self._generation
                    self.pubacked = self.published  # a new connection: nothing of ours waits for a PUBACK
                    self.client.publish(self._topic(wire.STATUS), self._status_payload("online"), qos=1,
                                        retain=True)
                    d.restart(0)
                elif d.inflight and time.monotonic() - d.last_progress > self.cfg.resend_after_s:
                    log.warning("no ack for %.0f s: re-sending from the first unsynced record",
                                self.cfg.resend_after_s)
                    d.restart(0)
                paced = self._publish(d)
                if time.monotonic() >= next_telemetry:
                    self._telemetry()
                    next_telemetry = time.monotonic() + self.cfg.telemetry_s
                if self.cfg.retention and time.monotonic() >= next_maintenance:
                    purged = self.ledger.purge_synced(self.now() - self.cfg.retention)
                    if purged:
                        log.info("purged %d synced records older than %s", purged, self.cfg.retention)
                    next_maintenance = time.monotonic() + MAINTENANCE_S
            except StoreError as exc:  # e.g. disk full while recording an ack: retry, lose nothing
                log.error("uplink: %s; retrying", exc)
                self._stop.wait(1.0)
            except Exception:  # the thread's one guard: log and keep draining
                log.exception("uplink drain failed; retrying")
                self._stop.wait(1.0)

    def _handle_inbox(self, d: _Drain) -> None:
        while True:
            try:
                leaf, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            try:
                if leaf == wire.ACK:
                    self._apply_ack(d, *wire.decode_ack(payload))
                elif leaf == f"{wire.CMD}/{wire.CMD_RESEND}":
                    from_seq = wire.decode_resend(payload)
                    log.warning("gateway asked to re-send from seq %d", from_seq)
                    d.restart(from_seq - 1)
                elif leaf == f"{wire.CMD}/{wire.CMD_TIME}":
                    if self.on_time:
                        self.on_time(wire.decode_time(payload))
                else:
                    log.warning("ignored a message on %s: unknown command", leaf)
            except wire.ContractError as exc:
                log.warning("ignored a malformed %s message: %s", leaf, exc)

    def _apply_ack(self, d: _Drain, upto: int, ids: list[str]) -> None:
        self.acked += self.ledger.mark_synced(upto, ids, self.now())
        while d.inflight and next(iter(d.inflight)) <= upto:  # published in seq order: oldest first
            d.inflight.pop(next(iter(d.inflight)))
        if ids:
            done = set(ids)
            for seq in [s for s, rid in d.inflight.items() if rid in done]:
                del d.inflight[seq]
        d.last_progress = time.monotonic()
        with self._synced:
            self._synced.notify_all()

    def _publish(self, d: _Drain) -> bool:
        """Publish what the budgets allow; True if the pacing (not the backlog) stopped it.

        Two budgets: records the gateway has not acked yet (``max_unacked``), and messages the
        broker has not PUBACKed yet (``window``): paho rescans its whole outgoing queue on every
        PUBACK, so nothing may wait in that queue beyond its in-flight window."""
        budget = min(self.cfg.max_unacked - len(d.inflight), self._puback_budget())
        paced = self.cfg.drain_rate > 0 and d.pace(self.cfg.drain_rate) < budget
        if self.cfg.drain_rate > 0:
            budget = min(budget, d.pace(self.cfg.drain_rate))
        while budget > 0:
            batch = self.ledger.unsynced(after_seq=d.published_upto, limit=min(budget, BATCH))
            for rec in batch:
                info = self.client.publish(self._topic(wire.RECORD), rec.payload, qos=wire.QOS[wire.RECORD])
                if info.rc != mqtt.MQTT_ERR_SUCCESS:  # not connected any more, or paho's queue is full
                    log.info("publish of seq %d deferred: %s", rec.seq, mqtt.error_string(info.rc))
                    return False
                d.inflight[rec.seq] = rec.id
                d.published_upto = rec.seq
                d.spent += 1
                self.published += 1
            if len(batch) < min(budget, BATCH):
                return False
            self._handle_inbox(d)  # apply acks that arrived meanwhile: overlap, not lock-step
            budget = min(budget - len(batch), self.cfg.max_unacked - len(d.inflight), self._puback_budget())
        return paced

    def _puback_budget(self) -> int:
        # max(0, …): after a reconnect paho may deliver PUBACKs for messages of the old session
        return self.cfg.window - max(0, self.published - self.pubacked)

    def _telemetry(self) -> None:
        backlog, oldest_ns = self.ledger.backlog()
        disk = shutil.disk_usage(self.ledger.path.parent)
        payload = {
            "at": self.now().isoformat(timespec="seconds"), "backlog": backlog,
            "oldest_unsent_s": None if oldest_ns is None else round((time.time_ns() - oldest_ns) / 1e9, 1),
            "disk_free_mb": disk.free // 2**20, **self.status(),
        }
        self.client.publish(self._topic(wire.TELEMETRY), json.dumps(payload), qos=wire.QOS[wire.TELEMETRY])


class _Drain:
    """The drain thread's own bookkeeping (never shared with another thread)."""

    def __init__(self) -> None:
        self.generation = -1
        self.published_upto = 0
        self.inflight: dict[int, str] = {}  # seq -> id, published and not yet acked by the gateway
        self.last_progress = time.monotonic()
        self.spent = 0  # records published since the pacing window started
        self.window_start = time.monotonic()

    def restart(self, after_seq: int) -> None:
        self.published_upto = after_seq
        self.inflight.clear()
        self.last_progress = time.monotonic()

    def pace(self, rate: float) -> int:
        """Records that may still be published now under ``rate`` records/s."""
        elapsed = time.monotonic() - self.window_start
        if elapsed > 1.0:  # a fresh one-second window: no burst carried over from an idle period
            self.window_start, self.spent, elapsed = time.monotonic(), 0, 0.0
        return max(0, int(rate * max(elapsed, 0.05)) - self.spent)
