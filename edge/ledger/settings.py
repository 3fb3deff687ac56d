"""The uplink's settings: one frozen model, the ``[uplink]`` section of the cart's config as it is.

Light on purpose (pydantic, ``edge.wire`` and ``edge.tls`` only, no paho): ``edge.config`` takes it as a section,
the fleet simulator and the tests construct it directly, and nobody converts between two copies.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge import wire
from edge.tls import TlsSettings


class UplinkSettings(BaseModel):
    """How the ledger drains to the broker; bad values stop the cart with the key's dotted path."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The gateways' Ed25519 public keys (base64, `wastecart gateway keygen` prints one): the cart
    # believes an ack, a reject or a command only when one of these signed it.  A list so a new
    # gateway key can be added before the old one is retired.  The cart agent needs at least one.
    gateway_keys: tuple[str, ...] = ()
    # QoS 1 messages in flight to the broker (paho's window).  20-100 is the measured sweet spot;
    # paho's 16-bit message ids make more than 65,535 impossible anyway.
    window: int = Field(100, ge=1, le=10_000)
    # Records published and not yet acknowledged by the gateway (its acks come per batch, so this
    # must cover a few batches to keep the pipe full); below paho's 65,535 message ids.
    max_unacked: int = Field(5000, ge=1, le=60_000)
    # No ack progress for this long: re-send from the first unsynced record (s).
    resend_after_s: float = Field(30.0, gt=0)
    # Records/s when draining a backlog after an outage (0 = as fast as the gateway acks): a fleet
    # coming back at once should not flatten the gateway; a day's backlog still drains in seconds.
    drain_rate: float = Field(500.0, ge=0)
    telemetry_s: float = Field(10.0, gt=0)  # period of the telemetry message (s)
    # Synced records are kept this many days on the cart, then purged (unsynced ones never are).
    retention_days: float = Field(30.0, gt=0)
    # [uplink.tls]: the site CA, this cart's certificate (CN = the cart id) and key, for an
    # mqtts:// broker that requires client certificates.  None: mqtt://, or mqtts:// checked
    # against the system's CA store without a client certificate.
    tls: TlsSettings | None = None

    @field_validator("gateway_keys")
    @classmethod
    def _keys(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for n, text in enumerate(v):
            try:
                wire.load_public_key(text)
            except wire.ContractError as exc:
                raise ValueError(f"[{n}]: {exc}") from exc
        if len(set(v)) < len(v):
            raise ValueError("the same key is listed twice")
        return v

    def public_keys(self) -> list[Ed25519PublicKey]:
        """The gateway keys, parsed (each was checked when the settings were made)."""
        return [wire.load_public_key(text) for text in self.gateway_keys]
