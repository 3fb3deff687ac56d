"""Nurse PINs: a nurse who has no badge at hand confirms a handover by typing a PIN on the kiosk.

The config holds only salted PBKDF2 hashes (``wastecart edge hash-pin`` makes one), so a copied
config file does not hand out PINs directly.  A 4-6 digit PIN is still guessable offline from its
hash; the hash only slows that down — the real protection is that each PIN confirmation names a
person in a signed record, and a wrong PIN at the kiosk is refused and logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

SCHEME = "pbkdf2_sha256"
ITERATIONS = 20_000  # ~10 ms on a Pi 4 per configured nurse: a PIN check stays well under a second
# 1,000-999,999 rounds (more would stall the kiosk for seconds per nurse), 8-32 salt bytes
_FORMAT = re.compile(r"^pbkdf2_sha256\$([1-9]\d{3,5})\$((?:[0-9a-f]{2}){8,32})\$([0-9a-f]{64})$")
_PIN = re.compile(r"^\d{4,8}$")


def check_pin_text(pin: str) -> str:
    if not _PIN.match(pin):
        raise ValueError("PIN 须为 4-8 位数字 (a PIN is 4-8 digits)")
    return pin


def hash_pin(pin: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    check_pin_text(pin)
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def check_hash_text(text: str) -> str:
    if not _FORMAT.match(text):
        raise ValueError("not a PIN hash: expected pbkdf2_sha256$<1000-999999 iterations>$<salt hex>$<sha256 hex> "
                         "(make one with `wastecart edge hash-pin`)")
    return text


def matches(pin: str, hashed: str) -> bool:
    m = _FORMAT.match(hashed)
    if m is None:
        return False
    iterations, salt, digest = int(m[1]), bytes.fromhex(m[2]), m[3]
    got = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations).hex()
    return hmac.compare_digest(got, digest)


def who(pin: str, table: dict[str, str]) -> str | None:
    """The person whose PIN this is, or None.  Every entry is tried, so timing does not tell which."""
    found = None
    for person, hashed in table.items():
        if matches(pin, hashed) and found is None:
            found = person
    return found
