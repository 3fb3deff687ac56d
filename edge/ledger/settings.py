"""The uplink's settings: one frozen model, the ``[uplink]`` section of the cart's config as it is.

Light on purpose (pydantic only, no paho): ``edge.config`` takes it as a section, the fleet
simulator and the tests construct it directly, and nobody converts between two copies.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UplinkSettings(BaseModel):
    """How the ledger drains to the broker; bad values stop the cart with the key's dotted path."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
