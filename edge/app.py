"""The cart agent's composition root: config → ledger, uplink, scale, camera → workflow thread.

Hardware threads (scale reader, scanner) only turn bytes and frames into events on one queue;
one workflow thread applies them to the pure state machine and carries out its effects, so the
state is never touched from two threads.  Start order: ledger, uplink, workflow, then devices;
stop in reverse.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from edge import codes, keys, workflow
from edge.clock import SystemClock
from edge.config import EdgeConfig, UplinkConfig
from edge.errors import CodeError, StoreError
from edge.store import Ledger
from edge.uplink import Uplink, UplinkSettings

if TYPE_CHECKING:
    from edge.camera import Camera
    from edge.scales import Reading, ScaleReader
    from edge.scanner import Scanner

log = logging.getLogger(__name__)


def to_weight(r: Reading) -> workflow.Weight:
    """A scale reading as the workflow sees it: only trusted, in-range mass readings have a weight."""
    problem = r.error or ("超载 (overload)" if r.overload else "欠载 (underload)" if r.underload else None)
    return workflow.Weight(
        net_g=None if problem else r.weight_g, stable=bool(r.stable) and not problem,
        tare_g=r.tare_g or 0, protocol=r.protocol, raw=r.raw.decode("latin-1"), error=problem)


def uplink_settings(cfg: UplinkConfig) -> UplinkSettings:
    return UplinkSettings(window=cfg.window, max_unacked=cfg.max_unacked, resend_after_s=cfg.resend_after_s,
                          drain_rate=cfg.drain_rate, telemetry_s=cfg.telemetry_s,
                          retention=timedelta(days=cfg.retention_days))


class EdgeApp:
    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.code_book: codes.CodeBook = config.codes.book(config.org)  # first: a bad key opens nothing
        self.clock = SystemClock(config.clock)
        self.key = keys.load_or_create(config.data)
        self.ledger = Ledger(config.data, config.cart, self.key, min_free_mb=config.min_free_mb)
        self.machine = workflow.Machine(workflow.State(org=config.org, cart=config.cart))
        self.uplink = Uplink(self.ledger, site=config.org, broker=config.broker,
                             settings=uplink_settings(config.uplink), status=self._device_status,
                             on_time=self.clock.offer, now=self.clock.now)
        self.scale_state = "none"
        self.scale: ScaleReader | None = None
        if config.scale.port:
            from edge.scales import ScaleReader, StabilitySettings

            sc = config.scale
            self.scale = ScaleReader(
                config.scale.port, protocol=sc.protocol, baud=sc.baud, on_reading=self._on_reading,
                on_state=self._on_scale_state,
                stability=StabilitySettings(division_g=sc.division_g, tolerance_d=sc.tolerance_d,
                                            window_s=sc.window_s, min_readings=sc.min_readings))
        self.camera: Camera | None = None
        self.scanner: Scanner | None = None
        if config.camera.url:
            from edge.camera import open_camera
            from edge.scanner import Scanner

            self.camera = open_camera(config.camera.url, config.camera.fps, stall_s=config.camera.stall_s)
            self.scanner = Scanner(self.camera, self._on_code,
                                   config.camera.repeat_s)
        self._events: queue.Queue[workflow.Event] = queue.Queue()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="workflow", daemon=True)

    # hardware threads hand over -------------------------------------------------------------

    def _on_reading(self, r: Reading) -> None:
        self._events.put(workflow.Weighed(to_weight(r), self.clock.now()))

    def _on_scale_state(self, state: str) -> None:
        self.scale_state = state

    def _on_code(self, text: str) -> None:
        self.submit_code(text)

    def submit_code(self, text: str) -> None:
        """A scanned payload (camera, or a hand scanner / the kiosk later)."""
        now = self.clock.now()
        try:
            self._events.put(workflow.Scanned(self.code_book.decode(text), now))
        except CodeError as exc:
            log.info("rejected code %r: %s", text[:64], exc)
            self._events.put(workflow.Rejected(str(exc), now))

    def _device_status(self) -> dict[str, Any]:
        return {"scale": self.scale_state, "camera": self.camera.state if self.camera else "none",
                "clock": self.clock.source(), "clock_offset_ms": self.clock.offset_ms}

    # the workflow thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                event = self._events.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                for effect in self.machine.handle(event):
                    self._carry_out(effect)
            except Exception:  # the thread's one guard: a bug must not freeze the cart
                log.exception("workflow failed on %r", event)
            with self._changed:
                self._changed.notify_all()

    def _carry_out(self, effect: workflow.Effect) -> None:
        now, stamp = self.clock.stamp()
        try:
            done = self.ledger.commit(effect.rtype, effect.body, now=now, clock=stamp)
        except StoreError as exc:
            log.error("commit failed: %s", exc)
            self.machine.handle(workflow.CommitFailed(str(exc), self.clock.now()))
            return
        log.info("committed %s seq=%d id=%s", effect.rtype, done.seq, done.id)
        self.machine.handle(workflow.Committed(done.seq, done.id, self.clock.now()))
        self.uplink.wake()

    # lifecycle and observation ------------------------------------------------------------------

    @property
    def state(self) -> workflow.State:
        return self.machine.state

    def wait_until(self, predicate: Callable[[workflow.State], bool], timeout: float) -> bool:
        """Block until the workflow state satisfies ``predicate`` (the demo and tests use this)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.machine.state), timeout=timeout)

    def start(self) -> None:
        self.uplink.start()
        self._thread.start()
        if self.scale:
            self.scale.start()
        if self.scanner:
            self.scanner.start()
        log.info("cart %s of %s: ledger %s, broker %s", self.config.cart, self.config.org,
                 self.ledger.path, self.config.broker)

    def stop(self) -> None:
        if self.scanner:
            self.scanner.stop()
        if self.scale:
            self.scale.stop()
        self._stop.set()
        self._thread.join(timeout=5)
        self.uplink.stop()
        self.ledger.close()
