"""Pure ingest checks: which alert kind each bad record raises, device messages, resend pacing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from gateway.errors import IngestError
from gateway.ingest import KeyRing, ResendPacer, check_device, check_message
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


def test_device_messages() -> None:
    status = check_device("wc/v1/H1/CART-01/status", json.dumps({"state": "online", "boot_id": "b"}).encode())
    assert (status.cart, status.leaf, status.data["boot_id"]) == ("CART-01", "status", "b")
    tele = check_device("wc/v1/H1/CART-01/telemetry", b'{"backlog": 2}')
    assert (tele.leaf, tele.data) == ("telemetry", {"backlog": 2})
    for topic, payload in [("wc/v1/H1/CART-01/status", b"online"), ("wc/v1/H1/CART-01/status", b'{"state": "x"}'),
                           ("wc/v1/H1/CART-01/telemetry", b"[1]"), ("wc/v1/H1/CART-01/telemetry", b"{" * 50_000)]:
        with pytest.raises(IngestError):
            check_device(topic, payload)


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
