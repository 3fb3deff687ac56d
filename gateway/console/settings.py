"""``[console]``: where the operator console listens and how it lets people in."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

CONSOLE_PORT = 8090  # `wastecart gateway run` serves the console here unless told otherwise


class LoginLimits(BaseModel):
    """Wrong passwords: a back-off after a few, then a lockout; per user name and per client address."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def for_addresses(self) -> LoginLimits:
        """The same limits with the address counts in place of the name counts."""
        return self.model_copy(update={"free_failures": self.address_free_failures,
                                       "lockout_after": self.address_lockout_after})

    free_failures: int = Field(3, ge=1, le=100)  # wrong passwords in a row before any wait
    backoff_s: float = Field(1.0, gt=0, le=3600)  # s: first wait after them, doubling each time
    backoff_max_s: float = Field(30.0, gt=0, le=86_400)  # s: the longest back-off
    lockout_after: int = Field(10, ge=1, le=1000)  # failures in a row that lock the name (or address)
    lockout_min: float = Field(15.0, gt=0, le=10_080)  # min: how long a lockout lasts
    # One address is many people behind a hospital's NAT, so it gets more tries than one name.
    address_free_failures: int = Field(10, ge=1, le=10_000)
    address_lockout_after: int = Field(30, ge=1, le=10_000)
    tracked: int = Field(10_000, ge=10, le=1_000_000)  # names/addresses remembered; the oldest go first


class ConsoleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"  # behind a TLS reverse proxy in production; loopback unless opened on purpose
    port: int | None = Field(None, ge=0, le=65535)  # None: no console (library use, tests); 0: a free port
    # Behind https (a TLS proxy): the session cookie is sent only over https (Secure).
    secure_cookie: bool = False
    session_hours: float = Field(12.0, gt=0, le=24 * 30)  # h: a login lasts one shift, then log in again
    login: LoginLimits = LoginLimits()
    # A file holding the bearer token /metrics asks for (one line); None: /metrics is open like /healthz.
    metrics_token_file: Path | None = None
    sse_clients: int = Field(32, ge=1, le=1000)  # live fleet streams at once; one more is answered 503
