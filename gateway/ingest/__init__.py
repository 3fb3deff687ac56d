"""Ingest: records and device status from the broker -> checks -> one commit per batch -> acks.

Rooms:
    checks.py  pure checks (topic, schema, cart, seal; status and telemetry), KeyRing, and the
               process-pool helpers: no MQTT, no threads
    worker.py  ``Ingest``: the MQTT link, batching, the commit (message by message when a batch
               fails: poison isolation), PUBACKs
    replies.py ``Replies``: signed acks, rejects and commands (resend pacing, time offers)
"""

from gateway.ingest.checks import (
    DEVICE_PAYLOAD_MAX,
    KeyRing,
    check_all,
    check_device,
    check_in_pool,
    check_message,
    checked,
    device_rejected,
    init_pool_worker,
    is_record_topic,
)
from gateway.ingest.replies import Replies, ResendPacer
from gateway.ingest.worker import SUBSCRIPTIONS, Ingest

__all__ = [
    "DEVICE_PAYLOAD_MAX",
    "SUBSCRIPTIONS",
    "Ingest",
    "KeyRing",
    "Replies",
    "ResendPacer",
    "check_all",
    "check_device",
    "check_in_pool",
    "check_message",
    "checked",
    "device_rejected",
    "init_pool_worker",
    "is_record_topic",
]
