"""The operator console's users: name, role, argon2id hash, disabled flag (migration 4).

Hashing is the caller's (``gateway.console.auth``); this room only keeps rows.  A disabled user
keeps its row, so a name is never reused silently and what it did stays attributable.  Every
change bumps ``changed_at``: a session opened before it is no longer honoured (the console
compares the two).  ``SqliteUsers`` works alone on its own connection (the CLI, the console) or
as a mixin of ``SqliteStore``.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from gateway.errors import GatewayStoreError
from gateway.store.connection import SqliteConnection

ROLES = ("viewer", "operator", "admin")  # as the schema's CHECK: least to most allowed
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")  # a login name: ASCII, 1..64 chars
HASH_MAX = 512  # characters: an argon2 encoded hash is ~100; anything longer is not one


def check_name(name: str) -> str:
    """``name`` if it is a valid login name; GatewayStoreError (one line) if not."""
    if not NAME_RE.fullmatch(name):
        raise GatewayStoreError(f"user name {name[:80]!r}: 1-64 letters, digits, '.', '_', '@' or '-',"
                                " starting with a letter or digit")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise GatewayStoreError(f"role {role[:40]!r}: one of {', '.join(ROLES)}")
    return role


class SqliteUsers(SqliteConnection):
    """``users`` rows: add, read, change password / role / disabled."""

    def add_user(self, name: str, role: str, password_hash: str, now: float) -> bool:
        """A new user; False if the name is taken (disabled or not)."""
        check_name(name)
        check_role(role)
        _check_hash(password_hash)
        try:
            with self._tx("adding a user") as db:
                db.execute("INSERT INTO users (name, role, password_hash, disabled, created_at, changed_at)"
                           " VALUES (?, ?, ?, 0, ?, ?)", (name, role, password_hash, now, now))
        except GatewayStoreError as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                return False
            raise
        return True

    def user(self, name: str) -> dict[str, Any] | None:
        """{name, role, password_hash, disabled (bool), created_at, changed_at}, or None."""
        with self._read("reading a user") as db:
            row = db.execute("SELECT name, role, password_hash, disabled, created_at, changed_at FROM users"
                             " WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return {"name": row[0], "role": row[1], "password_hash": row[2], "disabled": bool(row[3]),
                "created_at": row[4], "changed_at": row[5]}

    def users(self) -> list[dict[str, Any]]:
        """Every user without its hash, by name: {name, role, disabled, created_at, changed_at}."""
        with self._read("listing users") as db:
            rows = db.execute("SELECT name, role, disabled, created_at, changed_at FROM users ORDER BY name")
            return [{"name": n, "role": r, "disabled": bool(d), "created_at": c, "changed_at": ch}
                    for n, r, d, c, ch in rows.fetchall()]

    def set_password(self, name: str, password_hash: str, now: float) -> bool:
        _check_hash(password_hash)
        return self._change(name, "password_hash = ?", (password_hash,), now)

    def set_disabled(self, name: str, disabled: bool, now: float) -> bool:
        return self._change(name, "disabled = ?", (1 if disabled else 0,), now)

    def set_role(self, name: str, role: str, now: float) -> bool:
        return self._change(name, "role = ?", (check_role(role),), now)

    def _change(self, name: str, assignment: str, params: tuple[Any, ...], now: float) -> bool:
        """One column changed and ``changed_at`` bumped (ending the user's sessions); False: no such user."""
        with self._tx("changing a user") as db:
            cur = db.execute(f"UPDATE users SET {assignment}, changed_at = ? WHERE name = ?", (*params, now, name))
        return cur.rowcount == 1


def _check_hash(password_hash: str) -> None:
    if not password_hash.startswith("$argon2") or len(password_hash) > HASH_MAX:
        raise GatewayStoreError("a user's password must be stored as an argon2 hash")
