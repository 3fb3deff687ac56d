"""The cart's configuration: one TOML file, validated at start-up (``wastecart.config.load``).

Unknown keys and bad values stop the process with the dotted key path; nothing is clamped.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from edge import codes, wire, workflow
from edge.errors import CodeError
from edge.uplink import UplinkSettings

_DEFAULT = UplinkSettings()  # the uplink's own defaults: one place for them


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScaleConfig(_Strict):
    port: str | None = Field(None, description="serial URL or device path; none = no scale attached")
    protocol: str = "toledo"
    baud: int | None = Field(None, gt=0, description="none = the protocol's usual setting")
    # For indicators without a motion flag (Yaohua tF=0, "=" formats …): readings within
    # tolerance_d divisions of each other for window_s (and min_readings frames) count as stable.
    division_g: int = Field(1, ge=1)  # the scale's display division e, in grams (a 150 kg cart scale: 50 g)
    tolerance_d: int = Field(1, ge=1)
    window_s: float = Field(0.7, gt=0, le=10)
    min_readings: int = Field(5, ge=1)

    @field_validator("protocol")
    @classmethod
    def _known(cls, v: str) -> str:
        from edge.scales import PROTOCOLS

        if v not in PROTOCOLS:
            raise ValueError(f"unknown scale protocol {v!r}; known: {', '.join(sorted(PROTOCOLS))}")
        return v


class CameraConfig(_Strict):
    url: str | None = Field(None, description="v4l2:///dev/video0?width=640&height=480&fps=15, "
                                              "http(s)://…/stream.mjpg, rtsp://…, or file://DIR/")
    fps: float = Field(10.0, gt=0, le=60)  # frames/s decoded: labels are held still, 10 is plenty
    repeat_s: float = Field(2.0, ge=0)  # the same code within this many seconds is one scan
    # No frame for this long: the capture is reported stalled, released and reopened (s).
    stall_s: float = Field(5.0, gt=0, le=300)


class UplinkConfig(_Strict):
    # Records published and not yet acknowledged by the gateway.  20-100 is the measured sweet spot;
    # paho's 16-bit message ids make more than 65,535 impossible anyway.
    window: int = Field(_DEFAULT.window, ge=1, le=10_000)
    # Records published and not yet acknowledged by the gateway (its acks come per batch, so this
    # must cover a few batches to keep the pipe full); below paho's 65,535 message ids.
    max_unacked: int = Field(_DEFAULT.max_unacked, ge=1, le=60_000)
    # No ack progress for this long: re-send from the first unsynced record (s).
    resend_after_s: float = Field(_DEFAULT.resend_after_s, gt=0)
    # Records/s when draining a backlog after an outage (0 = as fast as the gateway acks): a fleet
    # coming back at once should not flatten the gateway; a day's backlog still drains in seconds.
    drain_rate: float = Field(_DEFAULT.drain_rate, ge=0)
    telemetry_s: float = Field(_DEFAULT.telemetry_s, gt=0)  # period of the telemetry message
    # Synced records are kept this many days on the cart, then purged (unsynced ones never are).
    retention_days: float = Field(30.0, gt=0)


class ExternalCodeConfig(_Strict):
    """A foreign QR format the cart accepts as well as ours: an existing hospital badge, a platform URL."""

    name: str = Field(min_length=1, description="shown to people and recorded as the code's source, e.g. 医院工牌")
    pattern: str = Field(description="Python regex matching the whole text, with a group (?P<ident>…)")
    kind: Literal["S", "D", "B", "R", "V"]
    category: str | None = Field(None, description="fixed category of a bag format: letter (I, S, …) or wire name")

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        codes.compile_pattern(v)  # compiled here so a bad one stops the cart at start-up
        return v

    @field_validator("category")
    @classmethod
    def _category(cls, v: str | None) -> str | None:
        return None if v is None else codes.category_name(v)

    @model_validator(mode="after")
    def _bags_only(self) -> ExternalCodeConfig:
        if self.kind != "B" and (self.category or "category" in codes.compile_pattern(self.pattern).groupindex):
            raise ValueError("a category (the field or a (?P<category>…) group) is only for bag formats (kind B)")
        return self


class CodesConfig(_Strict):
    # The organisation's MAC key: a file of hex digits or raw bytes, at least 16 bytes; with it the
    # cart checks signed codes (WS1) and labels it makes are signed.  None: no MAC checked.
    mac_key_file: Path | None = None
    # Refuse our codes without a MAC: switch on once every label in use has been reprinted signed.
    require_mac: bool = False
    external: tuple[ExternalCodeConfig, ...] = ()  # tried in order, after our own format

    @field_validator("mac_key_file")
    @classmethod
    def _key(cls, v: Path | None) -> Path | None:
        if v is not None:
            try:
                codes.load_mac_key(v)
            except CodeError as exc:
                raise ValueError(str(exc)) from exc
        return v

    @field_validator("require_mac")
    @classmethod
    def _needs_key(cls, v: bool, info: ValidationInfo) -> bool:
        if v and "mac_key_file" in info.data and info.data["mac_key_file"] is None:  # absent: its own error
            raise ValueError("require_mac = true needs codes.mac_key_file")
        return v

    @field_validator("external")
    @classmethod
    def _unique(cls, v: tuple[ExternalCodeConfig, ...]) -> tuple[ExternalCodeConfig, ...]:
        names = [e.name for e in v]
        dup = sorted({n for n in names if names.count(n) > 1 or n == codes.SOURCE})
        if dup:
            raise ValueError(f"format names must be unique and not {codes.SOURCE!r}: {', '.join(dup)}")
        return v

    def book(self, org: str) -> codes.CodeBook:
        """The cart's code book; reads the key file again (CodeError if it went away since start-up)."""
        key = codes.load_mac_key(self.mac_key_file) if self.mac_key_file else None
        formats = [codes.ExternalFormat(e.name, codes.compile_pattern(e.pattern), e.kind, e.category)
                   for e in self.external]
        return codes.CodeBook(org, key=key, require_mac=self.require_mac, external=formats)


