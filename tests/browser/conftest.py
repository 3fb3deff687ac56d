"""Browser fixtures: Debian's Chromium driven by Playwright (no downloaded browser), headless.

Reusable for end-to-end tests against the real cart agent:

- ``browser`` (session): one Chromium for the whole run.
- ``open_kiosk(url)`` → ``KioskPage``: a fresh context (1280×800 touch screen, zh-CN, Asia/Shanghai)
  on that URL, with console errors collected (a test fails on any it did not allow), a screenshot
  after a failure, and helpers: ``wait_step``, ``tap_action``, ``shot``.
- ``kiosk_source`` / ``kiosk`` / ``page``: the page against the real ``KioskServer`` over a
  ``ScriptedSource`` (hand-written screen models, ``tests/browser/screens.py``).

Skipped only when Chromium is missing *and* ``WASTECART_REQUIRE_BROWSER`` is unset (CI sets it,
so these tests cannot silently vanish there).  Screenshots go to ``tests/browser/artifacts/`` or
``$WASTECART_BROWSER_ARTIFACTS``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.kiosk.server import KioskServer
from tests.browser.screens import IDLE, ScriptedSource

ARTIFACTS = Path(os.environ.get("WASTECART_BROWSER_ARTIFACTS") or Path(__file__).parent / "artifacts")
VIEWPORT = {"width": 1280, "height": 800}  # a 10" cart touch screen
WAIT_MS = 8000  # ms: the longest any expectation waits (the page reacts in well under a second)


def chromium_path() -> str | None:
    found = os.environ.get("WASTECART_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and Path(found).exists() else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's report on the item, so the page fixture can screenshot a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    exe = chromium_path()
    if exe is None:
        if os.environ.get("WASTECART_REQUIRE_BROWSER"):
            pytest.fail("WASTECART_REQUIRE_BROWSER is set but no chromium was found "
                        "(apt-get install chromium, or set WASTECART_CHROMIUM)")
        pytest.skip("no chromium on this machine (apt-get install chromium); set WASTECART_REQUIRE_BROWSER to fail")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        if os.environ.get("WASTECART_REQUIRE_BROWSER"):
            pytest.fail(f"WASTECART_REQUIRE_BROWSER is set but playwright is not installed: {exc}")
        pytest.skip(f"playwright is not installed ({exc}): pip install -e '.[dev]'")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True,
                               args=["--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


class KioskPage:
    """A Playwright page on the kiosk, with the waits and checks the tests share."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.name = name
        self.console_errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _on_page_error(self, error: Any) -> None:
        self.console_errors.append(f"uncaught: {error}")

    def by(self, testid: str) -> Any:
        return self.page.get_by_test_id(testid)

    def wait_step(self, step: str, timeout_ms: int = WAIT_MS) -> None:
        """Until the page has rendered a model whose ``step`` is ``step``."""
        self.page.wait_for_selector(f'body[data-step="{step}"]', state="attached", timeout=timeout_ms)

    def wait_link(self, state: str, timeout_ms: int = WAIT_MS) -> None:
        """Until the event stream is ``up`` or ``down``."""
        self.page.wait_for_selector(f'body[data-link="{state}"]', state="attached", timeout=timeout_ms)

    def tap_action(self, action_id: str) -> None:
        self.by(f"action-{action_id}").tap()

    def shot(self, label: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path))
        return path

    def allow_console(self, pattern: str) -> None:
        """A console error this test expects (a refused POST, a dropped connection)."""
        self.allowed.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.console_errors if not any(p.search(e) for p in self.allowed)]


def console_login(open_kiosk: Callable[..., KioskPage], url: str, user: str, password: str, page: str = "fleet",
                  shot: str | None = None) -> KioskPage:
    """A fresh browser context on the operator console at ``url``: sent to the login page, the form
    filled in and sent, then back on ``url`` once its ``body[data-page]`` is ``page``; ``shot``: a
    screenshot of the login page first."""
    kp = open_kiosk(url, has_touch=False)
    kp.page.wait_for_url("**/login?next=*")
    if shot:
        kp.shot(shot)
    kp.by("login-user").fill(user)
    kp.by("login-password").fill(password)
    kp.by("login-submit").click()
    kp.page.wait_for_selector(f'body[data-page="{page}"]')
    return kp


@pytest.fixture
def open_kiosk(browser: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., KioskPage]]:
    """``open_kiosk(url, **context_options)``: a fresh kiosk page (own storage), checked at teardown."""
    opened: list[tuple[Any, KioskPage]] = []
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    for stale in ARTIFACTS.glob(f"{name}-*.png"):  # an earlier run's shots (a FAILED one) would mislead
        stale.unlink()

    def open_(url: str, **options: Any) -> KioskPage:
        settings: dict[str, Any] = {"viewport": VIEWPORT, "locale": "zh-CN", "timezone_id": "Asia/Shanghai",
                                    "has_touch": True, **options}
        context = browser.new_context(**settings)
        context.set_default_timeout(WAIT_MS)
        kp = KioskPage(context.new_page(), name if not opened else f"{name}-{len(opened)}")
        opened.append((context, kp))
        kp.page.goto(url)
        return kp

    yield open_
    failed = any(getattr(getattr(request.node, f"report_{w}", None), "failed", False) for w in ("setup", "call"))
    try:
        for _, kp in opened:
            if failed:
                kp.shot("FAILED")
        errors = [e for _, kp in opened for e in kp.unexpected_errors()]
        if not failed:
            assert not errors, f"console errors on the kiosk page: {errors}"
    finally:
        for context, _ in opened:
            context.close()


@pytest.fixture
def kiosk_source() -> ScriptedSource:
    return ScriptedSource(IDLE)


@pytest.fixture
def kiosk(kiosk_source: ScriptedSource) -> Iterator[KioskServer]:
    with KioskServer(kiosk_source) as server:
        yield server


@pytest.fixture
def page(open_kiosk: Callable[..., KioskPage], kiosk: KioskServer) -> KioskPage:
    """The kiosk page on the scripted source, its first state rendered."""
    kp = open_kiosk(kiosk.url)
    kp.wait_link("up")
    return kp
