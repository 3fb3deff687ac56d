"""The gateway's configuration: one TOML file, typed and frozen, checked before anything starts.

Loaded with ``wastecart.config.load(GatewayConfig, path, overrides)``, which reports a bad or
unknown key by its dotted path (``forward.backoff_max_s: …``).  Nothing is clamped: a value out of
range stops the process.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge import wire
from edge.tls import TlsSettings
from gateway.alerts.settings import AlertsConfig, HistoryConfig, WebhookConfig
from gateway.console.settings import ConsoleConfig
from gateway.ledger.settings import LedgerConfig


class IngestConfig(BaseModel):
    """How received records are grouped into one SQLite transaction (DESIGN §3: batching ~5x)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Messages per transaction (count).  The broker's in-flight window for our session usually
    # caps a batch well below this; larger only helps after a backlog.
    batch_max: int = Field(500, ge=1, le=65_535)
    # How long to wait for more messages before committing a partial batch (ms): a few ms
    # buys large batches under load and costs a cart almost nothing in ack latency.
    linger_ms: int = Field(5, ge=0, le=10_000)
    # Shortest interval between two resend requests to one cart (s).  A cart restarts its drain
    # from the asked seq, so asking again while it is still re-sending only causes duplicates;
    # an open gap is asked for again after this long even if the cart sends nothing new.
    resend_interval_s: float = Field(10.0, gt=0, le=3_600)
    # Processes that verify signatures and the schema (0 = in the ingest thread).  Verification is
    # CPU-bound and holds the GIL, so a gateway with spare cores scales with this; one per core.
    workers: int = Field(0, ge=0, le=64)


class ForwardConfig(BaseModel):
    """How stored records are pushed to the platform: timeouts, retries, rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # One platform request (s): long enough for a slow platform, short enough that a hung
    # connection does not hold the outbox back.
    timeout_s: float = Field(10.0, gt=0, le=600)
    # First retry delay (s); doubles per failed attempt up to backoff_max_s.
    backoff_base_s: float = Field(1.0, gt=0, le=3_600)
    # Longest wait between two attempts of one record (s): a platform outage of hours must
    # not push the next attempt to days.
    backoff_max_s: float = Field(300.0, gt=0, le=86_400)
    # Full jitter (delay drawn from 0..backoff): many gateways/records do not retry in lockstep.
    jitter: bool = True
    # Attempts before a record is dead-lettered on temporary errors (count); None = retry
    # forever, the default, because a record must not be dropped for a long outage.
    max_attempts: int | None = Field(None, ge=1)
    # Platform requests per second (token bucket; burst of the same size): platforms throttle.
    rate_per_s: float = Field(50.0, gt=0, le=10_000)
    # Records read from the store per forwarding pass (count).
    batch: int = Field(100, ge=1, le=10_000)
    # Consecutive failed attempts (HTTP 408/429/5xx) after which the whole outbox pauses for the
    # backoff instead of trying every due record (count).  A connection failure or timeout
    # pauses it at once: the platform is down, and trying 10,000 records against it is noise.
    breaker_failures: int = Field(3, ge=1, le=1_000)

    @model_validator(mode="after")
    def _backoff_order(self) -> ForwardConfig:
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError(f"backoff_max_s ({self.backoff_max_s}) is below backoff_base_s "
                             f"({self.backoff_base_s})")
        return self


class QuarantineConfig(BaseModel):
    """How much of what the gateway refuses it keeps: a flood of bad payloads costs a fixed amount."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Bytes kept of one refused payload (the rest is known by its size and SHA-256).  A whole
    # record is usually 1-3 kB; a record cut here can still be read but no longer released.
    keep_bytes: int = Field(4_096, ge=256, le=1_048_576)
    # Bytes the whole quarantine may hold (payload prefixes + topics + reasons); beyond it the oldest
    # rows are dropped and counted (quarantine_dropped).  64 MiB: ~15,000 full rows.
    budget_bytes: int = Field(64 * 1024 * 1024, ge=65_536, le=64 * 1024 ** 3)

    @model_validator(mode="after")
    def _budget_holds_rows(self) -> QuarantineConfig:
        if self.budget_bytes < 16 * self.keep_bytes:
            raise ValueError(f"budget_bytes ({self.budget_bytes}) must hold at least 16 rows of keep_bytes "
                             f"({self.keep_bytes})")
        return self


class GatewayConfig(BaseModel):
    """Everything one gateway process needs; see ``deploy/`` for a commented example."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str = "mqtt://127.0.0.1:1883"
    # MQTT client id: also the name of our persistent session on the broker, so keep it stable
    # across restarts (records that arrive while we are down wait in that session).
    client_id: str = Field("wc-gateway-1", min_length=1, max_length=64)
    data: Path  # folder for gateway.sqlite
    platform: str  # base URL of the platform API; records go to {platform}/records
    console: ConsoleConfig = ConsoleConfig()  # [console]: the operator console (gateway.console)
    alerts: AlertsConfig = AlertsConfig()  # [alerts]: thresholds of the fleet's alert rules
    webhook: WebhookConfig = WebhookConfig()  # [webhook]: where alert notifications go
    history: HistoryConfig = HistoryConfig()  # [history]: telemetry history retention
    ledger: LedgerConfig = LedgerConfig()  # [ledger]: the ledger's time zone, exports (gateway.ledger)
    cart_keys: dict[str, str] = {}  # cart id -> base64 Ed25519 public key (wire.public_key_text)
    cart_keys_dir: Path | None = None  # folder of <CART>.pub files holding the same base64 text
    ingest: IngestConfig = IngestConfig()
    forward: ForwardConfig = ForwardConfig()
    quarantine: QuarantineConfig = QuarantineConfig()
    # [tls]: the site CA, the gateway's client certificate (`wastecart pki issue --role gateway`) and
    # key, for an mqtts:// broker that requires client certificates.  None: mqtt://, or mqtts://
    # checked against the system's CA store without a client certificate.
    tls: TlsSettings | None = None

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        wire.broker_address(value)  # ContractError is a ValueError: pydantic reports it by key
        return value

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"platform URL {value!r}: expected http(s)://host[:port][/path]")
        return value.rstrip("/")

    @field_validator("cart_keys")
    @classmethod
    def _cart_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for cart, key in value.items():
            wire.check_id(cart, "cart id")
            wire.load_public_key(key)
        return value

    @field_validator("cart_keys_dir")
    @classmethod
    def _keys_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        return value

    @model_validator(mode="after")
    def _tls_needs_mqtts(self) -> GatewayConfig:
        if self.tls is not None and not wire.broker_address(self.broker)[2]:
            raise ValueError(f"[tls] is set but broker is {self.broker!r}: use mqtts:// (the broker's TLS listener), "
                             "or remove [tls]")
        return self

    @property
    def db_path(self) -> Path:
        return self.data / "gateway.sqlite"

    @property
    def key_path(self) -> Path:
        return self.data / "gateway.key"  # the gateway's identity (gateway.identity)
