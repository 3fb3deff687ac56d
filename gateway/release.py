"""An operator's release of a quarantined record: check the kept payload again, store it if it passes.

What changed since it was refused is usually the key ring: the cart's key was enrolled (or
corrected) after its records arrived.  A record that passes now is stored like any other (chain,
high-water mark) and forwarded by the running gateway's outbox; the cart learns of it with its next
ack.  A payload kept only as a prefix (larger than ``quarantine.keep_bytes``) cannot be checked
again: the cart must send it again.  Safe next to a running gateway (one SQLite transaction).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway.errors import GatewayError, IngestError
from gateway.ingest.checks import KeyRing, check_message, is_record_topic
from gateway.store import GatewayRepository


@dataclass(frozen=True)
class Released:
    ok: bool
    text: str  # what happened, or why not, for the operator


def release(store: GatewayRepository, keys: KeyRing, quarantine_id: int, now: float | None = None) -> Released:
    """Re-check quarantined payload ``quarantine_id``; store it if it passes.  GatewayError if there
    is no such row."""
    row = store.quarantine_row(quarantine_id)
    if row is None:
        raise GatewayError(f"no quarantined payload #{quarantine_id}")
    if row.released_at is not None:
        return Released(False, f"#{quarantine_id} was released already")
    if not is_record_topic(row.topic):
        return Released(False, f"#{quarantine_id} arrived on {row.topic!r}: only records can be released")
    if row.truncated:
        return Released(False, f"#{quarantine_id}: only {len(row.payload)} of its {row.size} bytes were kept, so it "
                               "cannot be checked again; the cart must send it again")
    try:
        rec = check_message(row.topic, row.payload, keys)
    except IngestError as exc:
        return Released(False, f"#{quarantine_id} still fails its checks ({exc.kind}): {exc}")
    outcome = store.release(quarantine_id, rec, time.time() if now is None else now)
    if outcome.status == "rejected":
        return Released(False, f"#{quarantine_id} passes its checks but the store refuses it ({outcome.kind}): "
                               f"{outcome.reason}")
    return Released(True, f"#{quarantine_id} released: record {rec.id} (cart {rec.cart} seq {rec.seq}) "
                          f"{outcome.status}; it is forwarded with the cart's other records")
