"""The gateway's identity: one Ed25519 key that signs every ack, reject and command it sends.

``DATA/gateway.key`` holds it as PEM (PKCS8, unencrypted), mode 0600, created on first use
(``wastecart gateway keygen`` or the first ``gateway run``).  Carts trust the public half
(``public_text``, base64: ``uplink.gateway_keys``), so whoever reads this file can speak for the
gateway: a key file that its group or others may read is refused, never used.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from gateway.errors import GatewayError

KEY_NAME = "gateway.key"
KEY_MODE = 0o600  # owner read/write only
_OPEN_TO_OTHERS = stat.S_IRWXG | stat.S_IRWXO  # any group/other bit: refused


def key_path(data_dir: Path) -> Path:
    return Path(data_dir) / KEY_NAME


def load_or_create(data_dir: Path) -> Ed25519PrivateKey:
    """The key in ``data_dir/gateway.key``, created (mode 0600) if the file is absent.

    GatewayError if the file is open to its group or others, unreadable, or not an Ed25519 key."""
    path = key_path(data_dir)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return _create(path)
    except OSError as exc:
        raise GatewayError(f"gateway key {path}: cannot read it ({exc})") from exc
    if mode & _OPEN_TO_OTHERS:
        raise GatewayError(f"gateway key {path}: mode {stat.S_IMODE(mode):04o} lets others read it; "
                           f"refusing to use it (chmod 600 {path}, or replace the key if it may have leaked)")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise GatewayError(f"gateway key {path}: not a readable PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise GatewayError(f"gateway key {path}: not an Ed25519 key")
    return key


def _create(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once cannot both write (the loser reads the winner's key)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
    except FileExistsError:
        return load_or_create(path.parent)
    except OSError as exc:
        raise GatewayError(f"gateway key {path}: cannot create it ({exc})") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(path, KEY_MODE)  # a umask cannot widen it, but make it exact
    except OSError as exc:
        raise GatewayError(f"gateway key {path}: cannot write it ({exc})") from exc
    return key


def public_text(key: Ed25519PrivateKey) -> str:
    """The public half as carts configure it (base64 of the raw 32 bytes)."""
    return wire.public_key_text(key.public_key())
