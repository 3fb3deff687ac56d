"""Nurse PINs: a nurse who has no badge at hand confirms a handover by typing a PIN on the kiosk.

The config holds only salted PBKDF2 hashes (``wastecart edge hash-pin`` makes one), so a copied
config file does not hand out PINs directly.  A 4-6 digit PIN is still guessable offline from its
hash; the hash only slows that down — the real protection is that each PIN confirmation names a
person in a signed record, and a wrong PIN at the kiosk is refused and logged, and tries are limited
(``PinPolicy`` here, applied by ``edge.pin_guard``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEME = "pbkdf2_sha256"
ITERATIONS = 20_000  # ~10 ms on a Pi 4 per configured nurse: a PIN check stays well under a second
# 1,000-999,999 rounds (more would stall the kiosk for seconds per nurse), 8-32 salt bytes
_FORMAT = re.compile(r"^pbkdf2_sha256\$([1-9]\d{3,5})\$((?:[0-9a-f]{2}){8,32})\$([0-9a-f]{64})$")
_PIN = re.compile(r"\d{4,8}")  # fullmatch: "$" alone would let a trailing newline through
NOT_A_PIN = "0000"  # what a malformed text is hashed as (the PIN check costs the same; it never matches)


class PinPolicy(BaseModel):
    """How many wrong PINs the kiosk takes (``[kiosk.pin]``): a 4-digit PIN has 10,000 values, so
    after a few free tries each further one waits longer, and a run of failures locks PIN entry.

    "Per person" is the collector signed in at the cart (a wrong PIN names nobody); "per kiosk"
    counts every collector's failures, so signing in again with another badge does not reset it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    free_failures: int = Field(3, ge=1, le=20)  # wrong PINs in a row before the next try must wait
    backoff_s: float = Field(2.0, gt=0, le=60)  # the first wait (s); doubles with each further failure
    backoff_max_s: float = Field(60.0, gt=0, le=3600)  # the longest single wait (s)
    lockout_after: int = Field(6, ge=2, le=100)  # failures in a row by one collector: PIN entry locked
    kiosk_lockout_after: int = Field(10, ge=2, le=1000)  # failures at this cart within window_min: locked
    window_min: float = Field(15.0, gt=0, le=24 * 60)  # minutes a failure counts towards the kiosk's limit
    lockout_min: float = Field(15.0, gt=0, le=24 * 60)  # minutes the first lockout keeps PIN entry locked
    # Each further lockout within a day of the one before lasts twice as long, up to this (minutes):
    # without it, an attacker who waits out every lockout still gets ~570 PINs checked a day.
    lockout_max_min: float = Field(24 * 60.0, gt=0, le=7 * 24 * 60)

    @model_validator(mode="after")
    def _max_covers_first(self) -> PinPolicy:
        if self.lockout_max_min < self.lockout_min:
            raise ValueError(f"lockout_max_min ({self.lockout_max_min:g}) is shorter than lockout_min "
                             f"({self.lockout_min:g})")
        return self


def check_pin_text(pin: str) -> str:
    if not _PIN.fullmatch(pin):
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
    """The person whose PIN this is, or None.  Every entry is tried, and a text that is not a PIN
    at all is hashed too (as ``NOT_A_PIN``, of a fixed length), so the time taken tells neither which
    entry matched nor whether the text was well-formed, however long it was."""
    well_formed = _PIN.fullmatch(pin) is not None
    candidate = pin if well_formed else NOT_A_PIN
    found = None
    for person, hashed in table.items():
        if matches(candidate, hashed) and well_formed and found is None:
            found = person
    return found
