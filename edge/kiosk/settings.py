"""The kiosk server's settings: where it listens, which names it answers to, and how much it
lets a client hold (the ``[kiosk]`` section of the cart's config is one of these plus ``pin``).

The limits exist because the kiosk is a network service like any other: a page in the screen's
browser is the only client it expects, so anything that opens many sockets, sends slowly or
arrives by a foreign name is refused rather than served (``edge.kiosk.guard``,
``edge.kiosk.connections``).
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

KIOSK_PORT = 8088  # the deployed port: deploy/systemd/wastecart-kiosk.service points Chromium at it
WILDCARDS = ("", "0.0.0.0", "::")  # bind addresses meaning "every interface": not a name to answer to
_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")  # a host name or an IPv4 address, lower case


class KioskSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    host: str = "127.0.0.1"  # localhost: the screen is on the cart; nothing else should tap it
    port: int = Field(KIOSK_PORT, ge=0, le=65535)  # the kiosk unit opens 8088; 0 = a free port
    # Names the page may be opened by besides localhost, 127.0.0.1, [::1] and ``host`` itself
    # (e.g. the cart's hostname when a supervisor's tablet opens it): any other Host header is a
    # DNS-rebinding attempt and gets 421; a state-changing request from another Origin gets 403.
    hosts: tuple[str, ...] = ()
    max_connections: int = Field(32, ge=4, le=1024)  # open sockets at once (a page uses 2-3); more: 503
    max_streams: int = Field(4, ge=1, le=64)  # event streams at once (one per open page); the oldest closes first
    read_timeout_s: float = Field(10.0, gt=0, le=300)  # a request's head and body must arrive within this

    @field_validator("hosts")
    @classmethod
    def _plain_names(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        """Names as the Host header carries them, without port or scheme; compared in lower case."""
        out = tuple(h.strip().strip("[]").lower() for h in hosts)
        for given, name in zip(hosts, out, strict=True):
            if not (_NAME.fullmatch(name) or _is_ipv6(name)):
                raise ValueError(f"{given!r} is not a host name or address (no scheme, port or wildcard)")
        return out

    @model_validator(mode="after")
    def _streams_leave_room(self) -> KioskSettings:
        """Each stream holds a connection: streams may not take every one (the page also fetches)."""
        if self.max_streams >= self.max_connections:
            raise ValueError(f"max_streams ({self.max_streams}) must be below max_connections "
                             f"({self.max_connections}): each event stream holds a connection")
        return self


def _is_ipv6(name: str) -> bool:
    try:
        ipaddress.IPv6Address(name)
    except ValueError:
        return False
    return True
