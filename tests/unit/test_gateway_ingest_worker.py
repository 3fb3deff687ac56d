"""The ingest worker's stop: what paho handed over before ``stop()`` is committed, not dropped.

No broker here (the link points at a closed port and keeps retrying in the background): messages
are handed over through the paho callback, as paho's network thread would.  ``batch_max=1`` makes
every message its own batch, so a stop that arrives while several wait in the queue must drain
them all in the worker's last pass (``edge.worker.Worker`` alone would end after the current one).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge import wire
from gateway.config import GatewayConfig, IngestConfig
from gateway.ingest import Ingest, KeyRing
from gateway.store import SqliteStore
from tests.unit.test_wire import KEY, handover_body

TOPIC = "wc/v1/H1/CART-01/record"


def chain(n: int) -> list[dict[str, Any]]:
    """Records 1..n of CART-01, each linked to the one before."""
    out: list[dict[str, Any]] = []
    prev = wire.GENESIS_HASH
    for seq in range(1, n + 1):
        env = wire.seal(wire.unsigned_envelope(
            record_id=wire.uuid7(), cart="CART-01", seq=seq, created_at="2026-11-28T10:00:00.123+08:00",
            clock=wire.Clock("ntp", 5), rtype="handover", body=handover_body(), prev_hash=prev), KEY)
        prev = env["hash"]
        out.append(env)
    return out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def message(mid: int, payload: bytes) -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(mid=mid, topic=TOPIC.encode())
    msg.payload = payload
    msg.qos = 1
    return msg


def test_stop_commits_every_message_handed_over_before_it(tmp_path: Path) -> None:
    config = GatewayConfig(broker=f"mqtt://127.0.0.1:{closed_port()}", data=tmp_path, platform="http://127.0.0.1:9",
                           client_id="test-gw-drain", ingest=IngestConfig(batch_max=1, linger_ms=0))
    store = SqliteStore(config.db_path)
    ingest = Ingest(config, store, KeyRing({"CART-01": wire.public_key_text(KEY.public_key())}, None),
                    on_commit=lambda: None, on_change=lambda: None, key=KEY)
    records = chain(5)
    try:
        ingest.start()
        for mid, env in enumerate(records, start=1):
            ingest._on_message(ingest._client, None, message(mid, wire.encode(env)))
        ingest.stop()
        ingest._on_message(ingest._client, None, message(99, wire.encode(chain(1)[0])))  # after stop: not taken
        counts = store.counts()
        assert (counts["received"], counts["stored"], counts["quarantined"]) == (5, 5, 0)
        assert store.upto_seq("CART-01") == 5
        stats = ingest.stats()
        assert (stats["ingest_batches"], stats["ingest_errors"]) == (5, 0)
    finally:
        store.close()
