"""Signed messages (edge.wire.signed): what a peer without the key can send is refused, with a reason,
and nothing else than ``ContractError`` ever comes out of opening a payload."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import wire

GW = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
BOOT = "0190c000-0000-7000-8000-000000000001"
RID = "0190c000-0000-7000-8000-000000000002"


def ack(upto: int = 3) -> dict[str, Any]:
    return wire.ack_body(upto, "a" * 64, [RID])


def opened(payload: bytes, kinds: tuple[str, ...] = ("ack", "reject"), site: str = "H1",
           cart: str = "C1") -> tuple[str, dict[str, Any]]:
    return wire.open_message(payload, kinds=kinds, site=site, cart=cart, keys=[GW.public_key()])


def test_a_signed_ack_opens_with_the_gateways_key() -> None:
    payload = wire.sign_message("ack", "H1", "C1", ack(), GW)
    assert opened(payload) == ("ack", ack())
    rotated = wire.open_message(payload, kinds=["ack"], site="H1", cart="C1",
                                keys=[OTHER.public_key(), GW.public_key()])  # key rotation: a list
    assert rotated[1]["upto_seq"] == 3


@pytest.mark.parametrize(("payload", "why"), [
    (wire.sign_message("ack", "H1", "C1", ack(), OTHER), "does not verify"),
    (wire.sign_message("ack", "H1", "C2", ack(), GW), "arrived on H1/C1"),       # another cart's ack
    (wire.sign_message("ack", "H2", "C1", ack(), GW), "arrived on H1/C1"),       # another site's
    (wire.sign_message("cmd", "H1", "C1", wire.command_body("resend", BOOT, 1, {"from_seq": 2}), GW),
     "was expected"),                                                           # a command on the ack topic
    (json.dumps({"upto_seq": 2147483647, "ids": []}).encode(), "not a signed message"),  # the old, unsigned form
    (b"\x00\xff" * 10, "not JSON"),
    (b"[" * 5000 + b"]" * 5000, "not"),
    (b'{"v": NaN}', "not JSON"),
    (b"x" * (wire.MESSAGE_MAX + 1), "more than"),
])
def test_what_a_peer_without_the_key_sends_is_refused_with_a_reason(payload: bytes, why: str) -> None:
    with pytest.raises(wire.ContractError, match=why):
        opened(payload)


def test_a_tampered_body_or_signature_does_not_verify() -> None:
    msg = json.loads(wire.sign_message("ack", "H1", "C1", ack(), GW))
    msg["body"]["upto_seq"] = 4
    with pytest.raises(wire.ContractError, match="does not verify"):
        opened(wire.canonical(msg))
    msg = json.loads(wire.sign_message("ack", "H1", "C1", ack(), GW))
    msg["sig"] = "not base64!"
    with pytest.raises(wire.ContractError, match="base64"):
        opened(wire.canonical(msg))


@pytest.mark.parametrize(("kind", "body"), [
    ("ack", {"upto_seq": 2**70, "upto_hash": "a" * 64, "ids": []}),
    ("ack", {"upto_seq": -1, "upto_hash": "a" * 64, "ids": []}),
    ("ack", {"upto_seq": True, "upto_hash": "a" * 64, "ids": []}),
    ("ack", {"upto_seq": 1, "upto_hash": "a" * 64, "ids": [RID] * 1001}),
    ("cmd", {"name": "resend", "boot_id": BOOT, "counter": 0, "args": {"from_seq": 2}}),
    ("cmd", {"name": "resend", "boot_id": BOOT, "counter": 1, "args": {"from_seq": 2**63}}),
    ("cmd", {"name": "reboot", "boot_id": BOOT, "counter": 1, "args": {}}),
    ("status", {"state": "online", "boot_id": BOOT, "seq_head": 2**70}),
    ("telemetry", {"at": "x", "backlog": 10**20, "oldest_unsent_s": None, "disk_free_mb": 1}),
    ("reject", {"id": RID, "seq": 1, "reason": "BORED", "detail": "", "payload_sha256": "b" * 64}),
    ("reject", {"id": RID, "seq": 1, "reason": "FORGED", "detail": ""}),  # names no bytes
])
def test_every_number_is_bounded_before_anything_signs_or_opens_it(kind: str, body: dict[str, Any]) -> None:
    with pytest.raises(wire.ContractError):
        wire.sign_message(kind, "H1", "C1", body, GW)
    forged = {"v": 1, "kind": kind, "site": "H1", "cart": "C1", "body": body, "sig": "AAAA"}
    with pytest.raises(wire.ContractError, match=f"{kind} body"):  # refused on its bounds, before the signature
        wire.open_message(wire.canonical(forged), kinds=[kind], site="H1", cart="C1", keys=[GW.public_key()])


def test_each_kind_round_trips() -> None:
    bodies = {
        "reject": wire.reject_body(RID, 7, "FORGED", "signature does not verify", "b" * 64),
        "cmd": wire.command_body("time", BOOT, 2**53 - 1, {"utc_ms": 1_800_000_000_000}),
        "cmd_result": wire.cmd_result_body("resend", BOOT, 4, "refused", "stale counter"),
        "status": {"state": "offline", "boot_id": BOOT, "seq_head": 0},
        "telemetry": {"at": "2026-12-07T10:00:00+08:00", "backlog": 0, "oldest_unsent_s": None, "disk_free_mb": 5},
    }
    for kind, body in bodies.items():
        assert wire.open_message(wire.sign_message(kind, "H1", "C1", body, GW), kinds=[kind], site="H1",
                                 cart="C1", keys=[GW.public_key()]) == (kind, body)


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=300),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                              lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                              max_leaves=20).map(lambda o: json.dumps(o).encode())))
def test_opening_garbage_only_ever_says_contract_error(payload: bytes) -> None:
    with pytest.raises(wire.ContractError):
        opened(payload)
