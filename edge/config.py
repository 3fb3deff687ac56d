"""The cart's configuration: one TOML file, validated at start-up (``wastecart.config.load``).

Unknown keys and bad values stop the process with the dotted key path; nothing is clamped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge import wire
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
