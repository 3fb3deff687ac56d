"""The console's gatekeeping without a server: passwords, the login limiter, CSRF, roles, the
users table, the language switch and the redirect after login."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from gateway.console.auth import (
    PASSWORD_MAX,
    LoginLimiter,
    PasswordError,
    Passwords,
    allowed,
    csrf_ok,
    new_csrf_token,
)
from gateway.console.i18n import CATALOGUE, lang_of, texts
from gateway.console.keys import metrics_token, session_secret
from gateway.console.settings import LoginLimits
from gateway.console.web import _safe_next
from gateway.errors import GatewayError, GatewayStoreError
from gateway.store.users import SqliteUsers

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # the unit tests' hashes: argon2id, cheap


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_passwords_are_argon2id_and_verified() -> None:
    pw = Passwords(FAST)
    stored = pw.hash("correct horse")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert pw.verify(stored, "correct horse")
    assert not pw.verify(stored, "correct hors")
    assert not pw.verify(None, "correct horse")  # an unknown user: checked against the dummy, never True
    assert not pw.verify("not-a-hash", "correct horse")
    assert not pw.verify(stored, "x" * (PASSWORD_MAX + 1))
    with pytest.raises(PasswordError, match="at least 8"):
        pw.hash("short")


def test_an_unknown_user_costs_about_as_much_as_a_wrong_password() -> None:
    pw = Passwords(PasswordHasher(time_cost=2, memory_cost=16 * 1024, parallelism=1))
    stored = pw.hash("correct horse")

    def cost(h: str | None) -> float:
        start = time.perf_counter()
        for _ in range(5):
            pw.verify(h, "wrong password")
        return time.perf_counter() - start

    known, unknown = cost(stored), cost(None)
    assert unknown > known / 3  # a real hash was computed (a skipped one would be ~1000x faster)


def test_back_off_then_lockout_then_a_fresh_run() -> None:
    clock = Clock()
    limits = LoginLimits(free_failures=2, backoff_s=1.0, backoff_max_s=4.0, lockout_after=5, lockout_min=1.0)
    lim = LoginLimiter(limits, clock)
    for _ in range(2):
        assert lim.check("ops") is None
        assert not lim.failed("ops")
    wait = lim.check("ops")
    assert wait is not None and not wait.locked and wait.seconds == pytest.approx(1.0)
    clock.now += 1.0
    assert lim.check("ops") is None and not lim.failed("ops")  # 3rd: the next waits 2 s
    clock.now += 1.5
    assert lim.check("ops") is not None
    clock.now += 0.5
    assert not lim.failed("ops")  # 4th
    clock.now += 4.0
    assert lim.failed("ops")  # 5th: locked
    wait = lim.check("ops", "other")
    assert wait is not None and wait.locked and wait.whole_seconds == 60
    assert lim.check("other") is None  # another key is not affected
    clock.now += 60.0
    assert lim.check("ops") is None  # served: a fresh run
    assert not lim.failed("ops") and lim.check("ops") is None
    assert lim.lockouts == 1


def test_a_right_password_ends_the_run_and_a_quiet_run_is_forgotten() -> None:
    clock = Clock()
    lim = LoginLimiter(LoginLimits(free_failures=1, lockout_after=3, lockout_min=1.0), clock)
    lim.failed("ops")
    lim.failed("ops")
    lim.succeeded("ops")
    assert lim.check("ops") is None
    lim.failed("ops")
    lim.failed("ops")
    clock.now += 61.0  # longer than a lockout: forgotten
    assert lim.check("ops") is None
    assert not lim.failed("ops")


def test_the_limiter_table_is_bounded() -> None:
    lim = LoginLimiter(LoginLimits(free_failures=1, lockout_after=2, tracked=10), Clock())
    for i in range(1000):
        lim.failed(f"made-up-{i}")
    assert len(lim._runs) == 10 and "made-up-999" in lim._runs and "made-up-0" not in lim._runs


def test_csrf_tokens_are_random_and_compared_exactly() -> None:
    a, b = new_csrf_token(), new_csrf_token()
    assert a != b and len(a) >= 40
    assert csrf_ok(a, a)
    assert not csrf_ok(a, b)
    assert not csrf_ok(a, None) and not csrf_ok(a, "")
    assert not csrf_ok(None, a) and not csrf_ok("", "")
    assert not csrf_ok(a, a + "x")


def test_roles_are_ordered_and_unknown_roles_get_nothing() -> None:
    assert allowed("admin", "operator") and allowed("operator", "operator") and allowed("viewer", "viewer")
    assert not allowed("viewer", "operator") and not allowed("operator", "admin")
    assert not allowed("root", "viewer") and not allowed("admin", "superuser")


def test_users_table(tmp_path: Path) -> None:
    users = SqliteUsers(tmp_path / "gateway.sqlite")
    try:
        h = Passwords(FAST).hash("password-1")
        assert users.add_user("ops", "operator", h, 1.0)
        assert not users.add_user("ops", "viewer", h, 2.0)  # taken
        with pytest.raises(GatewayStoreError, match="user name"):
            users.add_user("bad name", "viewer", h, 1.0)
        with pytest.raises(GatewayStoreError, match="role"):
            users.add_user("x", "root", h, 1.0)
        with pytest.raises(GatewayStoreError, match="argon2"):
            users.add_user("y", "viewer", "plain-text", 1.0)
        assert users.set_disabled("ops", True, 5.0) and not users.set_disabled("nobody", True, 5.0)
        row = users.user("ops")
        assert row is not None and row["disabled"] and row["changed_at"] == 5.0 and row["role"] == "operator"
        assert users.set_role("ops", "admin", 6.0)
        assert [u["name"] for u in users.users()] == ["ops"] and "password_hash" not in users.users()[0]
    finally:
        users.close()


def test_language_and_catalogue() -> None:
    assert lang_of(None, None) == "zh" and lang_of("en", "zh") == "en" and lang_of("fr", "en") == "en"
    zh, en = texts("zh"), texts("en")
    assert set(zh) == set(en) == set(CATALOGUE) and zh["login"] == "登录" and en["login"] == "Log in"
    assert all(zh[k] and en[k] for k in CATALOGUE)


def test_only_local_paths_are_followed_after_login() -> None:
    assert _safe_next("/alerts?x=1") == "/alerts?x=1"
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example", "alerts", "/" + "a" * 600):
        assert _safe_next(evil) == "/"


def test_session_secret_is_created_private_and_kept(tmp_path: Path) -> None:
    first = session_secret(tmp_path)
    assert (tmp_path / "console.secret").stat().st_mode & 0o777 == 0o600
    assert session_secret(tmp_path) == first and len(first) == 64
    (tmp_path / "console.secret").write_text("short\n")
    with pytest.raises(GatewayError, match="too short"):
        session_secret(tmp_path)


def test_metrics_token_file(tmp_path: Path) -> None:
    assert metrics_token(None) is None
    f = tmp_path / "token"
    f.write_text("0123456789abcdef-long-enough\nignored\n")
    assert metrics_token(f) == "0123456789abcdef-long-enough"
    f.write_text("short\n")
    with pytest.raises(GatewayError, match=r"console\.metrics_token_file"):
        metrics_token(f)
    with pytest.raises(GatewayError, match=r"console\.metrics_token_file"):
        metrics_token(tmp_path / "missing")
