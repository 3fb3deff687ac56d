"""Pure checks of what arrives from the broker: topic, schema, cart, seal; signed device messages.

No MQTT and no threads: the ingest worker (``gateway.ingest.worker``) calls these on each batch,
in its own thread or spread over worker processes (``check_in_pool``).  A refused record becomes
a ``Rejected`` whose alert kind says why (``wire.ALERT_KINDS``): bad signature FORGED, hash
mismatch ALTERED, no key UNKNOWN_CART, anything else unreadable MALFORMED; REPLAYED and
CHAIN_BREAK are decided by the store against what it holds.  Every number is checked against the
schema's bounds here, before anything reaches SQLite (``seq`` < 2**53 = ``wire.MAX_SEQ``).

A refused record of a KNOWN cart whose envelope id and seq can still be read, refused for a reason
re-sending cannot fix, carries the ``reject`` reason (``wire.REJECT_REASONS``: FORGED, ALTERED,
MALFORMED, SCHEMA) of the signed reject the worker sends the cart.

Status, telemetry and command results are signed by the cart (``wire.open_message`` with its key):
what does not verify is refused like a bad record (UNKNOWN_CART, FORGED or MALFORMED) and changes
nothing.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge import wire
from gateway.errors import IngestError
from gateway.ledger.index import index_rows
from gateway.store.model import DeviceUpdate, Incoming, Rejected

# Largest status / telemetry / command result payload looked at (bytes): they are a few hundred bytes.
DEVICE_PAYLOAD_MAX = wire.MESSAGE_MAX
# The kind of signed message each device topic carries.
DEVICE_KINDS = {wire.STATUS: wire.STATUS_KIND, wire.TELEMETRY: wire.TELEMETRY_KIND,
                wire.CMD_RESULT: wire.CMD_RESULT_KIND}
_LEAVES: dict[str, Literal["status", "telemetry", "cmd_result"]] = {
    wire.STATUS: "status", wire.TELEMETRY: "telemetry", wire.CMD_RESULT: "cmd_result"}
# An id a reject may name (messages.schema.json $defs/uuid).
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class KeyRing:
    """Cart public keys: from the config, else ``<cart_keys_dir>/<CART>.pub`` read on first use."""

    def __init__(self, keys: dict[str, str], keys_dir: Path | None) -> None:
        self._keys = {cart: wire.load_public_key(text) for cart, text in keys.items()}
        self._dir = keys_dir
        self._texts: dict[str, str] = {}

    def get(self, cart: str) -> Ed25519PublicKey:
        """The cart's key; IngestError if none is configured (cart ids are checked before)."""
        key = self._keys.get(cart)
        if key is not None:
            return key
        path = self._dir / f"{cart}.pub" if self._dir else None
        if path is None or not path.is_file():
            raise IngestError("unknown cart, no public key configured", kind="UNKNOWN_CART")
        try:
            key = wire.load_public_key(path.read_text("ascii").strip())
        except (OSError, UnicodeDecodeError, wire.ContractError) as exc:
            raise IngestError(f"public key file {path}: unusable ({exc})", kind="UNKNOWN_CART") from exc
        self._keys[cart] = key
        return key

    def text(self, cart: str) -> str:
        """The cart's key as base64 text (what a stored record notes it was verified with); IngestError
        as ``get``."""
        text = self._texts.get(cart)
        if text is None:
            text = self._texts[cart] = wire.public_key_text(self.get(cart))
        return text


def check_message(topic: str, payload: bytes, keys: KeyRing) -> Incoming:
    """Pure checks of one received message; IngestError's text is the quarantine reason, its
    ``kind`` the alert."""
    site, cart, leaf = _topic_ids(topic)
    if leaf != wire.RECORD:
        raise IngestError(f"topic: {topic!r} is not a record topic")
    try:
        env = wire.decode_record(payload)
    except (ValueError, RecursionError) as exc:  # ValueError: ContractError, or an integer of > 4,300 digits
        raise IngestError(f"schema: {str(exc)[:300]}", reject="SCHEMA") from exc
    if env["cart"] != cart:
        raise IngestError(f"cart: envelope says {env['cart']!r} but the topic says {cart!r}", subject=env["id"],
                          reject="MALFORMED")
    try:
        key = keys.get(cart)
    except IngestError as exc:
        exc.subject = env["id"]
        raise
    try:
        wire.verify_seal(env, key)
    except wire.ContractError as exc:
        # Only on failure: was the content changed under its hash, or is the signature not the cart's?
        kind = "ALTERED" if env["hash"] != wire.record_hash(env) else "FORGED"
        raise IngestError(f"seal: {exc}", kind=kind, subject=env["id"], reject=kind) from exc
    return Incoming(id=env["id"], site=site, cart=cart, seq=env["seq"], type=env["type"],
                    created_at=env["created_at"], hash=env["hash"],
                    # as received (valid UTF-8 JSON by now): re-encoding it cost ~50 us a record
                    envelope=payload.decode("utf-8"), topic=topic, payload=payload,
                    prev_hash=env["prev_hash"], key=keys.text(cart),
                    ledger=index_rows(env["id"], cart, site, env["seq"], env["type"], env["created_at"], env["body"]))


