"""Ledger → MQTT: publish unsynced records at QoS 1 and mark them synced on the gateway's ack.

One drain thread owns the decisions; paho's network thread only hands acks and connection
changes over (callbacks never raise, never touch the ledger).  At most ``window`` records are
published and not yet acknowledged by the gateway, so paho's 16-bit message ids and the broker's
queues stay bounded.  After a reconnect, or when acks stop coming for ``resend_after_s``, the
drain starts again from the first unsynced record: the gateway de-duplicates, so re-sending is
always safe, and losing a PUBACKed message in a broker crash is not.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from edge.errors import UplinkError
from edge.store import Ledger

log = logging.getLogger(__name__)


class Uplink:
    def __init__(
        self, ledger: Ledger, *, site: str, broker: str, window: int = 100, resend_after_s: float = 30.0,
        telemetry_s: float = 10.0, status: Callable[[], dict[str, Any]] = dict,
        now: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    ) -> None:
        try:
            self.host, self.port, tls = wire.broker_address(broker)
        except wire.ContractError as exc:
            raise UplinkError(str(exc)) from exc
        self.ledger, self.site, self.cart = ledger, site, ledger.cart
        self.window, self.resend_after_s, self.telemetry_s = window, resend_after_s, telemetry_s
        self.status, self.now = status, now
        self.boot_id = wire.uuid7()
        self.connected = threading.Event()
        self.acked = 0  # records marked synced by this process (for stats)
        self._synced = threading.Condition()  # notified whenever acks mark records synced
        self._acks: queue.Queue[tuple[int, list[str]]] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._generation = 0  # bumped by every (re)connect: the drain restarts from the first unsynced
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"wc-cart-{self.cart}",
                                  clean_session=False, protocol=mqtt.MQTTv311)
        if tls:
            self.client.tls_set()
        self.client.max_inflight_messages_set(window)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.will_set(self._topic(wire.STATUS), self._status_payload("offline"), qos=1, retain=True)
        self.client.on_socket_open = wire.tcp_nodelay
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

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
        client.subscribe(self._topic(wire.ACK), qos=1)
        self._generation += 1  # the drain sees it: birth message, then re-send from the first unsynced
        self.connected.set()
        self._wake.set()
        log.info("connected to %s:%s", self.host, self.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connected.clear()
        (log.info if self._stop.is_set() else log.warning)("disconnected from broker: %s", rc)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._acks.put(wire.decode_ack(msg.payload))
        except wire.ContractError as exc:
            log.warning("ignored a malformed ack on %s: %s", msg.topic, exc)
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
            return self._synced.wait_for(lambda: self.ledger.backlog()[0] <= backlog, timeout=timeout)

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
        published_upto, generation = 0, -1
        inflight: dict[int, str] = {}
        last_progress = time.monotonic()
        next_telemetry = 0.0
        while not self._stop.is_set():
            try:
                self._wake.wait(timeout=1.0)  # timer for telemetry and the resend check
                self._wake.clear()
                if self._apply_acks(inflight):
                    last_progress = time.monotonic()
                if not self.connected.is_set():
                    continue
                stalled = inflight and time.monotonic() - last_progress > self.resend_after_s
                if generation != self._generation:
                    self.client.publish(self._topic(wire.STATUS), self._status_payload("online"), qos=1,
                                        retain=True)
                if generation != self._generation or stalled:
                    if stalled:
                        log.warning("no ack for %.0f s: re-sending from the first unsynced record",
                                    self.resend_after_s)
                    generation, published_upto = self._generation, 0
                    inflight.clear()
                    last_progress = time.monotonic()
                published_upto = self._publish(published_upto, inflight)
                if time.monotonic() >= next_telemetry:
                    self._telemetry()
                    next_telemetry = time.monotonic() + self.telemetry_s
            except Exception:  # the thread's one guard: log and keep draining
                log.exception("uplink drain failed; retrying")
                self._stop.wait(1.0)

    def _apply_acks(self, inflight: dict[int, str]) -> bool:
        progressed = False
        while True:
            try:
                upto, ids = self._acks.get_nowait()
            except queue.Empty:
                return progressed
            self.acked += self.ledger.mark_synced(upto, ids, self.now())
            with self._synced:
                self._synced.notify_all()
            done = set(ids)
            for seq in [s for s, rid in inflight.items() if s <= upto or rid in done]:
                del inflight[seq]
            progressed = True

    def _publish(self, published_upto: int, inflight: dict[int, str]) -> int:
        budget = self.window - len(inflight)
        if budget <= 0:
            return published_upto
        for rec in self.ledger.unsynced(after_seq=published_upto, limit=budget):
            info = self.client.publish(self._topic(wire.RECORD), rec.payload, qos=wire.QOS[wire.RECORD])
            if info.rc != mqtt.MQTT_ERR_SUCCESS:  # not connected any more, or paho's queue is full
                log.info("publish of seq %d deferred: %s", rec.seq, mqtt.error_string(info.rc))
                break
            inflight[rec.seq] = rec.id
            published_upto = rec.seq
        return published_upto

    def _telemetry(self) -> None:
        backlog, oldest_ns = self.ledger.backlog()
        disk = shutil.disk_usage(self.ledger.path.parent)
        payload = {
            "at": self.now().isoformat(timespec="seconds"), "backlog": backlog,
            "oldest_unsent_s": None if oldest_ns is None else round((time.time_ns() - oldest_ns) / 1e9, 1),
            "disk_free_mb": disk.free // 2**20, **self.status(),
        }
        self.client.publish(self._topic(wire.TELEMETRY), json.dumps(payload), qos=wire.QOS[wire.TELEMETRY])
