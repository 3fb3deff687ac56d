"""The one paho client set-up that the cart's uplink and the gateway's ingest share.

Both want the same things of paho, learned the hard way (DESIGN §3): callback API v2, MQTT 3.1.1,
a persistent session (``clean_session=False``: acks and commands wait in the broker while a peer
is away), Nagle off (a ~40 ms stall per hop otherwise), TLS for ``mqtts://``, a bounded reconnect
back-off, and ``connect_async`` + ``loop_start`` so a process may start before its broker.
What differs is configured: the client id, the in-flight window, a will, manual acks.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire

KEEPALIVE_S = 30  # s between PINGREQs: a dead peer is noticed (and its will published) within ~45 s
RECONNECT_MIN_S = 1  # s: paho doubles the delay after each failed attempt ...
RECONNECT_MAX_S = 30  # ... up to this, so a broker back after an outage is found within 30 s


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
    """A configured paho client and where it connects; ``ContractError`` for a bad broker URL."""

    def __init__(self, broker: str, client_id: str, *, window: int | None = None, will: Will | None = None,
                 manual_ack: bool = False) -> None:
        self.broker = broker
        self.host, self.port, tls = wire.broker_address(broker)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                  protocol=mqtt.MQTTv311, manual_ack=manual_ack)
        if tls:
            self.client.tls_set()
        if window is not None:
            self.client.max_inflight_messages_set(window)
        if will is not None:
            self.client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        self.client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
        self.client.on_socket_open = tcp_nodelay

    def start(self) -> None:
        """Connect in the background; paho keeps retrying until ``stop()``."""
        self.client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
