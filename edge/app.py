"""The cart agent's composition root: config → start-up checks → ledger, uplink, devices → agent → kiosk.

Only wiring lives here: what to build from which setting, in which order to start and stop it.
The loop that applies events to the workflow is ``edge.agent``; each part owns its own thread.
Start-up checks that read files or lay out a label run here (``preflight``), not in the config's
validators, and name the setting at fault the way a config error does.
Start order: ledger, uplink, agent, devices, kiosk; stop in reverse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from edge import codes, keys, remote, tls, workflow
from edge.agent import Agent
from edge.clock import SystemClock
from edge.config import ActuatorConfig, EdgeConfig
from edge.errors import CodeError, LabelError, SetupError
from edge.kiosk.server import KioskServer
from edge.ledger.store import Ledger
from edge.ledger.uplink import Uplink
from edge.messages import Msg, msg
from edge.version import software_version

if TYPE_CHECKING:
    from edge.devices.actuator import Actuator
    from edge.devices.camera import Camera
    from edge.devices.printer import Printer
    from edge.devices.scales import ScaleReader
    from edge.devices.scanner import Scanner

log = logging.getLogger(__name__)

def preflight(config: EdgeConfig) -> codes.CodeBook:
    """The checks a value cannot answer alone: a gateway key to believe acks with, the MAC key file
    is readable and strong enough, the printed label fits its size, the TLS files are this cart's.
    ``SetupError`` names the setting, like a config error."""
    try:
        book = config.codes.book(config.org)
    except CodeError as exc:
        raise SetupError("setup.setting", key="codes.mac_key_file", reason=exc.msg) from exc
    if config.printer.url is not None:
        from edge import labels

        try:
            labels.check_fits(config.org, config.roster.org_name, config.printer.dpi, config.printer.medical_mm,
                              [d.name for d in config.roster.departments.values()])
        except LabelError as exc:
            w, h = config.printer.medical_mm
            raise SetupError("setup.setting", key=f"printer.medical_mm {w:g}×{h:g} with roster.org_name",
                             reason=exc.msg) from exc
    if config.uplink.tls is not None:
        check_tls(config.uplink.tls, config.cart)
    if not config.uplink.gateway_keys:  # optional in the settings model (tests, tools), not on a cart
        raise SetupError("setup.setting", key="uplink.gateway_keys", reason=msg("uplink.no_gateway_key"))
    return book


def check_tls(settings: tls.TlsSettings, cart: str) -> None:
    """The TLS files work together and now (``edge.tls.check``), and the certificate is this cart's:
    the broker takes its CN as the user name and lets a cart publish under its own id only, so a
    certificate of another cart would connect and then have every record dropped by the ACL."""
    try:
        tls.check(settings)
    except tls.TlsError as exc:
        raise SetupError("setup.setting", key=f"uplink.tls.{exc.field}", reason=str(exc)) from exc
    holder = tls.identity(settings)
    if holder != cart:
        raise SetupError("setup.setting", key="uplink.tls.cert",
                         reason=f"{settings.cert}: issued to {holder!r}, not to this cart {cart!r} (the broker "
                                "lets a cart publish only as itself): "
                                f"`wastecart pki issue --dir DIR --client {cart} --role cart`")


class EdgeApp:
    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        code_book = preflight(config)  # first: a bad key file or label size opens nothing
        self.clock = SystemClock(config.clock)
        self.key = keys.load_or_create(config.data)
        self.ledger = Ledger(config.data, config.cart, self.key, min_free_mb=config.min_free_mb)
        state = workflow.State(org=config.org, cart=config.cart, limits=config.workflow, roster=config.roster,
                               zone=ZoneInfo(config.workflow.timezone))
        machine = workflow.Machine(workflow.replay(state, self.ledger.bodies(workflow.REPLAYED)))
        self.uplink = Uplink(self.ledger, site=config.org, broker=config.broker, settings=config.uplink,
                             status=self._device_status, on_time=self.clock.offer, now=self.clock.now)
        self.printer = build_printer(config)
        self.actuator: Actuator | None = None
        self.scale_state = "none"
        self.scale: ScaleReader | None = None
        self.camera: Camera | None = None
        self.scanner: Scanner | None = None
        self.agent = Agent(
            machine, clock=self.clock, ledger=self.ledger, code_book=code_book,
            pin_hashes=config.workflow.pins, printer=self.printer,
            devices=self._devices, online=self.uplink.connected.is_set, on_commit=self.uplink.wake,
            actuate=self._actuate, pin_policy=config.kiosk.pin, on_alarm=self.uplink.report_soon,
            overrides=config.data / remote.OVERRIDES_FILE)
        for name, handler in self.agent.remote_handlers().items():  # the gateway's reprint and config
            self.uplink.handle(name, handler)
        self.actuator = build_actuator(config.actuator, self.agent.on_actuator)
        sc, cam = config.scale, config.camera
        if sc.port:
            from edge.devices.scales import ScaleReader

            self.scale = ScaleReader(sc.port, protocol=sc.protocol, baud=sc.baud, on_reading=self.agent.on_reading,
                                     on_state=self._on_scale_state, stability=sc)
        if cam.url:
            from edge.devices.camera import open_camera
            from edge.devices.scanner import Scanner

            self.camera = open_camera(cam.url, cam.fps, stall_s=cam.stall_s)
            self.scanner = Scanner(self.camera, self.agent.submit_code, cam.repeat_s)
        self.kiosk = (KioskServer(self.agent, config.kiosk)
                      if config.kiosk.enabled else None)

    # callbacks from the parts ----------------------------------------------------------------

    def _on_scale_state(self, state: str) -> None:
        self.scale_state = state

    def _actuate(self, direction: str) -> None:
        if self.actuator is not None:
            (self.actuator.extend if direction == "extend" else self.actuator.retract)()

    def _devices(self) -> dict[str, Any]:
        """What each device is doing: in the telemetry and on the kiosk's status bar."""
        return {"scale": self.scale_state, "camera": self.camera.state if self.camera else "none",
                "actuator": self.actuator.state if self.actuator else "none", "clock": self.clock.source()}

    def _device_status(self) -> dict[str, Any]:
        """The devices for the birth message and telemetry, and the kiosk's PIN counts since this
        boot (the gateway raises PIN_LOCKOUT when ``pin_lockouts`` rises)."""
        guard = self.agent.pin_guard
        return {**self._devices(), "printer": self.agent.printer_state, "clock_offset_ms": self.clock.offset_ms,
                "version": software_version(),
                "pin_failures": guard.failures, "pin_lockouts": guard.lockouts}

    # lifecycle --------------------------------------------------------------------------------

    @property
    def state(self) -> workflow.State:
        return self.agent.state

    def wait_until(self, predicate: Callable[[workflow.State], bool], timeout: float) -> bool:
        return self.agent.wait_until(predicate, timeout)

    def start(self) -> None:
        self.uplink.start()
        self.agent.start()
        if self.actuator is not None:  # the workflow learns where the slide is before anything else
            self.agent.on_actuator(self.actuator.state)
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
        self.agent.stop()
        if self.actuator is not None:
            self.actuator.close()
        self.uplink.stop()
        self.ledger.close()


def build_printer(config: EdgeConfig) -> Printer | None:
    if config.printer.url is None:
        return None
    from edge.devices.printer import Printer

    return Printer(config.printer)


def build_actuator(cfg: ActuatorConfig, on_state: Callable[[str, Msg | None], None]) -> Actuator | None:
    if cfg.kind == "none":
        return None
    from edge.devices.actuator import Actuator, GpioDrive, SimDrive

    if cfg.kind == "sim":
        return Actuator(SimDrive(cfg.travel_s), timeout_s=cfg.timeout_s, on_state=on_state)
    assert cfg.forward_pin is not None and cfg.backward_pin is not None  # checked by ActuatorConfig
    assert cfg.extended_pin is not None and cfg.retracted_pin is not None
    drive = GpioDrive(forward_pin=cfg.forward_pin, backward_pin=cfg.backward_pin,
                      extended_pin=cfg.extended_pin, retracted_pin=cfg.retracted_pin)
    return Actuator(drive, timeout_s=cfg.timeout_s, on_state=on_state)


