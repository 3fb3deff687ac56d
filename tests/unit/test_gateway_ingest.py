"""Pure ingest checks: which alert kind each bad record raises, device messages, resend pacing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from gateway.errors import IngestError
from gateway.ingest import KeyRing, ResendPacer, check_device, check_message, checked
from gateway.store import Rejected
from tests.unit.test_wire import KEY, sealed

TOPIC = "wc/v1/H1/CART-01/record"
KEYS = KeyRing({"CART-01": wire.public_key_text(KEY.public_key())}, None)


def kind_of(topic: str, payload: bytes) -> tuple[str, str | None]:
    with pytest.raises(IngestError) as info:
        check_message(topic, payload, KEYS)
    return info.value.kind, info.value.subject


def test_a_genuine_record_passes_with_its_prev_hash() -> None:
    env = sealed(seq=1)
    got = check_message(TOPIC, wire.encode(env), KEYS)
    assert (got.id, got.cart, got.site, got.seq, got.prev_hash) == (env["id"], "CART-01", "H1", 1, wire.GENESIS_HASH)


def test_forged_signature_is_forged() -> None:
    env = wire.seal({k: v for k, v in sealed().items() if k not in ("hash", "sig")}, Ed25519PrivateKey.generate())
    assert kind_of(TOPIC, wire.encode(env)) == ("FORGED", env["id"])


def test_rehashed_but_unsigned_change_is_forged_and_plain_change_is_altered() -> None:
    env = sealed()
    altered: dict[str, Any] = {**env, "body": {**env["body"], "department": "D99"}}
    assert kind_of(TOPIC, wire.encode(altered)) == ("ALTERED", env["id"])
    rehashed = {**altered, "hash": wire.record_hash(altered)}
    assert kind_of(TOPIC, wire.encode(rehashed))[0] == "FORGED"


def test_unknown_cart() -> None:
    env = wire.seal({**{k: v for k, v in sealed().items() if k not in ("hash", "sig")}, "cart": "CART-XX"}, KEY)
    assert kind_of("wc/v1/H1/CART-XX/record", wire.encode(env)) == ("UNKNOWN_CART", env["id"])


@pytest.mark.parametrize(("topic", "payload"), [
    (TOPIC, b"\xff\xfe garbage"),
    (TOPIC, b'{"schema": "wc.record/1"}'),
    ("wc/v1/H1/bad+cart/record", b"{}"),
    ("elsewhere/x", b"{}"),
    ("wc/v1/H1/CART-02/record", None),  # envelope and topic disagree
])
def test_unreadable_is_malformed(topic: str, payload: bytes | None) -> None:
    assert kind_of(topic, payload or wire.encode(sealed()))[0] == "MALFORMED"


BOOT = "0190a7a0-0000-7000-8000-000000000001"


def signed(kind: str, body: dict[str, Any], key: Ed25519PrivateKey = KEY, cart: str = "CART-01") -> bytes:
    return wire.sign_message(kind, "H1", cart, body, key)


def test_device_messages_are_verified_with_the_cart_key() -> None:
    status = check_device("wc/v1/H1/CART-01/status",
                          signed("status", {"state": "online", "boot_id": BOOT, "seq_head": 0}), KEYS)
    assert (status.cart, status.leaf, status.data["boot_id"]) == ("CART-01", "status", BOOT)
    body = {"at": "2026-01-01T00:00:00Z", "backlog": 2, "oldest_unsent_s": None, "disk_free_mb": 10}
    tele = check_device("wc/v1/H1/CART-01/telemetry", signed("telemetry", body), KEYS)
    assert (tele.leaf, tele.data) == ("telemetry", body)
    result = check_device("wc/v1/H1/CART-01/cmd_result",
                          signed("cmd_result", wire.cmd_result_body("time", BOOT, 3, "done")), KEYS)
    assert (result.leaf, result.data["counter"]) == ("cmd_result", 3)


@pytest.mark.parametrize(("topic", "payload", "kind"), [
    ("wc/v1/H1/CART-01/status", b"online", "MALFORMED"),
    ("wc/v1/H1/CART-01/status", json.dumps({"state": "online", "boot_id": BOOT, "seq_head": 0}).encode(),
     "MALFORMED"),  # unsigned
    ("wc/v1/H1/CART-01/status", signed("status", {"state": "online", "boot_id": BOOT, "seq_head": 0},
                                       Ed25519PrivateKey.generate()), "FORGED"),
    ("wc/v1/H1/CART-01/status", signed("status", {"state": "online", "boot_id": BOOT, "seq_head": 0},
                                       cart="CART-02"), "MALFORMED"),  # signed for another cart's topic
    ("wc/v1/H1/CART-01/telemetry", signed("status", {"state": "online", "boot_id": BOOT, "seq_head": 0}),
     "MALFORMED"),  # a status on the telemetry topic
    ("wc/v1/H1/CART-01/status", b'{"v": 1, "kind": "status", "site": "H1", "cart": "CART-01", "sig": "",'
     b' "body": {"state": "online", "boot_id": "' + BOOT.encode() + b'", "seq_head": 1180591620717411303424}}',
     "MALFORMED"),  # seq_head 2**70: out of bounds before anything else
    ("wc/v1/H1/CART-01/telemetry", b"{" * 50_000, "MALFORMED"),
    ("wc/v1/H1/CART-01/status", b'{"seq_head": ' + b"9" * 5000 + b"}", "MALFORMED"),
    ("wc/v1/H1/CART-XX/status", signed("status", {"state": "online", "boot_id": BOOT, "seq_head": 0},
                                       cart="CART-XX"), "UNKNOWN_CART"),  # a made-up cart
])
def test_device_messages_that_do_not_verify_are_refused(topic: str, payload: bytes, kind: str) -> None:
    with pytest.raises(IngestError) as info:
        check_device(topic, payload, KEYS)
    assert info.value.kind == kind


def test_a_refused_record_of_a_known_cart_carries_its_reject() -> None:
    env = sealed(seq=4)
    altered = {**env, "body": {**env["body"], "department": "D99"}}
    got = checked(TOPIC, wire.encode(altered), KEYS)
    assert isinstance(got, Rejected)
    assert (got.kind, got.reject, got.subject, got.seq) == ("ALTERED", "ALTERED", env["id"], 4)
    no_clock = {k: v for k, v in env.items() if k != "clock"}
    got = checked(TOPIC, wire.encode(no_clock), KEYS)
    assert isinstance(got, Rejected) and (got.reject, got.subject, got.seq) == ("SCHEMA", env["id"], 4)
    huge = {**env, "seq": 2**63}  # out of bounds: no seq to name, no reject
    got = checked(TOPIC, wire.encode(huge), KEYS)
    assert isinstance(got, Rejected) and got.reject is None and "above" in got.reason
    unknown = wire.seal({**{k: v for k, v in env.items() if k not in ("hash", "sig")}, "cart": "CART-XX"},
                        Ed25519PrivateKey.generate())
    got = checked("wc/v1/H1/CART-XX/record", wire.encode(unknown), KEYS)
    assert isinstance(got, Rejected) and (got.kind, got.reject) == ("UNKNOWN_CART", None)
    got = checked(TOPIC, b"\x00 garbage", KEYS)
    assert isinstance(got, Rejected) and got.reject is None


def test_resend_pacer_asks_each_cart_at_most_once_per_interval() -> None:
    now = [0.0]
    pacer = ResendPacer(10.0, lambda: now[0])
    assert pacer.allow("A") and pacer.allow("B")
    assert not pacer.allow("A")
    now[0] = 9.9
    assert not pacer.allow("A")
    now[0] = 10.0
    assert pacer.allow("A") and not pacer.allow("A")


def test_worker_processes_check_exactly_like_the_ingest_thread() -> None:
    """The ``ingest.workers`` path: real spawned processes, same verdicts, same order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from gateway import ingest

    good = [wire.encode(sealed(seq=i)) for i in range(1, 40)]
    env = sealed(seq=99)
    bad = [b"garbage", wire.encode({**env, "body": {**env["body"], "department": "D99"}})]
    pairs = [(TOPIC, p) for p in good[:20] + bad + good[20:]]
    keys = {"CART-01": wire.public_key_text(KEY.public_key())}
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"),
                             initializer=ingest.init_pool_worker, initargs=(keys, None)) as pool:
        merged = ingest.check_in_pool(pool, 2, pairs)
    assert merged == ingest.check_all(pairs, KEYS)
    assert [type(x).__name__ for x in merged].count("Rejected") == 2
    assert [getattr(x, "kind", None) for x in merged[20:22]] == ["MALFORMED", "ALTERED"]
