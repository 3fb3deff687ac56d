"""Signed messages: everything but records that crosses the broker, in one form, signed by its sender.

The gateway signs acks, rejects and commands with its key; the cart signs its status, telemetry and
command results with its own.  A broker peer without a key can then fool nobody: a cart applies no
ack or command whose signature does not name one of its configured gateway keys, and the gateway
believes no status it cannot verify with the cart's key.

Form (canonical JSON, so both sides sign the same bytes)::

    {"v": 1, "kind": K, "site": S, "cart": C, "body": {...}, "sig": base64(Ed25519(canonical(all but sig)))}

``kind``, ``site`` and ``cart`` are inside the signature, so a message signed for one cart or one
purpose cannot be replayed on another topic; ``open_message`` also checks them against the topic it
arrived on.  Every body is checked against ``messages.schema.json`` — every number against its
bound — before its signature is even tried and long before anything uses it.

What binds a message to its moment (so a genuine one replayed later does nothing):
- an **ack** names ``upto_seq`` and the hash of the cart's record at that seq (``upto_hash``): an ack
  for another ledger, or for a seq the cart never published, matches nothing;
- a **command** names the cart's ``boot_id`` (from its birth message) and a ``counter`` the gateway
  keeps in its store: the cart runs a command only for its current boot and above the last counter;
- a **reject** names a record id and seq of the cart's own, and the SHA-256 of the bytes refused: the
  cart applies it only if those are the bytes it published (never to a synced record).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.wire.core import ContractError, canonical
from edge.wire.schema import validate_message_body

VERSION = 1
ACK_KIND, REJECT_KIND, CMD_KIND = "ack", "reject", "cmd"  # gateway -> cart
STATUS_KIND, TELEMETRY_KIND, CMD_RESULT_KIND = "status", "telemetry", "cmd_result"  # cart -> gateway
SIGNED_KINDS = (ACK_KIND, REJECT_KIND, CMD_KIND, STATUS_KIND, TELEMETRY_KIND, CMD_RESULT_KIND)
REJECT_REASONS = ("FORGED", "ALTERED", "MALFORMED", "SCHEMA")  # what re-sending cannot fix
MAX_SEQ = 2**53 - 1  # seqs and counters stay exact in every JSON reader (and fit SQLite's INTEGER)
MESSAGE_MAX = 64_000  # bytes of one signed message: an ack with 1,000 ids is ~40 kB
_FIELDS = {"v", "kind", "site", "cart", "body", "sig"}


def _signed_part(kind: str, site: str, cart: str, body: Mapping[str, Any]) -> bytes:
    return canonical({"v": VERSION, "kind": kind, "site": site, "cart": cart, "body": dict(body)})


def sign_message(kind: str, site: str, cart: str, body: Mapping[str, Any], key: Ed25519PrivateKey) -> bytes:
    """The payload of a signed message (raises ContractError for a body outside the contract)."""
    errors = validate_message_body(kind, body)
    if errors:
        raise ContractError(f"{kind} body: " + "; ".join(errors[:3]))
    sig = base64.b64encode(key.sign(_signed_part(kind, site, cart, body))).decode("ascii")
    return canonical({"v": VERSION, "kind": kind, "site": site, "cart": cart, "body": dict(body), "sig": sig})


def _no_constant(name: str) -> float:
    raise ContractError(f"not JSON: {name} is not a number")


def peek_message(payload: bytes | bytearray, max_bytes: int = MESSAGE_MAX) -> dict[str, Any]:
    """The message parsed and its shape checked, NOT verified: only to route it (an ack topic carries
    acks and rejects).  Nothing in it may be used before ``open_message``."""
    if len(payload) > max_bytes:
        raise ContractError(f"message of {len(payload)} bytes, more than {max_bytes}")
    try:
        msg = json.loads(payload, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, an integer of > 4,300 digits, too deep
        raise ContractError(f"not JSON: {exc}") from exc
    if not isinstance(msg, dict) or set(msg) != _FIELDS:
        raise ContractError(f"not a signed message: fields must be {sorted(_FIELDS)}")
    if msg["v"] != VERSION or msg["kind"] not in SIGNED_KINDS:
        raise ContractError(f"unknown message version {msg['v']!r} or kind {str(msg['kind'])[:32]!r}")
    if not isinstance(msg["body"], dict) or not isinstance(msg["sig"], str):
        raise ContractError("not a signed message: body must be an object and sig a string")
    return msg


def open_message(payload: bytes | bytearray, *, kinds: Sequence[str], site: str, cart: str,
                 keys: Sequence[Ed25519PublicKey], max_bytes: int = MESSAGE_MAX) -> tuple[str, dict[str, Any]]:
    """``(kind, body)`` of a message that arrived on ``site``/``cart``'s topic, verified with one of
    ``keys``.  ContractError says what was wrong: size, JSON, shape, kind, topic, bounds, signature."""
    msg = peek_message(payload, max_bytes)
    kind = msg["kind"]
    if kind not in kinds:
        raise ContractError(f"a {kind!r} message where {', '.join(kinds)} was expected")
    if msg["site"] != site or msg["cart"] != cart:
        raise ContractError(f"signed for {str(msg['site'])[:32]}/{str(msg['cart'])[:32]}, arrived on {site}/{cart}")
    errors = validate_message_body(kind, msg["body"])
    if errors:
        raise ContractError(f"{kind} body: " + "; ".join(errors[:3]))
    try:
        sig = base64.b64decode(msg["sig"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContractError("signature is not base64") from exc
    signed = _signed_part(kind, site, cart, msg["body"])
    for key in keys:
        try:
            key.verify(sig, signed)
        except InvalidSignature:
            continue
        return kind, msg["body"]
    raise ContractError(f"{kind}: signature does not verify with any trusted key" if keys
                        else f"{kind}: no key to verify it with")


# Bodies ---------------------------------------------------------------------------------------

def ack_body(upto_seq: int, upto_hash: str, ids: Sequence[str]) -> dict[str, Any]:
    """Records 1..upto_seq (whose last has ``upto_hash``) and ``ids`` are durably stored."""
    return {"upto_seq": upto_seq, "upto_hash": upto_hash, "ids": list(ids)}


def reject_body(record_id: str, seq: int, reason: str, detail: str, payload_sha256: str) -> dict[str, Any]:
    """Record ``record_id`` (seq ``seq``) was quarantined for a reason re-sending cannot fix.
    ``payload_sha256`` names the bytes refused: a cart applies the reject only to a record whose own
    bytes those are, so a bad copy someone else published under its id cannot get it rejected."""
    return {"id": record_id, "seq": seq, "reason": reason, "detail": detail[:500], "payload_sha256": payload_sha256}


def command_body(name: str, boot_id: str, counter: int, args: Mapping[str, int | str]) -> dict[str, Any]:
    """Command ``name`` for the cart's boot ``boot_id``, the gateway's ``counter``-th for this cart
    (args: integers, and the label of a reprint)."""
    return {"name": name, "boot_id": boot_id, "counter": counter, "args": dict(args)}


def cmd_result_body(name: str, boot_id: str, counter: int, outcome: str, reason: str = "") -> dict[str, Any]:
    """What the cart did with a command: ``done``, or ``refused`` and why."""
    return {"name": name[:32], "boot_id": boot_id, "counter": counter, "outcome": outcome, "reason": reason[:500]}
