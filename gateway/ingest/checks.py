"""Pure checks of what arrives from the broker: topic, schema, cart, seal; status and telemetry.

No MQTT and no threads: the ingest worker (``gateway.ingest.worker``) calls these on each batch,
in its own thread or spread over worker processes (``check_in_pool``).  A refused record becomes
a ``Rejected`` whose alert kind says why (``wire.ALERT_KINDS``): bad signature FORGED, hash
mismatch ALTERED, no key UNKNOWN_CART, anything else unreadable MALFORMED; REPLAYED and
CHAIN_BREAK are decided by the store against what it holds.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge import wire
from gateway.errors import IngestError
from gateway.store.model import DeviceUpdate, Incoming, Rejected

# Largest status / telemetry payload looked at (bytes): they are a few hundred bytes.
DEVICE_PAYLOAD_MAX = 64_000


class KeyRing:
    """Cart public keys: from the config, else ``<cart_keys_dir>/<CART>.pub`` read on first use."""

    def __init__(self, keys: dict[str, str], keys_dir: Path | None) -> None:
        self._keys = {cart: wire.load_public_key(text) for cart, text in keys.items()}
        self._dir = keys_dir

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


def check_message(topic: str, payload: bytes, keys: KeyRing) -> Incoming:
    """Pure checks of one received message; IngestError's text is the quarantine reason, its
    ``kind`` the alert."""
    site, cart, leaf = _topic_ids(topic)
    if leaf != wire.RECORD:
        raise IngestError(f"topic: {topic!r} is not a record topic")
    try:
        env = wire.decode_record(payload)
    except (wire.ContractError, RecursionError) as exc:
        raise IngestError(f"schema: {exc}") from exc
    if env["cart"] != cart:
        raise IngestError(f"cart: envelope says {env['cart']!r} but the topic says {cart!r}", subject=env["id"])
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
        raise IngestError(f"seal: {exc}", kind=kind, subject=env["id"]) from exc
    return Incoming(id=env["id"], site=site, cart=cart, seq=env["seq"], type=env["type"],
                    created_at=env["created_at"], hash=env["hash"],
                    # as received (valid UTF-8 JSON by now): re-encoding it cost ~50 us a record
                    envelope=payload.decode("utf-8"), topic=topic, payload=payload,
                    prev_hash=env["prev_hash"])


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
        return Rejected(topic, payload, str(exc), exc.kind, site, cart, exc.subject)


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


def check_device(topic: str, payload: bytes) -> DeviceUpdate:
    """A status or telemetry message as a DeviceUpdate; IngestError if it is not one (ignored)."""
    site, cart, leaf = _topic_ids(topic)
    if leaf not in (wire.STATUS, wire.TELEMETRY):
        raise IngestError(f"topic: {topic!r} is not a status or telemetry topic")
    if len(payload) > DEVICE_PAYLOAD_MAX:
        raise IngestError(f"{leaf}: {len(payload)} bytes, more than {DEVICE_PAYLOAD_MAX}")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IngestError(f"{leaf}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise IngestError(f"{leaf}: not a JSON object")
    if leaf == wire.STATUS and data.get("state") not in ("online", "offline"):
        raise IngestError(f"status: state {data.get('state')!r} is not 'online' or 'offline'")
    return DeviceUpdate(site, cart, "status" if leaf == wire.STATUS else "telemetry", data)


def is_record_topic(topic: str) -> bool:
    """A record (checked by ``check_message``) rather than status or telemetry (``check_device``)."""
    return topic.rsplit("/", 1)[-1] == wire.RECORD
