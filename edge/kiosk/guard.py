"""Who the kiosk answers: the names it may be reached by, the origins that may change its state,
the shape of a body it will parse, and the count of everything it refused.

A web page elsewhere cannot read or tap the kiosk by itself — the browser's same-origin rule stops
it — except by **DNS rebinding** (its own name made to resolve to 127.0.0.1, so the browser sees
one origin) or by a **cross-site POST** (a form or a ``no-cors`` fetch, whose answer it never
reads).  The first arrives with a foreign ``Host``: refused with 421 on every path, GET or POST
(any other method is the stdlib's 501, which touches nothing).  The second arrives with a foreign
``Origin`` (or ``Sec-Fetch-Site: cross-site``): refused with 403.  The rules, and why:

- ``Host`` (port ignored, case-insensitive) must be ``localhost``, ``127.0.0.1``, ``::1``, the
  configured ``host`` unless a wildcard, or one of ``hosts``.  A request *without* ``Host`` is
  refused (400, as RFC 9112 demands of HTTP/1.1; HTTP/1.0 too): every client the cart has —
  Chromium, curl in the kiosk unit's health probe, Python's http.client — sends one, so a
  positive check costs nothing, and letting a nameless request through would rest the defence on
  "browsers always send Host" instead of on the check.
- A POST's ``Origin``, when sent, must be ``http(s)://<the request's own Host>``: an allowed name
  *and* the same port (another local web service on another port is another origin and may not
  post taps); ``null`` (sandboxed frames, file: pages) is refused.  A POST without ``Origin`` is
  taken only when ``Sec-Fetch-Site`` is absent, ``same-origin`` or ``none``: browsers send
  ``Origin`` on every POST, so a missing one means a local tool (curl, the tests), which sends
  no ``Sec-Fetch-*`` either.  ``Sec-Fetch-Site: cross-site`` or ``same-site`` is refused outright.
- A body nested deeper than ``MAX_JSON_DEPTH`` is refused before it is parsed (the parser
  recurses: 4,000 ``[`` were a RecursionError, a 500).

Every refusal is counted by kind (``REFUSED_KINDS``, shown in ``/healthz``) and logged at most
once per kind every ``LOG_EVERY_S`` with the number held back, so a flood is not a flood of lines.
Pure checks (headers in, a reason out) plus one thread-safe counter; no I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from email.message import Message
from typing import Literal, get_args
from urllib.parse import urlsplit

from edge.kiosk.contract import Refused
from edge.kiosk.settings import WILDCARDS, KioskSettings
from edge.ledger.trust import Throttle

log = logging.getLogger(__name__)

RefusalKind = Literal["host", "origin", "busy", "timeout", "streams_closed"]
REFUSED_KINDS: tuple[RefusalKind, ...] = get_args(RefusalKind)
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")  # always allowed: the screen's own Chromium
MAX_JSON_DEPTH = 4  # levels of [ and {: a body is one flat object of strings (1); room for a nested mistake
LOG_EVERY_S = 10.0  # s: at most one log line per refusal kind this often (an attacker could flood the log)
SAFE_FETCH_SITES = ("same-origin", "none")  # Sec-Fetch-Site values a POST without Origin may carry
DEFAULT_PORTS = {"http": 80, "https": 443}  # an Origin's schemes (https: behind a TLS proxy), and their ports


def split_host(value: str) -> tuple[str, int | None]:
    """``Host``'s name (lower case, IPv6 without brackets) and port (None if absent or not a number)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:  # a bare name, or a bare IPv6 address (malformed as a Host, compared as it is)
        name, port = value, ""
    return name, int(port) if port.isascii() and port.isdigit() else None


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if ``raw`` opens more than ``limit`` arrays/objects inside one another; a linear scan
    of the bytes that skips strings (UTF-8 never puts a quote or a bracket inside a character)."""
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


class Guard:
    """The kiosk's allow-lists and refusal counter, built once from its settings; thread-safe."""

    def __init__(self, settings: KioskSettings, clock: Callable[[], float] = time.monotonic) -> None:
        own = () if settings.host.strip().lower() in WILDCARDS else (settings.host.strip("[]").lower(),)
        self.names = frozenset((*LOCAL_NAMES, *own, *settings.hosts))
        self._clock = clock
        self._lock = threading.Lock()  # guards the fields below (every connection's thread refuses)
        self._counts: dict[RefusalKind, int] = dict.fromkeys(REFUSED_KINDS, 0)
        self._throttle = Throttle(LOG_EVERY_S)

    def host_refusal(self, headers: Message) -> tuple[int, str] | None:
        """(status, reason) if the request's ``Host`` is not one of ours, else None."""
        hosts = headers.get_all("Host") or []
        if len(hosts) != 1:
            return 400, "missing Host header" if not hosts else "more than one Host header"
        name, _ = split_host(hosts[0])
        if name in self.names:
            return None
        return 421, f"this kiosk does not answer to the host {hosts[0][:100]!r}"

    def origin_refusal(self, headers: Message) -> str | None:
        """Why a state-changing request may not come from where it says it comes from, else None
        (call after ``host_refusal``: the Origin is compared with the request's own Host)."""
        site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
        if site in ("cross-site", "same-site"):
            return f"refused a {site} request"
        origin = headers.get("Origin")
        if origin is None:
            return None if site in ("", *SAFE_FETCH_SITES) else f"no Origin on a {site} request"
        shown = origin[:100]
        if origin.strip().lower() == "null":
            return "refused a request from an opaque origin ('null')"
        try:
            parts = urlsplit(origin.strip())
            port = parts.port
        except ValueError:
            return f"malformed Origin {shown!r}"
        default = DEFAULT_PORTS.get(parts.scheme)
        host_name, host_port = split_host(headers.get("Host", ""))
        same = (default is not None and (parts.hostname or "") == host_name and host_name in self.names
                and (port or default) == (host_port or default) and not parts.path.strip("/"))
        return None if same else f"refused a request from the origin {shown!r}"

    def refuse(self, kind: RefusalKind, peer: str, reason: str) -> None:
        """Count a refusal; log it unless this kind was logged less than ``LOG_EVERY_S`` ago."""
        with self._lock:
            self._counts[kind] += 1
            held = self._throttle.allow(kind, self._clock())
        if held is not None:
            more = f" (and {held} more since the last line)" if held else ""
            log.info("kiosk refused (%s) %s: %s%s", kind, peer, reason, more)

    def counts(self) -> Refused:
        with self._lock:
            c = self._counts
            return {"host": c["host"], "origin": c["origin"], "busy": c["busy"], "timeout": c["timeout"],
                    "streams_closed": c["streams_closed"]}
