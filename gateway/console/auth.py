"""Who may do what on the console: argon2id passwords, login limits, CSRF tokens, roles.

No I/O here and no clock but an injected one, so the unit tests drive it directly:
- ``Passwords``: argon2id (argon2-cffi's defaults, RFC 9106's second choice); an unknown or
  disabled user is verified against a dummy hash, so a wrong name takes as long as a wrong password.
- ``LoginLimiter``: wrong passwords in a row per key (a user name, a client address): after
  ``free_failures`` each try waits ``backoff_s * 2**k`` (at most ``backoff_max_s``); after
  ``lockout_after`` the key is locked for ``lockout_min``.  A try during a wait is refused unchecked
  (not counted).  A run quiet for ``lockout_min`` is forgotten.  Keys are attacker-chosen, so the
  table is bounded (``tracked``; the least recently failed go first).  Like ``edge.pin_guard`` in
  spirit; that one trusts its keys (MAC-checked badges) and keeps them all.
- CSRF: a random token per session, compared in constant time with the form field or header.
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

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


@dataclass(frozen=True)
class Wait:
    """The try was not checked: ``locked`` (a lockout) or a back-off; ``seconds`` left."""

    locked: bool
    seconds: float

    @property
    def whole_seconds(self) -> int:
        return max(1, math.ceil(self.seconds))


@dataclass
class _Run:
    count: int = 0  # failures in a row
    last: float = 0.0  # monotonic time of the latest
    locked_until: float | None = None


class LoginLimiter:
    """Back-off then lockout per key (see the module docstring); thread-safe; bounded."""

    def __init__(self, limits: LoginLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, _Run] = OrderedDict()
        self.lockouts = 0  # since start (a metric, a log line)

    def check(self, *keys: str) -> Wait | None:
        """None if every key may try now; else the longest wait among them."""
        now = self._clock()
        waits: list[Wait] = []
        with self._lock:
            for key in keys:
                run = self._runs.get(key)
                if run is None:
                    continue
                if run.locked_until is not None:
                    if now < run.locked_until:
                        waits.append(Wait(True, run.locked_until - now))
                    else:
                        del self._runs[key]  # served its lockout: a fresh run
                elif now - run.last > self.limits.lockout_min * 60:
                    del self._runs[key]  # quiet for as long as a lockout: forgotten
                elif run.count >= self.limits.free_failures:
                    ready = run.last + self._backoff(run.count)
                    if now < ready:
                        waits.append(Wait(False, ready - now))
        return max(waits, key=lambda w: (w.locked, w.seconds)) if waits else None

    def failed(self, *keys: str) -> bool:
        """Count a wrong password against every key; True if it locked one of them."""
        now = self._clock()
        locked = False
        with self._lock:
            for key in keys:
                run = self._runs.pop(key, None) or _Run()
                self._runs[key] = run  # most recent last: eviction takes the oldest
                if run.locked_until is None and run.count and now - run.last > self.limits.lockout_min * 60:
                    run.count = 0  # quiet for as long as a lockout: a fresh run
                run.count += 1
                run.last = now
                if run.count >= self.limits.lockout_after and run.locked_until is None:
                    run.locked_until = now + self.limits.lockout_min * 60
                    self.lockouts += 1
                    locked = True
            while len(self._runs) > self.limits.tracked:
                self._runs.popitem(last=False)
        return locked

    def succeeded(self, *keys: str) -> None:
        """A right password ends the runs of these keys."""
        with self._lock:
            for key in keys:
                self._runs.pop(key, None)

    def _backoff(self, count: int) -> float:
        k = min(count - self.limits.free_failures, 64)  # 2**64 × any back-off is past every cap
        return float(min(self.limits.backoff_max_s, self.limits.backoff_s * 2.0**k))


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
