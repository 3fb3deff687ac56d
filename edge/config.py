"""The cart's configuration: one TOML file, validated at start-up (``wastecart.config.load``).

Unknown keys and bad values stop the process with the dotted key path; nothing is clamped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from edge import codes, wire
from edge.devices.printer.settings import PrinterSettings
from edge.devices.scales.protocols import PROTOCOLS
from edge.devices.scales.stability import StabilitySettings
from edge.kiosk.settings import KioskSettings
from edge.ledger.settings import UplinkSettings
from edge.pins import PinPolicy
from edge.roster import Roster
from edge.workflow.state import Limits


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScaleConfig(StabilitySettings):
    """The scale (edge.devices.scales): the port and protocol, plus the stability settings it is read with."""

    port: str | None = Field(None, description="serial URL or device path; none = no scale attached")
    protocol: str = "toledo"
    baud: int | None = Field(None, gt=0, description="none = the protocol's usual setting")

    @field_validator("protocol")
    @classmethod
    def _known(cls, v: str) -> str:
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
        """The cart's code book: reads the key file (CodeError naming it if it is missing or unusable)."""
        key = codes.load_mac_key(self.mac_key_file) if self.mac_key_file else None
        formats = [codes.ExternalFormat(e.name, codes.compile_pattern(e.pattern), e.kind, e.category)
                   for e in self.external]
        return codes.CodeBook(org, key=key, require_mac=self.require_mac, external=formats)


class WorkflowConfig(Limits):
    """The round's rules (``edge.workflow.Limits``, used as they are), the zone of every time the cart
    writes, and the PINs of people who may sign without their badge."""

    # Moved to [roster] org_name (the roster names the institution with everyone else); kept only to say so.
    org_name: str = ""
    # The zone of times in records, on labels and on the kiosk (an IANA name): they carry its offset.
    timezone: str = "Asia/Shanghai"
    # People who may sign with a PIN (nurses, keepers, supervisors …): person id -> hash from
    # `wastecart edge hash-pin`.  Each must be on the roster; the roster's roles still decide what they may sign.
    pins: dict[str, str] = Field(default_factory=dict)

    @field_validator("org_name")
    @classmethod
    def _moved(cls, v: str) -> str:
        if v:
            raise ValueError("moved: set the institution's name as [roster] org_name")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as Asia/Shanghai)") from exc
        return v

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


class ActuatorConfig(_Strict):
    """The scale slide-out (edge.devices.actuator): none, simulated, or an H-bridge + end stops on GPIO."""

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


class KioskConfig(KioskSettings):
    """The kiosk page the cart serves to its touch screen's Chromium (``edge.kiosk.settings``, used
    by the server as it is) and the limits on PINs typed there (``edge.pins.PinPolicy``)."""

    pin: PinPolicy = PinPolicy()


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
    uplink: UplinkSettings = UplinkSettings()  # edge.ledger.settings: the uplink takes it as it is
    codes: CodesConfig = CodesConfig()
    printer: PrinterSettings = PrinterSettings()
    workflow: WorkflowConfig = WorkflowConfig()
    # Everyone and everything the cart may meet (edge.roster): who may sign what, and their names.
    roster: Roster = Field(description="[roster]: staff badges with names and roles, departments, storage rooms, "
                                       "vehicles, carriers and receivers")
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
    def _tls_needs_mqtts(self) -> EdgeConfig:
        if self.uplink.tls is not None and not wire.broker_address(self.broker)[2]:
            raise ValueError(f"[uplink.tls] is set but broker is {self.broker!r}: use mqtts:// (the broker's TLS "
                             "listener), or remove [uplink.tls]")
        return self

    @model_validator(mode="after")
    def _retention(self) -> EdgeConfig:
        """At start-up the cart rebuilds which bags it carries from its own records; synced ones are
        purged after retention_days, so they must outlive a bag's stay on the cart and in storage."""
        stay_h = self.workflow.ward_max_h + self.workflow.storage_overdue_h
        if self.uplink.retention_days * 24 < 2 * stay_h:
            raise ValueError(f"uplink.retention_days ({self.uplink.retention_days:g}) must cover at least twice "
                             f"workflow.ward_max_h + workflow.storage_overdue_h ({stay_h:g} h): a restarted "
                             "cart would forget bags still on it")
        return self

    @model_validator(mode="after")
    def _pins_on_roster(self) -> EdgeConfig:
        unknown = sorted(p for p in self.workflow.pins if p not in self.roster.people)
        if unknown:
            raise ValueError(f"workflow.pins: {', '.join(unknown)} not in roster.people (a PIN signs as a person "
                             "the roster knows)")
        return self
