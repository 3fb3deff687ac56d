"""The core of the wire contract: topics, canonical JSON, ids, record envelopes and their signatures.

Envelope: ``{schema, id, cart, seq, created_at, clock, type, body, prev_hash, hash, sig}``.
``hash`` is SHA-256 (hex) over the canonical JSON of the envelope without ``hash`` and ``sig``;
``sig`` is Ed25519 (base64) over the ASCII bytes of ``hash``.  Canonical JSON: keys sorted, no
white space, UTF-8, no floats (weights are integer grams), so both sides hash the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SCHEMA_ID = "wc.record/1"
TOPIC_ROOT = "wc/v1"
GENESIS_HASH = "0" * 64  # prev_hash of a cart's first record

# MQTT leaves under wc/v1/{site}/{cart}/ with their QoS (DESIGN §3).
RECORD, ACK, STATUS, TELEMETRY, CMD = "record", "ack", "status", "telemetry", "cmd"
CMD_RESULT = "cmd_result"  # cart -> gateway: what the cart did with each command
QOS = {RECORD: 1, ACK: 1, STATUS: 1, TELEMETRY: 0, CMD: 1, CMD_RESULT: 1}
RECORD_SUBSCRIPTION = f"{TOPIC_ROOT}/+/+/{RECORD}"
SHARED_RECORD_SUBSCRIPTION = f"$share/gw/{RECORD_SUBSCRIPTION}"

RECORD_TYPES = ("handover", "storage_in", "storage_out", "transfer", "void", "incident", "correction")
# Ids on the wire ($defs/code): site / cart ids (topic levels), QR fields, package and person ids.
ID_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")


class ContractError(ValueError):
    """A payload or value that breaks the wire contract; the message names the field and the rule."""


# --------------------------------------------------------------------------------------------
# Topics


def check_id(value: str, what: str) -> str:
    """Site and cart ids become MQTT topic levels, so they must not contain '/', '+' or '#'."""
    if not ID_PATTERN.match(value):
        raise ContractError(f"{what} {value!r}: use 1-32 of A-Z, 0-9, '_' or '-', starting with a letter or digit")
    return value


def topic(site: str, cart: str, leaf: str) -> str:
    return f"{TOPIC_ROOT}/{site}/{cart}/{leaf}"


def broker_address(url: str) -> tuple[str, int, bool]:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]`` -> (host, port, tls)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ContractError(f"broker URL {url!r}: expected mqtt://host:port or mqtts://host:port")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ContractError(f"broker URL {url!r}: bad port") from exc
    return parts.hostname, port, tls


def parse_topic(name: str) -> tuple[str, str, str]:
    """``wc/v1/S/C/leaf[/...]`` -> (site, cart, leaf); anything else is a ContractError."""
    parts = name.split("/")
    if len(parts) < 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        raise ContractError(f"topic {name!r} is not under {TOPIC_ROOT}/<site>/<cart>/")
    return parts[2], parts[3], "/".join(parts[4:])


# --------------------------------------------------------------------------------------------
# Canonical encoding, ids, hashing, signatures


def canonical(obj: Any) -> bytes:
    """The byte string both sides hash: sorted keys, compact, UTF-8.  Floats are refused."""
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        # The C parser finds a float far faster than a Python walk of the tree (a third of a commit).
        json.loads(text, parse_float=_no_float)
    except (_FloatFound, ValueError):  # ValueError: NaN or infinity
        _refuse_floats(obj, "")  # names the path
        raise
    return text.encode("utf-8")


class _FloatFound(Exception):
    pass


def _no_float(_text: str) -> float:
    raise _FloatFound


def _refuse_floats(obj: Any, path: str) -> None:
    if isinstance(obj, float):
        raise ContractError(f"{path or '/'}: floats are not allowed on the wire (use integer grams)")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _refuse_floats(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _refuse_floats(v, f"{path}/{i}")


def uuid7(unix_ms: int | None = None) -> str:
    """A time-ordered UUIDv7 (RFC 9562): 48-bit ms timestamp, version, 74 random bits."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64  # version 7 + rand_a
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))  # variant + rand_b
    return str(uuid.UUID(int=value))


