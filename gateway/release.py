"""Releasing a quarantined record: checked again (a record quarantined for an unknown cart passes once
the cart's key is enrolled), then stored like any other.

With a ``user`` (the console), the store's ``release_quarantined`` stores it, marks the row released
and writes the audit row ``quarantine.release`` in ONE transaction.  A refusal (still failing its
checks, a prefix only, already released or discarded, a store refusal) changes nothing and writes no
audit row: the operator reads why in the result.  Without a user (the CLI, run by whoever holds
the data folder) the release is not audited, as before.
"""

from __future__ import annotations

import time

from gateway.errors import GatewayError, IngestError
from gateway.ingest.checks import KeyRing, check_message, is_record_topic
from gateway.store import GatewayRepository
from gateway.store.actions import ActionResult

Released = ActionResult  # the name callers of release() know: ok, text (+ key, args for the console)


def release(store: GatewayRepository, keys: KeyRing, quarantine_id: int, now: float | None = None,
            user: str | None = None) -> Released:
    """Re-check quarantined payload ``quarantine_id``; store it if it passes.  GatewayError if there
    is no such row (``gateway.store.actions.NotFound`` with a user)."""
    row = store.quarantine_item(quarantine_id)
    if row is None:
        raise GatewayError(f"no quarantined payload #{quarantine_id}")
    qid = {"id": str(quarantine_id)}
    if row["state"] != "waiting":
        return Released(False, f"#{quarantine_id} was {row['state']} already", f"action_refused_{row['state']}", qid)
    if not is_record_topic(row["topic"]):
        return Released(False, f"#{quarantine_id} arrived on {row['topic']!r}: only records can be released",
                        "action_release_not_record", qid)
    if row["payload"]["truncated"]:
        return Released(False, f"#{quarantine_id}: only {row['kept']} of its {row['size']} bytes were kept, so it "
                               "cannot be checked again; the cart must send it again", "action_release_truncated",
                        {**qid, "kept": str(row["kept"]), "size": str(row["size"])})
    stored = store.quarantine_row(quarantine_id)
    if stored is None:  # dropped meanwhile by the quarantine's byte budget
        raise GatewayError(f"no quarantined payload #{quarantine_id}")
    try:
        rec = check_message(stored.topic, stored.payload, keys)
    except IngestError as exc:
        return Released(False, f"#{quarantine_id} still fails its checks ({exc.kind}): {exc}",
                        "action_release_fails", {**qid, "why": f"{exc.kind}: {exc}"})
    at = time.time() if now is None else now
    outcome = (store.release(quarantine_id, rec, at) if user is None
               else store.release_quarantined(quarantine_id, rec, at, user))
    if outcome.status == "rejected":
        return Released(False, f"#{quarantine_id} passes its checks but the store refuses it ({outcome.kind}): "
                               f"{outcome.reason}", "action_release_refused",
                        {**qid, "why": f"{outcome.kind}: {outcome.reason}"})
    return Released(True, f"#{quarantine_id} released: record {rec.id} (cart {rec.cart} seq {rec.seq}) "
                          f"{outcome.status}; it is forwarded with the cart's other records", "action_q_released",
                    {**qid, "record": rec.id, "cart": rec.cart, "seq": str(rec.seq), "outcome": outcome.status})
