"""The cart agent's composition root: config → ledger, uplink, scale, camera, printer, actuator,
kiosk → workflow thread.

Hardware threads (scale reader, scanner, actuator, the printer worker) and the kiosk's HTTP
threads only turn bytes, frames and taps into events on one queue; one workflow thread applies
them to the pure state machine and carries out its effects, so the state is never touched from
two threads.  At start the machine replays the ledger (which bags are on the cart / in storage).
Start order: ledger, uplink, workflow, devices, kiosk; stop in reverse.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from edge import codes, keys, pins, workflow
from edge.actuator import Actuator, GpioDrive, SimDrive
from edge.clock import SystemClock
from edge.config import ActuatorConfig, EdgeConfig, UplinkConfig
from edge.errors import CodeError, EdgeError, StoreError
from edge.kiosk import Changes, KioskError, KioskServer
from edge.store import Ledger
from edge.uplink import Uplink, UplinkSettings

if TYPE_CHECKING:
    from edge.camera import Camera
    from edge.printer import Printer
    from edge.scales import Reading, ScaleReader
    from edge.scanner import Scanner

TICK_S = 30.0  # the workflow hears time pass this often (round-overdue warning)
REPLAYED = ("handover", "storage_in", "transfer", "void")  # record types that say where bags are

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
        state = workflow.State(org=config.org, cart=config.cart, limits=config.workflow.limits())
        self.machine = workflow.Machine(workflow.replay(state, self.ledger.bodies(REPLAYED)))
        self.changes = Changes()  # the kiosk waits on this; bumped after every event and device change
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
        self.printer: Printer | None = None
        self.printer_state = "none"
        if config.printer.url:
            from edge.printer import Printer

            self.printer = Printer.from_config(config.printer)
            self.printer_state = "ok"
        self._print_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="printer")
        self.actuator = build_actuator(config.actuator, self._on_actuator)
        self.kiosk = KioskServer(self, config.kiosk.host, config.kiosk.port) if config.kiosk.enabled else None
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

    def _on_actuator(self, state: str, reason: str) -> None:
        self._events.put(workflow.ActuatorChanged(state, self.clock.now(), reason))

    def submit_code(self, text: str) -> None:
        """A scanned payload (camera, or a hand scanner / the kiosk later)."""
        now = self.clock.now()
        try:
            self._events.put(workflow.Scanned(self.code_book.decode(text), now))
        except CodeError as exc:
            log.info("rejected code %r: %s", text[:64], exc)
            self._events.put(workflow.Rejected(str(exc), now))

    def _devices(self) -> dict[str, Any]:
        """What each device is doing: in the telemetry and on the kiosk's status bar."""
        return {"scale": self.scale_state, "camera": self.camera.state if self.camera else "none",
                "printer": self.printer_state, "actuator": self.actuator.state if self.actuator else "none",
                "clock": self.clock.source()}

    def _device_status(self) -> dict[str, Any]:
        return {**self._devices(), "clock_offset_ms": self.clock.offset_ms}

    # the kiosk's source (edge.kiosk.KioskSource) ---------------------------------------------

    def device(self) -> dict[str, Any]:
        return {"online": self.uplink.connected.is_set(), "unsent": self.ledger.unsynced_count(), **self._devices()}

    def snapshot(self) -> dict[str, Any]:
        model = workflow.view(self.machine.state, self.clock.now())
        model["device"] = self.device()
        return model

    def act(self, id: str, value: str | None) -> None:
        """A kiosk button.  A PIN is checked here, never passed to the machine (nor logged)."""
        if not workflow.action_known(id):
            raise KioskError(f"unknown action {id!r}")
        now = self.clock.now()
        if id == "confirm_pin":
            person = pins.who(value or "", dict(self.config.workflow.pins))
            if person is None:
                log.info("wrong PIN typed at the kiosk")
                self._events.put(workflow.Rejected("PIN 错误，请重新输入 (wrong PIN)", now))
            else:
                self._events.put(workflow.PinConfirmed(person, now))
            return
        self._events.put(workflow.Action(id, value or "", now))

    def scan(self, text: str) -> None:
        self.submit_code(text)

    def wait_changed(self, version: int, timeout: float) -> int:
        return self.changes.wait_changed(version, timeout)

    # the workflow thread ----------------------------------------------------------------------

    def _run(self) -> None:
        next_tick = time.monotonic() + TICK_S
        device = self.device()
        shown = self.machine.state
        while not self._stop.is_set():
            try:
                event: workflow.Event | None = self._events.get(timeout=0.5)
            except queue.Empty:
                event = None
            if event is None and time.monotonic() >= next_tick:
                event, next_tick = workflow.Tick(self.clock.now()), time.monotonic() + TICK_S
            if event is not None:
                try:
                    self._apply(event)
                except Exception:  # the thread's one guard: a bug must not freeze the cart
                    log.exception("workflow failed on %r", event)
                with self._changed:
                    self._changed.notify_all()
            # The kiosk is told only of what it would show differently: a steady scale sends 20
            # identical readings a second, and each push re-renders the page on the cart's Pi.
            now_device, state = self.device(), self.machine.state
            if (now_device != device or isinstance(event, workflow.Tick)  # Tick: the round's age on screen
                    or replace(state, weight_at=None) != replace(shown, weight_at=None)):
                device, shown = now_device, state
                self.changes.bump()

    def _apply(self, event: workflow.Event) -> None:
        """Feed one event, then carry out the effects, including those the results cause."""
        effects = self.machine.handle(event)
        while effects:
            effect, *effects = effects
            effects = self._carry_out(effect) + effects

    def _carry_out(self, effect: workflow.Effect) -> list[workflow.Effect]:
        if isinstance(effect, workflow.Actuate):
            if self.actuator is not None:
                (self.actuator.extend if effect.direction == "extend" else self.actuator.retract)()
            return []
        if isinstance(effect, workflow.PrintLabel):
            self._print_worker.submit(self._print, effect)
            return []
        now, stamp = self.clock.stamp()
        try:
            done = self.ledger.commit(effect.rtype, effect.body, now=now, clock=stamp)
        except StoreError as exc:
            log.error("commit failed: %s", exc)
            return self.machine.handle(workflow.CommitFailed(str(exc), self.clock.now()))
        log.info("committed %s seq=%d id=%s", effect.rtype, done.seq, done.id)
        self.uplink.wake()
        return self.machine.handle(workflow.Committed(done.seq, done.id, self.clock.now()))

    def _print(self, job: workflow.PrintLabel) -> None:
        """On the printer worker: a slow or absent printer never holds up the workflow thread."""
        from edge.labels import MedicalLabel

        f = job.fields
        try:
            if self.printer is None:
                raise EdgeError("未配置打印机，请扫描已有标签 (no printer configured)")
            label = MedicalLabel(
                code=self.code_book.encode(job.code), org_name=self.config.workflow.org_name or f["org"],
                department=f.get("department") or "", category=f["category"], weight_g=f.get("weight_g"),
                produced_at=datetime.fromisoformat(f["produced_at"]), notes=f.get("notes") or "")
            result = self.printer.print_label(label)
        except EdgeError as exc:
            log.warning("label not printed: %s", exc)
            if self.printer is not None:
                self.printer_state = "error"
            self._events.put(workflow.Printed(False, str(exc), self.clock.now()))
            return
        except Exception:  # the worker's one guard: a bug must not leave the kiosk "printing…" forever
            log.exception("printing label %s failed", job.code.ident)
            self.printer_state = "error"
            self._events.put(workflow.Printed(False, "打印程序出错，请查看日志 (printer worker failed, see the log)",
                                              self.clock.now()))
            return
        log.info("label %s printed (%d bytes, %s)", job.code.ident, result.bytes, result.language)
        self.printer_state = "ok"
        self._events.put(workflow.Printed(True, "", self.clock.now()))

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
        if self.actuator is not None:  # the workflow learns where the slide is before anything else
            self._on_actuator(self.actuator.state, "")
        if self.scale:
            self.scale.start()
        if self.scanner:
            self.scanner.start()
        if self.kiosk is not None:
            self.kiosk.start()
            log.info("kiosk %s", self.kiosk.url)
        log.info("cart %s of %s: ledger %s, broker %s", self.config.cart, self.config.org,
                 self.ledger.path, self.config.broker)

    def stop(self) -> None:
        if self.kiosk is not None:
            self.kiosk.stop()
        if self.scanner:
            self.scanner.stop()
        if self.scale:
            self.scale.stop()
        self._stop.set()
        self._thread.join(timeout=5)
        self._print_worker.shutdown(wait=True, cancel_futures=True)
        if self.actuator is not None:
            self.actuator.close()
        self.uplink.stop()
        self.ledger.close()


def build_actuator(cfg: ActuatorConfig, on_state: Callable[[str, str], None]) -> Actuator | None:
    if cfg.kind == "none":
        return None
    if cfg.kind == "sim":
        return Actuator(SimDrive(cfg.travel_s), timeout_s=cfg.timeout_s, on_state=on_state)
    assert cfg.forward_pin is not None and cfg.backward_pin is not None  # checked by ActuatorConfig
    assert cfg.extended_pin is not None and cfg.retracted_pin is not None
    drive = GpioDrive(forward_pin=cfg.forward_pin, backward_pin=cfg.backward_pin,
                      extended_pin=cfg.extended_pin, retracted_pin=cfg.retracted_pin)
    return Actuator(drive, timeout_s=cfg.timeout_s, on_state=on_state)
