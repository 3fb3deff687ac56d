"""The cart's Ed25519 signing key: one per cart, created once, never leaves the cart."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.errors import EdgeError

KEY_FILE = "cart.key"


def load_or_create(data_dir: Path) -> Ed25519PrivateKey:
    """Load ``DATA/cart.key``; create it (mode 0600) on first start."""
    path = data_dir / KEY_FILE
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, OSError) as exc:
            raise EdgeError("key.unreadable", path=path, reason=str(exc)) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise EdgeError("key.not_ed25519", path=path)
        return key
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    return key