def record_hash(envelope: Mapping[str, Any]) -> str:
    unsigned = {k: v for k, v in envelope.items() if k not in ("hash", "sig")}
    return hashlib.sha256(canonical(unsigned)).hexdigest()


def public_key_text(key: Ed25519PublicKey) -> str:
    """Raw 32-byte public key, base64: short enough for a config file or a QR code."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ContractError(f"public key {text[:12]!r}…: not a base64 Ed25519 key ({exc})") from exc


def seal(unsigned: Mapping[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """Return the envelope with its ``hash`` and ``sig`` filled in."""
    env = dict(unsigned)
    env["hash"] = record_hash(env)
    env["sig"] = base64.b64encode(key.sign(env["hash"].encode("ascii"))).decode("ascii")
    return env


def verify_seal(envelope: Mapping[str, Any], key: Ed25519PublicKey) -> None:
    """Raise ContractError unless ``hash`` matches the content and ``sig`` is the cart's."""
    expected = record_hash(envelope)
    if envelope.get("hash") != expected:
        raise ContractError("hash: does not match the record's content (altered in transit or forged)")
    try:
        key.verify(base64.b64decode(str(envelope.get("sig", "")), validate=True), expected.encode("ascii"))
    except (InvalidSignature, ValueError) as exc:
        raise ContractError("sig: not a valid Ed25519 signature by this cart's key") from exc


# --------------------------------------------------------------------------------------------
# Envelopes


@dataclass(frozen=True)
class Clock:
    """How the cart knew the wall time when it stamped a record (a Pi has no RTC)."""

    source: str
    mono_ms: int

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "mono_ms": self.mono_ms}


def unsigned_envelope(
    *, record_id: str, cart: str, seq: int, created_at: str, clock: Clock, rtype: str,
    body: Mapping[str, Any], prev_hash: str,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID, "id": record_id, "cart": cart, "seq": seq, "created_at": created_at,
        "clock": clock.as_json(), "type": rtype, "body": dict(body), "prev_hash": prev_hash,
    }


def encode(obj: Any) -> bytes:
    return canonical(obj)


# Commands: gateway -> cart on wc/v1/{site}/{cart}/cmd/{name}.

CMD_RESEND, CMD_TIME, CMD_REPRINT, CMD_CONFIG = "resend", "time", "reprint", "config"
CMD_NAMES = (CMD_RESEND, CMD_TIME, CMD_REPRINT, CMD_CONFIG)
# ``config{…}``: the workflow thresholds a gateway may set, in integer wire units (no floats on the
# wire), each with its inclusive bounds.  messages.schema.json repeats them (a unit test keeps the
# two equal) so a body out of range is refused before its signature is tried, and trust checks them
# again before anything is applied.
CONFIG_BOUNDS: dict[str, tuple[int, int]] = {
    "tolerance_g": (0, 5_000),                 # re-weigh deviation always allowed (g)
    "tolerance_pct": (0, 100),                 # ... or this share of the expected weight, if larger
    "storage_overdue_s": (3_600, 2_592_000),   # checked in longer ago when it leaves storage = overdue (1 h .. 30 d)
    "round_max_s": (600, 172_800),             # a round open longer is warned about (10 min .. 48 h)
    "max_bag_g": (1_000, 1_000_000),           # one bag heavier is refused (1 .. 1000 kg)
}
LABEL_MAX = 64  # ``reprint{label}``: a package code, or one of our bag label payloads (edge.codes)

# Alerts the gateway raises on what it receives (DESIGN §3; waste-domain §8.8 for the domain ones).
ALERT_KINDS = (
    "FORGED",        # signature does not verify with the cart's key
    "ALTERED",       # hash does not match the content
    "REPLAYED",      # an id or (cart, seq) already stored with different content
    "CHAIN_BREAK",   # prev_hash is not the hash of the cart's previous record
    "SEQ_GAP",       # a cart's seq jumped; a resend was asked for
    "UNKNOWN_CART",  # no public key configured for the cart
    "MALFORMED",     # not JSON / not our schema / wrong topic
    "PIN_LOCKOUT",   # a cart's kiosk locked PIN entry after wrong PINs (its telemetry's pin_lockouts rose)
)


def cmd_topic(site: str, cart: str, name: str) -> str:
    return topic(site, cart, f"{CMD}/{name}")
