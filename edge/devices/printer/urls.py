"""Printer URLs: which schemes there are and what each one's URL must look like.  Pure, no I/O.

``tcp://host[:9100]``, ``usblp:///dev/usb/lp0``, ``serial:///dev/ttyUSB0?baud=9600``.  The settings
check a URL here when the config is loaded; ``transports`` opens one (and a test keeps the two
lists of schemes equal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from edge.errors import PrinterError

TCP_PORT = 9100  # raw "JetDirect"/AppSocket port
SERIAL_BAUD = 9600  # the usual factory setting of serial label printers


@dataclass(frozen=True)
class Target:
    """A parsed printer URL."""

    url: str
    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""
    baud: int = SERIAL_BAUD


def _tcp_target(url: str) -> Target:
    p = urlsplit(url)
    try:
        port = p.port or TCP_PORT
    except ValueError as exc:
        raise PrinterError("printer.url_port", url=url) from exc
    if not p.hostname or p.path not in ("", "/") or p.query:
        raise PrinterError("printer.url_tcp", url=url)
    return Target(url, "tcp", host=p.hostname, port=port)


def _device_target(url: str) -> Target:
    p = urlsplit(url)
    path = unquote(p.path)
    if p.netloc or not path.startswith("/dev/"):
        raise PrinterError("printer.url_device", url=url, scheme=p.scheme)
    query = dict(parse_qsl(p.query, keep_blank_values=True))
    allowed = {"baud"} if p.scheme == "serial" else set()
    if set(query) - allowed:
        raise PrinterError("printer.url_params", url=url, unknown=", ".join(sorted(set(query) - allowed)),
                           known=", ".join(sorted(allowed)) or "-")
    baud = SERIAL_BAUD
    if "baud" in query:
        if not query["baud"].isdigit() or int(query["baud"]) <= 0:
            raise PrinterError("printer.url_baud", url=url)
        baud = int(query["baud"])
    return Target(url, p.scheme, path=path, baud=baud)


# scheme -> its URL parser, in the order the schemes are offered
SCHEMES: dict[str, Callable[[str], Target]] = {
    "tcp": _tcp_target,
    "usblp": _device_target,
    "serial": _device_target,
}


def parse_url(url: str) -> Target:
    """Check a printer URL without connecting (the settings' validator uses this); PrinterError says why."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError as exc:
        raise PrinterError("printer.url_bad", url=url, reason=str(exc)) from exc
    if scheme not in SCHEMES:
        raise PrinterError("printer.url_scheme", url=url, schemes=", ".join(SCHEMES))
    return SCHEMES[scheme](url)