class PrinterConfig(_Strict):
    """The label printer (edge.printer); no ``url``: the cart has none and prints nothing."""

    url: str | None = Field(None, description="tcp://host:9100, usblp:///dev/usb/lp0 or "
                                              "serial:///dev/ttyUSB0?baud=9600; none = no printer")
    language: Literal["tspl", "zpl", "escpos"] = "tspl"
    dpi: Literal[203, 300] = 203
    cjk: Literal["font", "bitmap"] | None = None  # Chinese text: none = the language's default (edge.printer)
    # Ask the printer before each job (paper out, head open); false for printers that never answer
    # (many usblp clones), which otherwise fail every job with "打印机无响应".
    status: bool = True
    timeout_s: float = Field(1.0, gt=0, le=10)  # s the printer gets to answer: they answer at once or never
    medical_mm: tuple[float, float] = (100.0, 70.0)  # medical-waste label, width × height (mm)
    industrial_mm: tuple[float, float] = (100.0, 100.0)  # HJ 1276 label: at least 100×100 mm up to 50 L containers

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        from edge.errors import PrinterError
        from edge.printer import parse_url

        if v is not None:
            try:
                parse_url(v)
            except PrinterError as exc:
                raise ValueError(str(exc)) from exc
        return v

    @field_validator("medical_mm", "industrial_mm")
    @classmethod
    def _size(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(30 <= side <= 300 for side in v):
            raise ValueError("label size: width and height in mm, each 30-300")
        return v

    @field_validator("industrial_mm")
    @classmethod
    def _hj1276(cls, v: tuple[float, float]) -> tuple[float, float]:
        if min(v) < 100:
            raise ValueError("HJ 1276 labels are at least 100×100 mm")
        return v


class WorkflowConfig(_Strict):
    """The round's rules and the labels the cart prints (edge.workflow.Limits)."""

    org_name: str = ""  # the institution's name printed on labels (产生单位); empty: the org code
    round_max_h: float = Field(4.0, gt=0, le=48)  # a round open longer is warned about (routes have fixed times)
    storage_overdue_h: float = Field(48.0, gt=0)  # handed over longer ago at storage-in = overdue (48 h rule)
    tolerance_g: int = Field(50, ge=0)  # re-weigh deviation always allowed (g): above a cart scale's division
    tolerance_pct: int = Field(5, ge=0, le=100)  # ... or this share of the expected weight, if larger
    max_bag_kg: float = Field(60.0, gt=0, le=1000)  # one bag heavier is refused: cart scales are <= 60 kg
    # Nurses who may confirm with a PIN: person id -> hash from `wastecart edge hash-pin`.
    pins: dict[str, str] = {}

    @field_validator("pins")
    @classmethod
    def _hashes(cls, v: dict[str, str]) -> dict[str, str]:
        from edge import pins

        for person, hashed in v.items():
            try:
                wire.check_id(person, "person id")
                pins.check_hash_text(hashed)
            except (ValueError, wire.ContractError) as exc:
                raise ValueError(f"{person}: {exc}") from exc
        return v

    def limits(self) -> workflow.Limits:
        return workflow.Limits(round_max_s=int(self.round_max_h * 3600),
                               storage_overdue_s=int(self.storage_overdue_h * 3600),
                               tolerance_g=self.tolerance_g, tolerance_pct=self.tolerance_pct,
                               max_bag_g=int(self.max_bag_kg * 1000))


class ActuatorConfig(_Strict):
    """The scale slide-out (edge.actuator): none, simulated, or an H-bridge + end stops on GPIO."""

    kind: Literal["none", "sim", "gpio"] = "none"
    forward_pin: int | None = Field(None, ge=0, le=53)  # BCM numbers
    backward_pin: int | None = Field(None, ge=0, le=53)
    extended_pin: int | None = Field(None, ge=0, le=53)  # end stop closed when the platform is out
    retracted_pin: int | None = Field(None, ge=0, le=53)
    travel_s: float = Field(1.0, gt=0, le=30)  # sim only: how long the simulated slide takes
    timeout_s: float = Field(5.0, gt=0, le=60)  # no end stop within this: motor off, fault

    @model_validator(mode="after")
    def _pins(self) -> ActuatorConfig:
        if self.kind == "gpio":
            missing = [n for n in ("forward_pin", "backward_pin", "extended_pin", "retracted_pin")
                       if getattr(self, n) is None]
            if missing:
                raise ValueError(f"kind = \"gpio\" needs {', '.join(missing)}")
            used = [self.forward_pin, self.backward_pin, self.extended_pin, self.retracted_pin]
            if len(set(used)) < len(used):
                raise ValueError(f"the four pins must differ (got {used})")
        return self


class KioskConfig(_Strict):
    """The kiosk page the cart serves to its touch screen's Chromium (edge.kiosk)."""

    enabled: bool = True
    host: str = "127.0.0.1"  # localhost: the screen is on the cart; nothing else should tap it
    port: int = Field(8088, ge=0, le=65535)  # the kiosk unit opens 8088 (edge.kiosk.KIOSK_PORT); 0 = free


class EdgeConfig(_Strict):
    org: str = Field(description="organisation code: the MQTT site level and the org in our QR codes")
    cart: str = Field(description="this cart's device id")
    data: Path = Field(description="folder for the ledger and the cart's key")
    broker: str = "mqtt://127.0.0.1:1883"
    clock: Literal["auto", "ntp", "rtc", "unsynced"] = "auto"
    # Below this much free space (MB) on the data folder's disk new handovers are refused with a
    # clear message, so the ledger and its WAL always have room to record acks and finish commits.
    min_free_mb: int = Field(64, ge=0)
    scale: ScaleConfig = ScaleConfig()
    camera: CameraConfig = CameraConfig()
    uplink: UplinkConfig = UplinkConfig()
    codes: CodesConfig = CodesConfig()
    printer: PrinterConfig = PrinterConfig()
    workflow: WorkflowConfig = WorkflowConfig()
    actuator: ActuatorConfig = ActuatorConfig()
    kiosk: KioskConfig = KioskConfig()

    @field_validator("org", "cart")
    @classmethod
    def _topic_safe(cls, v: str) -> str:
        try:
            return wire.check_id(v, "id")
        except wire.ContractError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("broker")
    @classmethod
    def _broker(cls, v: str) -> str:
        try:
            wire.broker_address(v)
        except wire.ContractError as exc:
            raise ValueError(str(exc)) from exc
        return v

    @model_validator(mode="after")
    def _retention(self) -> EdgeConfig:
        """At start-up the cart rebuilds which bags it carries from its own records; synced ones are
        purged after retention_days, so they must outlive a bag's stay on the cart and in storage."""
        if self.uplink.retention_days * 24 < 2 * self.workflow.storage_overdue_h:
            raise ValueError(f"uplink.retention_days ({self.uplink.retention_days:g}) must cover at least twice "
                             f"workflow.storage_overdue_h ({self.workflow.storage_overdue_h:g} h): a restarted "
                             "cart would forget bags still on it")
        return self

    @model_validator(mode="after")
    def _label_fits(self) -> EdgeConfig:
        """Lay out the longest label this cart prints now: a label size its text cannot fit would
        otherwise fail every print on the ward."""
        if self.printer.url is None:
            return self
        from edge import labels
        from edge.errors import LabelError

        sample = labels.MedicalLabel(
            code=f"WS1.B.{self.org}.P00000000000.I.AAAAAA.00", org_name=self.workflow.org_name or self.org,
            department="D" * 12, category="PATHOLOGICAL", weight_g=59_999, produced_at=datetime(2026, 12, 31, 23, 59))
        try:
            labels.layout(sample, self.printer.dpi, self.printer.medical_mm)
        except LabelError as exc:
            w, h = self.printer.medical_mm
            raise ValueError(f"printer.medical_mm {w:g}×{h:g} with workflow.org_name: {exc}") from exc
        return self
