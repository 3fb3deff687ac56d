"""Who may do what on the console: argon2id passwords, login limits, CSRF tokens, roles.

No I/O here and no clock but an injected one, so the unit tests drive it directly:
- ``Passwords``: argon2id (argon2-cffi's defaults, RFC 9106's second choice); an unknown or
  disabled user is verified against a dummy hash, so a wrong name takes as long as a wrong password.
- ``LoginLimiter``: wrong passwords in a row per key (a user name, a client address): after
  ``free_failures`` each try waits ``backoff_s * 2**k`` (at most ``backoff_max_s``); after
  ``lockout_after`` the key is locked for ``lockout_min``.  A try during a wait is refused unchecked
  (not counted).  A run quiet for ``lockout_min`` is forgotten.  Keys are attacker-chosen, so the
  table is bounded (``tracked``; the least recently failed go first).  The runs are
  ``edge.backoff.FailureRuns``, as the kiosk's PIN limits' are (those trust their keys, MAC-checked
  badges, and keep them all).
- CSRF: a random token per session, compared in constant time with the form field or header.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from edge.backoff import FailureRuns, RunPolicy, Wait
from gateway.console.settings import LoginLimits
from gateway.store.users import ROLES

PASSWORD_MIN = 8  # characters: below this a password falls to an offline guess in minutes
PASSWORD_MAX = 1024  # characters: argon2 takes any length; a megabyte "password" is an attack on the CPU
CSRF_FIELD = "csrf"  # the hidden form field
CSRF_HEADER = "x-csrf-token"  # the header the page's scripts send


class PasswordError(ValueError):
    """A password that cannot be set (too short, too long); the message says why."""


def check_new_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise PasswordError(f"a password needs at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise PasswordError(f"a password has at most {PASSWORD_MAX} characters")
    return password


class Passwords:
    """argon2id hashing and a verification that costs the same for unknown users."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(check_new_password(password))

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True if ``password`` matches; a None hash (no such user) is checked against the dummy."""
        if len(password) > PASSWORD_MAX:
            return False
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


class LoginLimiter:
    """Back-off then lockout per key (see the module docstring); thread-safe; bounded.  The runs are
    ``edge.backoff.FailureRuns``, the mechanism the kiosk's PIN limits use too."""

    def __init__(self, limits: LoginLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._runs = FailureRuns(RunPolicy(limits.free_failures, limits.backoff_s, limits.backoff_max_s,
                                           forget_after_s=limits.lockout_min * 60, tracked=limits.tracked))
        self.lockouts = 0  # since start (a metric, a log line)

    def check(self, *keys: str) -> Wait | None:
        """None if every key may try now; else the longest wait among them."""
        now = self._clock()
        with self._lock:
            waits = [w for w in (self._runs.wait(key, now) for key in keys) if w is not None]
        return max(waits, key=lambda w: (w.locked, w.seconds)) if waits else None

    def failed(self, *keys: str) -> bool:
        """Count a wrong password against every key; True if it locked one of them."""
        now = self._clock()
        locked = False
        with self._lock:
            for key in keys:
                if self._runs.fail(key, now) >= self.limits.lockout_after and not self._runs.locked(key):
                    self._runs.lock(key, now + self.limits.lockout_min * 60)
                    self.lockouts += 1
                    locked = True
        return locked

    def succeeded(self, *keys: str) -> None:
        """A right password ends the runs of these keys."""
        with self._lock:
            for key in keys:
                self._runs.end(key)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: object, given: str | None) -> bool:
    """True if the session's token ``expected`` equals ``given`` (constant time); False if either is missing."""
    if not isinstance(expected, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def allowed(role: str, needed: str) -> bool:
    """True if ``role`` is at least ``needed`` (viewer < operator < admin); unknown roles get nothing."""
    if role not in ROLES or needed not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)
