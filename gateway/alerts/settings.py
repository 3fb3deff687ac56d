"""``[alerts]``, ``[webhook]`` and ``[history]``: thresholds of the fleet's alert rules, where
notifications go, and how long telemetry history is kept.  The defaults are also those of
``deploy/prometheus/`` rules (one set of thresholds for the console and for Prometheus)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class AlertsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    offline_min: float = Field(5.0, gt=0)  # a cart offline (its will, or silence) longer than this
    backlog_max: int = Field(500, ge=1)  # records unsent on a cart
    oldest_unsent_min: float = Field(30.0, gt=0)  # its oldest unsent record older than this
    clock_offset_s: float = Field(60.0, gt=0)  # |clock offset| above this, or the clock unsynced
    disk_free_mb: int = Field(500, ge=0)  # free space on the cart's data disk below this
    peripheral_faulty_min: float = Field(10.0, gt=0)  # a scale/camera/printer/actuator not "ok" longer than this
    # A cart whose status says online but from which nothing (status, telemetry, record) arrived for
    # this long (min) is offline too: a half-open connection the broker has not noticed.  Carts report
    # telemetry every 30 s by default, so 15 min of silence is no hiccup.
    silence_min: float = Field(15.0, gt=0)


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = None  # POST a JSON notification per alert change here; None: no webhook
    # One POST (s): a receiver that hangs must not hold the queue for long.
    timeout_s: float = Field(5.0, gt=0, le=300)
    # First retry delay (s), doubled per failed attempt of the same notification up to backoff_max_s.
    backoff_base_s: float = Field(1.0, gt=0, le=3_600)
    # Longest wait between two attempts (s): a receiver down for hours is tried again within minutes.
    backoff_max_s: float = Field(300.0, gt=0, le=86_400)
    # Notifications queued at most (rows); beyond, the oldest are dropped and counted (webhook_dropped):
    # a receiver down for days must not grow the database without limit.
    queue_max: int = Field(10_000, ge=1, le=1_000_000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"webhook URL {value!r}: expected http(s)://host[:port][/path]")
        return value

    @model_validator(mode="after")
    def _backoff_order(self) -> WebhookConfig:
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError(f"backoff_max_s ({self.backoff_max_s}) is below backoff_base_s ({self.backoff_base_s})")
        return self


class HistoryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    raw_hours: float = Field(24.0, gt=0)  # telemetry kept as received
    minute_days: float = Field(7.0, gt=0)  # then as per-minute aggregates
    hour_days: float = Field(90.0, gt=0)  # then as per-hour aggregates, then dropped

    @model_validator(mode="after")
    def _tiers_in_order(self) -> HistoryConfig:
        if not self.raw_hours <= self.minute_days * 24 <= self.hour_days * 24:
            raise ValueError(f"expected raw_hours ({self.raw_hours:g} h) <= minute_days ({self.minute_days:g} d)"
                             f" <= hour_days ({self.hour_days:g} d): each tier is kept longer than the finer one")
        return self
