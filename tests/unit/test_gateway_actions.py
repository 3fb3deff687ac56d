"""Operators' actions on a real SqliteStore: release, discard, retry — each with its audit row in the
same transaction (none for a refusal) — the audit log's triggers, and ``verify_audit`` catching an
edit made by someone who dropped the triggers with the file in hand."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge import wire
from gateway.ingest import KeyRing, checked
from gateway.release import release
from gateway.store import Rejected, SqliteStore
from gateway.store.actions import NotFound, payload_view
from tests.unit.test_gateway_ingest_worker import TOPIC, chain
from tests.unit.test_wire import KEY

NOW = 1_700_000_000.0
KEYS = KeyRing({"CART-01": wire.public_key_text(KEY.public_key())}, None)
NO_KEYS = KeyRing({}, None)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "g.sqlite")
    try:
        yield s
    finally:
        s.close()


def quarantine_unknown(store: SqliteStore, env: dict[str, object]) -> int:
    """A genuine record of a cart the gateway has no key for: quarantined UNKNOWN_CART; its row id."""
    refused = checked(TOPIC, wire.encode(env), NO_KEYS)
    assert isinstance(refused, Rejected) and refused.kind == "UNKNOWN_CART"
    store.store_batch([refused], NOW)
    return store.quarantined(1)[0].id


def dead_letter(store: SqliteStore, env: dict[str, object]) -> str:
    """``env`` stored, one attempt, refused for good by the platform."""
    rec = checked(TOPIC, wire.encode(env), KEYS)
    assert not isinstance(rec, Rejected)
    store.store_batch([rec], NOW)
    store.mark_forwarding(rec.id, NOW)
    store.mark_dead(rec.id, "HTTP 422: bad department")
    return rec.id


def actions(store: SqliteStore) -> list[tuple[str, str, str, str]]:
    return [(e["user"], e["action"], e["target"], e["reason"]) for e in reversed(store.audit_entries())]


def test_release_with_a_user_stores_the_record_and_audits_it_in_one_go(store: SqliteStore) -> None:
    env = chain(1)[0]
    qid = quarantine_unknown(store, env)
    refused = release(store, NO_KEYS, qid, NOW, user="ops")  # still no key: nothing changes, nothing audited
    assert not refused.ok and refused.key == "action_release_fails" and "UNKNOWN_CART" in refused.args["why"]
    assert actions(store) == []
    done = release(store, KEYS, qid, NOW + 1, user="ops")
    assert done.ok and done.key == "action_q_released", done.text
    assert store.chain_state(str(env["id"])) == "verified" and store.upto_seq("CART-01") == 1
    assert actions(store) == [("ops", "quarantine.release", f"quarantine {qid}", "")]
    detail = json.loads(store.audit_entries(1)[0]["detail"])
    assert detail == {"record": env["id"], "cart": "CART-01", "seq": 1, "outcome": "stored"}
    item = store.quarantine_item(qid)
    assert item is not None and item["state"] == "released" and "by ops" in item["release_note"]
    again = release(store, KEYS, qid, NOW + 2, user="ops")
    assert (again.ok, again.key) == (False, "action_refused_released")
    assert store.discard_quarantined(qid, "ops", "late", NOW).key == "action_refused_released"
    assert len(store.audit_entries()) == 1


def test_a_store_refusal_inside_the_release_changes_nothing_and_audits_nothing(store: SqliteStore) -> None:
    qid = quarantine_unknown(store, chain(1)[0])
    other = checked(TOPIC, wire.encode(chain(1)[0]), KEYS)  # another seq 1 of the same cart, stored first
    assert not isinstance(other, Rejected)
    store.store_batch([other], NOW)
    done = release(store, KEYS, qid, NOW, user="ops")
    assert (done.ok, done.key) == (False, "action_release_refused") and "REPLAYED" in done.args["why"]
    item = store.quarantine_item(qid)
    assert item is not None and item["state"] == "waiting" and store.audit_entries() == []


def test_discard_needs_a_reason_and_happens_once(store: SqliteStore) -> None:
    qid = quarantine_unknown(store, chain(1)[0])
    with pytest.raises(ValueError, match="reason"):
        store.discard_quarantined(qid, "ops", "   ", NOW)
    with pytest.raises(ValueError, match="reason"):
        store.discard_quarantined(qid, "ops", "x" * 501, NOW)
    with pytest.raises(NotFound):
        store.discard_quarantined(999, "ops", "gone", NOW)
    done = store.discard_quarantined(qid, "ops", " a test payload from the bench ", NOW)
    assert done.ok and done.key == "action_q_discarded"
    item = store.quarantine_item(qid)
    assert item is not None
    assert (item["state"], item["discarded_by"], item["discard_reason"]) == ("discarded", "ops",
                                                                              "a test payload from the bench")
    assert store.discard_quarantined(qid, "ops", "twice", NOW).key == "action_refused_discarded"
    assert not release(store, KEYS, qid, NOW, user="ops").ok  # a discarded payload is never released
    assert actions(store) == [("ops", "quarantine.discard", f"quarantine {qid}", "a test payload from the bench")]
    assert [r["id"] for r in store.quarantine_list("discarded")] == [qid]
    assert store.quarantine_list("waiting") == []
    assert [r["id"] for r in store.quarantine_list(None, kind="UNKNOWN_CART", cart="CART-01")] == [qid]
    assert store.quarantine_list(None, kind="FORGED") == []
    with pytest.raises(ValueError, match="state"):
        store.quarantine_list("lost")  # type: ignore[arg-type]


def test_retry_puts_a_dead_letter_back_due_now_and_keeps_its_history(store: SqliteStore) -> None:
    record_id = dead_letter(store, chain(1)[0])
    assert [r["id"] for r in store.dead_list("waiting")] == [record_id]
    assert store.dead_list("waiting")[0]["reason"] == "HTTP 422: bad department"
    done = store.retry_dead(record_id, "ops", NOW + 5)
    assert done.ok and done.key == "action_dead_retried"
    state = store.record_state(record_id)
    assert state is not None
    assert (state["forward_state"], state["attempts"], state["next_attempt_at"]) == ("stored", 1, NOW + 5)
    assert [p.id for p in store.due_for_forwarding(NOW + 5, 10)] == [record_id]
    entry = store.audit_entries(1)[0]
    assert (entry["action"], entry["target"]) == ("dead.retry", f"record {record_id}")
    assert json.loads(entry["detail"])["last_error"] == "HTTP 422: bad department"
    refused = store.retry_dead(record_id, "ops", NOW)  # stored, not dead
    assert (refused.ok, refused.key, refused.args["state"]) == (False, "action_dead_refused_state", "stored")
    with pytest.raises(NotFound):
        store.retry_dead("no-such-record", "ops", NOW)
    assert len(store.audit_entries()) == 1


def test_a_discarded_dead_letter_stays_in_the_ledger_and_its_alert_stays(store: SqliteStore) -> None:
    record_id = dead_letter(store, chain(1)[0])
    with pytest.raises(ValueError, match="reason"):
        store.discard_dead(record_id, "ops", "", NOW)
    done = store.discard_dead(record_id, "ops", "the platform will never take it", NOW)
    assert done.ok
    assert store.dead_list("waiting") == [] and [r["id"] for r in store.dead_list("discarded")] == [record_id]
    state = store.record_state(record_id)
    assert state is not None and state["forward_state"] == "dead"  # kept, not deleted
    assert store.retry_dead(record_id, "ops", NOW).key == "action_dead_refused_discarded"
    assert [(a["kind"], a["resolved_at"]) for a in store.alerts()] == [("RECORD_REJECTED", None)]
    assert actions(store)[-1] == ("ops", "dead.discard", f"record {record_id}", "the platform will never take it")


def test_the_audit_log_refuses_changes_and_verify_catches_an_edit(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "g.sqlite")
    try:
        for n in range(3):
            store.append_audit("root", "key.enroll", f"cart C{n}", "new cart", {"n": n}, now=NOW + n)
        assert store.verify_audit() == (3, None)
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "g.sqlite") as db:
        for sql in ("UPDATE audit_log SET user = 'mallory' WHERE id = 2", "DELETE FROM audit_log WHERE id = 2"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(sql)
        db.execute("DROP TRIGGER audit_log_no_update")  # someone with the file in hand
        db.execute("UPDATE audit_log SET reason = 'nothing to see' WHERE id = 2")
    store = SqliteStore(tmp_path / "g.sqlite")
    try:
        assert store.verify_audit() == (2, 2)
    finally:
        store.close()


def test_audited_rolls_the_row_back_when_its_change_fails(store: SqliteStore) -> None:
    def fail() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.audited("root", "key.enroll", "cart C", "", {}, NOW, fail)
    assert store.audit_entries() == []
    store.audited("root", "key.enroll", "cart C", "", {"key": "k"}, NOW, lambda: None)
    assert actions(store) == [("root", "key.enroll", "cart C", "")]


def test_a_kept_prefix_is_shown_as_json_text_or_hex() -> None:
    assert payload_view(b'{"a": 1}', 8) == {"kept": 8, "size": 8, "truncated": False, "format": "json",
                                            "text": '{\n  "a": 1\n}'}
    cut = '{"部门": "ICU"'.encode()[:8]  # ends inside a character: still text, marked as cut
    view = payload_view(cut, 100)
    assert (view["format"], view["truncated"], view["kept"]) == ("text", True, 8)
    hexed = payload_view(b"\x00<script>", 9)
    assert hexed["format"] == "hex" and "<" not in hexed["text"] and hexed["text"].startswith("00000000  00 3c")
    assert payload_view(b'{"a": "\x1b[2J"}', 13)["format"] == "hex"  # a terminal escape is not shown as text


def test_the_lists_page_back_newest_first(store: SqliteStore) -> None:
    ids = [quarantine_unknown(store, chain(1)[0]) for _ in range(5)]
    first = store.quarantine_list("waiting", limit=2)
    assert [r["id"] for r in first] == ids[:-3:-1]
    older = store.quarantine_list("waiting", limit=2, before_id=first[-1]["id"])
    assert [r["id"] for r in older] == [ids[2], ids[1]]
    dead = [dead_letter(store, env) for env in chain(3)]
    page = store.dead_list("waiting", limit=2)
    assert [r["id"] for r in page] == dead[:0:-1]
    assert [r["id"] for r in store.dead_list("waiting", limit=2, before=page[-1]["cursor"])] == [dead[0]]