def checked(topic: str, payload: bytes, keys: KeyRing) -> Incoming | Rejected:
    """``check_message`` with a refusal turned into the quarantine item it becomes."""
    try:
        return check_message(topic, payload, keys)
    except IngestError as exc:
        site: str | None
        cart: str | None
        try:
            site, cart, _ = _topic_ids(topic)
        except IngestError:
            site = cart = None
        seq: int | None = None
        reject = exc.reject if exc.reject in wire.REJECT_REASONS else None
        if reject is not None and cart is not None and _known(keys, cart):
            readable = _id_and_seq(payload)
            subject = exc.subject or (readable[0] if readable else None)
            if readable is None or readable[0] != subject:
                reject = None
            else:
                seq = readable[1]
            return Rejected(topic, payload, str(exc), exc.kind, site, cart, subject, seq, reject)
        return Rejected(topic, payload, str(exc), exc.kind, site, cart, exc.subject)


def _known(keys: KeyRing, cart: str) -> bool:
    try:
        keys.get(cart)
    except IngestError:
        return False
    return True


def _id_and_seq(payload: bytes) -> tuple[str, int] | None:
    """The envelope's id and seq if both can still be read and are within the wire's bounds."""
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):  # ValueError: not JSON, bad UTF-8, a > 4,300 digit integer
        return None
    if not isinstance(obj, dict):
        return None
    rid, seq = obj.get("id"), obj.get("seq")
    if not isinstance(rid, str) or not _UUID.match(rid):
        return None
    if not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= wire.MAX_SEQ:
        return None
    return rid, seq


def check_all(pairs: list[tuple[str, bytes]], keys: KeyRing) -> list[Incoming | Rejected]:
    """``checked`` for each ``(topic, payload)``, in order."""
    return [checked(topic, payload, keys) for topic, payload in pairs]


# Verification processes.  Ed25519 and the schema are CPU-bound and ``cryptography`` holds the GIL,
# so more cores need processes.  Each process builds its own KeyRing from the config.
_worker_keys: KeyRing | None = None


def init_pool_worker(keys: dict[str, str], keys_dir: Path | None) -> None:
    """``ProcessPoolExecutor`` initializer: the process's own KeyRing for ``check_in_pool``."""
    global _worker_keys
    _worker_keys = KeyRing(keys, keys_dir)


def _check_in_worker(pairs: list[tuple[str, bytes]]) -> list[Incoming | Rejected]:
    assert _worker_keys is not None, "worker not initialised"
    return check_all(pairs, _worker_keys)


def check_in_pool(pool: ProcessPoolExecutor, n: int, pairs: list[tuple[str, bytes]]) -> list[Incoming | Rejected]:
    """``check_all`` spread over ``n`` worker processes; results in the order of ``pairs``."""
    chunks = [pairs[i::n] for i in range(n)]  # interleaved: equal sizes
    results = list(pool.map(_check_in_worker, chunks))
    return [results[i % n][i // n] for i in range(len(pairs))]


def _topic_ids(topic: str) -> tuple[str, str, str]:
    """(site, cart, leaf) of a topic under wc/v1 with valid ids; IngestError (MALFORMED) otherwise."""
    try:
        site, cart, leaf = wire.parse_topic(topic)
        wire.check_id(site, "site")
        wire.check_id(cart, "cart")
    except wire.ContractError as exc:
        raise IngestError(f"topic: {exc}") from exc
    return site, cart, leaf


def check_device(topic: str, payload: bytes, keys: KeyRing) -> DeviceUpdate:
    """A status, telemetry or command result VERIFIED with the cart's key (every number within its
    bound) as a DeviceUpdate; IngestError (UNKNOWN_CART, FORGED or MALFORMED) otherwise."""
    site, cart, leaf = _topic_ids(topic)
    kind = DEVICE_KINDS.get(leaf)
    if kind is None:
        raise IngestError(f"topic: {topic[:200]!r} is not a status, telemetry or cmd_result topic")
    key = keys.get(cart)  # UNKNOWN_CART: a made-up cart shows nowhere
    try:
        _, body = wire.open_message(payload, kinds=[kind], site=site, cart=cart, keys=[key],
                                    max_bytes=DEVICE_PAYLOAD_MAX)
    except (ValueError, RecursionError) as exc:  # ContractError, or an integer of > 4,300 digits
        text = str(exc)[:300]
        raise IngestError(f"{leaf}: {text}", kind="FORGED" if "signature" in text else "MALFORMED") from exc
    return DeviceUpdate(site, cart, _LEAVES[leaf], body, topic, payload)


def device_rejected(topic: str, payload: bytes, exc: IngestError) -> Rejected:
    """The quarantine item of a device message that did not verify (never answered)."""
    try:
        site, cart, _ = _topic_ids(topic)
    except IngestError:
        return Rejected(topic, payload, str(exc), exc.kind)
    return Rejected(topic, payload, str(exc), exc.kind, site, cart)


def is_record_topic(topic: str) -> bool:
    """A record (checked by ``check_message``) rather than status or telemetry (``check_device``)."""
    return topic.rsplit("/", 1)[-1] == wire.RECORD
