"""The one paho client set-up that the cart's uplink and the gateway's ingest share.

Both want the same things of paho, learned the hard way (DESIGN §3): callback API v2, MQTT 3.1.1,
a persistent session (``clean_session=False``: acks and commands wait in the broker while a peer
is away), Nagle off (a ~40 ms stall per hop otherwise), TLS for ``mqtts://`` (the site CA and this
client's certificate from ``edge.tls``, or the system's CA store), a bounded reconnect back-off, and
``connect_async`` + ``loop_start`` so a process may start before its broker.
What differs is configured: the client id, the in-flight window, a will, manual acks.

Why a connection fails is said here, once.  paho's network thread swallows every connect error and
retries in silence, and with TLS 1.3 the broker's verdict on our certificate only arrives after the
handshake, as an alert on the first read, followed by a disconnect like any other.  So the link
watches its own TLS sockets (``edge.tls.context(on_error=…)``), paho's ``on_connect_fail`` and the
CONNACK, and logs one line per distinct cause (what failed, as whom, with which files) until it
connects again, then one line saying so; paho keeps retrying with its back-off.  An attempt that
ends without saying why (an EOF or reset where the alert was due) is followed by one bare TLS
handshake to the broker, which gets the alert the attempt lost.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
from dataclasses import dataclass
from typing import Any, cast

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge import tls as tlslib
from edge import wire

log = logging.getLogger(__name__)

KEEPALIVE_S = 30  # s between PINGREQs: a dead peer is noticed (and its will published) within ~45 s
RECONNECT_MIN_S = 1  # s: paho doubles the delay after each failed attempt ...
RECONNECT_MAX_S = 30  # ... up to this, so a broker back after an outage is found within 30 s
# s for the diagnostic handshake after a connection that ended without saying why, and for the
# broker's verdict on our certificate after it (an alert within a round trip; a timeout means none)
PROBE_S = 2.0


def tcp_nodelay(_client: object, _userdata: object, sock: object) -> None:
    """paho ``on_socket_open`` hook: turn Nagle off.  paho leaves it on, so a small packet sent
    right after another (an ack publish after a PUBACK) waits for the peer's delayed ACK: a
    ~40 ms stall per hop: commit→platform p50 was 36 ms before this hook, 10 ms after (make bench)."""
    setsockopt = getattr(sock, "setsockopt", None)  # a websocket transport wraps the socket
    if setsockopt is not None:
        setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True)
class Will:
    """What the broker publishes for this client when its connection dies."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class Link:
    """A configured paho client and where it connects; ``ContractError`` for a bad broker URL (or
    TLS settings with a plaintext one), ``edge.tls.TlsError`` for TLS files that cannot be loaded."""

    def __init__(self, broker: str, client_id: str, *, window: int | None = None, will: Will | None = None,
                 manual_ack: bool = False, tls: tlslib.TlsSettings | None = None) -> None:
        self.broker = broker
        self.host, self.port, secure = wire.broker_address(broker)
        if tls is not None and not secure:
            raise wire.ContractError(f"TLS settings are given but the broker URL is {broker}: use "
                                     f"mqtts://{self.host}:{self.port} (the broker's TLS listener)")
        self.secure, self.tls = secure, tls
        # Who the broker sees: the certificate's CN (its user name), else the client id.
        self.identity = tlslib.identity(tls) if tls is not None else client_id
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                  protocol=mqtt.MQTTv311, manual_ack=manual_ack)
        self._context: ssl.SSLContext | None = None
        if secure:
            self._context = tlslib.context(tls, on_error=self._tls_failed)
            self.client.tls_set_context(self._context)
        if window is not None:
            self.client.max_inflight_messages_set(window)
        if will is not None:
            self.client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        self.client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
        self.client.on_socket_open = self._socket_open
        self.client.on_socket_close = self._socket_close
        self.client.on_connect_fail = self._connect_failed
        self.failures = 0  # connection attempts that failed since start (wait_failures)
        self._changed = threading.Condition()
        self._reported: list[str] = []  # the causes logged since the last connection, in order
        self._said = False  # this attempt's failure is already explained (a TLS alert, a CONNACK refusal)
        self._answered = False  # this attempt got a CONNACK (accepted or not)
        self._stopping = False
        self._wrapped = False

    def start(self) -> None:
        """Connect in the background; paho keeps retrying until ``stop()``.  The caller's
        ``on_connect`` (set on ``client`` before this) still runs, after the link has seen the CONNACK."""
        if not self._wrapped:
            self._wrapped = True
            self.client.on_connect = _after(self._connack, self.client.on_connect)
        self.client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        # paho leaves its wake-up socket pair open until the client is garbage collected: in a cycle
        # with its callbacks, a collection that may finalize the sockets first and report them
        # unclosed.  Its thread has ended, so close them now (loop_start makes a new pair).
        self.client._reset_sockets(sockpair_only=True)

    def wait_failures(self, count: int, timeout: float) -> bool:
        """Block until ``count`` connection attempts have failed (True) or ``timeout`` passed."""
        with self._changed:
            return self._changed.wait_for(lambda: self.failures >= count, timeout=timeout)

    # why an attempt failed, logged once per cause (all on paho's thread) --------------------------

    def _where(self) -> str:
        if self.tls is None:
            return "(ca: the system's CA store, no client certificate)"
        return f"(ca {self.tls.ca}, cert {self.tls.cert})"

    def _report(self, cause: str, line: str, level: int = logging.ERROR) -> None:
        """Log ``line`` unless ``cause`` was logged since the last connection: a broker that keeps
        refusing us is one line, not one per retry, and two causes taking turns are two lines."""
        self._said = True
        if cause not in self._reported:
            self._reported.append(cause)
            log.log(level, "%s; retrying (back-off up to %d s)", line, RECONNECT_MAX_S)

    def _tls_failed(self, exc: ssl.SSLError) -> None:
        """``edge.tls`` hook: a TLS error that says why, in the handshake or the first read."""
        why = tlslib.failure(exc)
        self._report(why, f"TLS to broker {self.host}:{self.port} as {self.identity} failed: {why} {self._where()}")

    def _connect_failed(self, _c: mqtt.Client, _u: Any) -> None:
        """paho could not connect.  A TLS error that says why was reported by the socket; a TLS
        handshake cut short is probed; anything else (refused, unreachable, timed out) is a broker
        that is not there: a warning."""
        exc = sys.exc_info()[1]  # paho calls this inside its ``except OSError``
        self._fail()
        if not self._said:
            why = tlslib.failure(exc) if exc is not None else "connection failed"
            if self.secure and isinstance(exc, ssl.SSLError | ConnectionResetError | BrokenPipeError):
                self._explain(why, f"broker {self.host}:{self.port} ended the TLS handshake of {self.identity}: "
                                   f"{why} {self._where()}")
            else:
                self._report(why, f"cannot connect to broker {self.host}:{self.port}: {why}", logging.WARNING)
        self._said = False  # the attempt is over

    def _socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        self._said = self._answered = False
        tcp_nodelay(client, userdata, sock)

    def _socket_close(self, _c: mqtt.Client, _u: Any, _s: Any) -> None:
        """A connection ended.  Before any CONNACK it was an attempt that failed: the broker's TLS
        alert (already said), or the broker hung up without saying why (probed)."""
        if not (self._answered or self._stopping):
            self._fail()
            if not self._said:
                hint = "" if self.secure else " (is the port a TLS listener? then use mqtts://)"
                self._explain("closed", f"broker {self.host}:{self.port} closed the connection of {self.identity} "
                                        f"before answering it{hint}")
        self._said = False  # the attempt (or the connection) is over

    def _explain(self, cause: str, line: str) -> None:
        """A failure that does not say why: an EOF or a reset where the broker's alert was expected
        (it closes right after the alert, and a CONNECT we sent meanwhile turns that close into a
        reset that can discard the alert).  Ask once more with a bare handshake and a read, sending
        nothing, so the alert arrives; what it says is reported by the socket's hook."""
        if self._context is not None:
            try:
                with socket.create_connection((self.host, self.port), timeout=PROBE_S) as raw, \
                        self._context.wrap_socket(raw, server_hostname=self.host) as probe:
                    probe.recv(1)  # the alert, or a timeout: the broker waits for a CONNECT
            except OSError:
                pass  # a TLS error that says why has been reported; any other adds nothing
        if not self._said:
            self._report(cause, line)

    def _connack(self, rc: ReasonCode) -> None:
        self._answered = True
        if rc.is_failure:
            self._fail()
            self._report(str(rc), f"broker {self.host}:{self.port} refused {self.identity}: {rc}")
            return
        if self._reported:
            log.info("connected to broker %s:%s as %s again (was: %s)", self.host, self.port, self.identity,
                     "; ".join(self._reported))
        self._reported = []

    def _fail(self) -> None:
        with self._changed:
            self.failures += 1
            self._changed.notify_all()


def _after(first: Any, then: Any) -> mqtt.CallbackOnConnect:
    """An ``on_connect`` that lets the link see the CONNACK, then runs the caller's."""
    def on_connect(client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, rc: ReasonCode,
                   properties: Any) -> None:
        first(rc)
        if then is not None:
            cast(mqtt.CallbackOnConnect_v2, then)(client, userdata, flags, rc, properties)
    return on_connect
