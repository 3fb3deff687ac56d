"""The console's ASGI app: routes, sessions, CSRF and roles on every request.

Who gets what:
- ``GET /healthz`` and ``/metrics`` (its own bearer token when ``metrics_token_file`` is set) and
  ``/static`` (the page's CSS and script, no data) need no login; ``/login`` is the way in.
- Everything else needs a session: pages redirect to ``/login``, ``/api/*`` answers 401.
- Every POST needs the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``): 403.
- A change needs a role: acknowledging an alert is ``operator`` or ``admin``; a viewer gets 403.

A session is a signed cookie (``SessionMiddleware``: HttpOnly, SameSite=Strict, Secure when
``secure_cookie``) holding the user name, the user's ``changed_at`` at login and the CSRF token.
Each request re-reads the user: a disabled user, a new password or a new role ends the sessions.
Starlette runs the plain ``def`` handlers in its thread pool (argon2 and SQLite stay off the loop).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.console import auth, detail
from gateway.console.fleet import ConsoleDb
from gateway.console.hooks import GatewayHooks
from gateway.console.i18n import LANG_COOKIE, LANGS, lang_of, texts
from gateway.console.live import FleetHub
from gateway.console.settings import ConsoleConfig
from gateway.store import GatewayRepository

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "wc_console"
FORM_MAX = 16 * 1024  # bytes: a login or an acknowledgement is a few hundred; more is refused (413)
NOTE_MAX = 500  # characters of an acknowledgement's note kept; a note is a sentence, not a document
ALERTS_SHOWN = 200  # alerts listed on the page, newest first
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
PUBLIC = ("/healthz", "/metrics", "/static/", "/login")  # the only paths answered without a session


class Console:
    """The handlers and what they need: the gateway's queries, the console's db, the limiter."""

    def __init__(self, store: Callable[[], GatewayRepository], db: ConsoleDb, hub: FleetHub, config: ConsoleConfig,
                 hooks: GatewayHooks, passwords: auth.Passwords | None = None) -> None:
        self.store = store
        self.hooks = hooks
        self.db = db
        self.hub = hub
        self.config = config
        self.passwords = passwords or auth.Passwords()
        self.names = auth.LoginLimiter(config.login)
        self.addresses = auth.LoginLimiter(config.login.for_addresses())
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))

    # ---- sessions and rendering -------------------------------------------------------------------

    def current(self, request: Request) -> dict[str, Any] | None:
        """The logged-in user ({name, role, …}) or None; a session outlived by a change of the user is dropped."""
        name = request.session.get("user")
        if not isinstance(name, str):
            return None
        user = self.db.user(name)
        if user is None or user["disabled"] or user["changed_at"] != request.session.get("since"):
            request.session.clear()
            return None
        return user

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        asked = request.query_params.get("lang")
        lang = lang_of(asked, request.cookies.get(LANG_COOKIE))
        # the language links keep the page's query (a ledger filter, a page cursor), only ``lang`` changes
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
        lang_links = {code: "?" + urlencode([*kept, ("lang", code)]) for code in LANGS}
        html = self.env.get_template(template).render(
            t=texts(lang), lang=lang, langs=LANGS, lang_links=lang_links, path=request.url.path,
            csrf=self.csrf(request), **context)
        response = HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
        if asked in LANGS:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict",
                                secure=self.config.secure_cookie)
        return response

    @staticmethod
    def csrf(request: Request) -> str:
        token = request.session.get("csrf")
        if not isinstance(token, str):
            token = auth.new_csrf_token()
            request.session["csrf"] = token
        return token

    def refuse(self, request: Request, status: int, key: str) -> Response:
        """The error page, or ``{"error": key}`` to the API and to a script that asks for JSON."""
        if request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"error": key}, status_code=status)
        user = self.current(request)
        return self.page(request, "error.html", status=status, user=user, message=key)

    # ---- routes ------------------------------------------------------------------------------------

    def healthz(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "fleet_streams": self.hub.clients}, headers={"Cache-Control": "no-store"})

    def login_page(self, request: Request) -> Response:
        return self.page(request, "login.html", user=None, error=None, name="", next=_next(request))

    async def login(self, request: Request) -> Response:
        form = await read_form(request)
        if form is None:
            return Response("form too large", status_code=413)
        if not auth.csrf_ok(request.session.get("csrf"), form.get(auth.CSRF_FIELD)):
            return self.refuse(request, 403, "csrf")
        return await run_in_threadpool(self._login, request, form)

    def _login(self, request: Request, form: dict[str, str]) -> Response:
        name = form.get("user", "")[:64]
        password = form.get("password", "")
        address = request.client.host if request.client else "-"
        after = _safe_next(form.get("next", "/"))
        waits = [w for w in (self.names.check(name.lower()), self.addresses.check(address)) if w is not None]
        if waits:
            wait = max(waits, key=lambda w: (w.locked, w.seconds))
            key = "login_locked" if wait.locked else "login_wait"
            message = texts(lang_of(None, request.cookies.get(LANG_COOKIE)))[key].format(
                s=wait.whole_seconds, m=max(1, -(-wait.whole_seconds // 60)))
            return self.page(request, "login.html", status=429, user=None, error=message, name=name, next=after)
        user = self.db.user(name) if name else None
        usable = user is not None and not user["disabled"]
        if not self.passwords.verify(user["password_hash"] if usable and user else None, password) or user is None:
            if self.names.failed(name.lower()) | self.addresses.failed(address):
                log.warning("console: logins locked for %r or %s after repeated wrong passwords", name, address)
            message = texts(lang_of(None, request.cookies.get(LANG_COOKIE)))["login_failed"]
            return self.page(request, "login.html", status=401, user=None, error=message, name=name, next=after)
        self.names.succeeded(name.lower())  # not the address's: one valid account must not reset its count
        request.session.clear()
        request.session.update({"user": user["name"], "since": user["changed_at"], "csrf": auth.new_csrf_token()})
        log.info("console: %s (%s) logged in from %s", user["name"], user["role"], address)
        return RedirectResponse(after, status_code=303)

    async def logout(self, request: Request) -> Response:
        form = await read_form(request)
        if form is None or not auth.csrf_ok(request.session.get("csrf"), form.get(auth.CSRF_FIELD)):
            return self.refuse(request, 403, "csrf")
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    def fleet_page(self, request: Request) -> Response:
        user = self.current(request)
        body = self.hub.read_now()
        # "<" escaped: the JSON sits in a <script type="application/json"> element
        return self.page(request, "fleet.html", user=user, fleet=body.decode().replace("<", "\\u003c"))

    def fleet_json(self, request: Request) -> Response:
        return Response(self.hub.read_now(), media_type="application/json", headers={"Cache-Control": "no-store"})

    async def fleet_events(self, request: Request) -> Response:
        client = self.hub.register()
        if client is None:
            return JSONResponse({"error": "too many live streams"}, status_code=503)
        return StreamingResponse(self.hub.stream(client), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def me(self, request: Request) -> Response:
        user = self.current(request) or {}
        return JSONResponse({"name": user.get("name"), "role": user.get("role"), "csrf": self.csrf(request)})

    def alerts_page(self, request: Request) -> Response:
        user = self.current(request)
        rows = self.store().alerts(ALERTS_SHOWN)
        may_ack = user is not None and auth.allowed(user["role"], "operator")
        return self.page(request, "alerts.html", user=user, alerts=rows, may_ack=may_ack, when=local_time)

    async def checked_form(self, request: Request) -> dict[str, str] | Response:
        """A POST's form once its size and the session's CSRF token (field or header) pass; otherwise the
        refusal to send (413, 403).  Every POST but the login's starts here; the role is checked after."""
        form = await read_form(request)
        if form is None:
            return Response("form too large", status_code=413)
        given = request.headers.get(auth.CSRF_HEADER) or form.get(auth.CSRF_FIELD)
        if not auth.csrf_ok(request.session.get("csrf"), given):
            return self.refuse(request, 403, "csrf")
        return form

    async def acknowledge(self, request: Request) -> Response:
        form = await self.checked_form(request)
        if isinstance(form, Response):
            return form
        return await run_in_threadpool(self._acknowledge, request, form.get("note", "")[:NOTE_MAX])

    def _acknowledge(self, request: Request, note: str) -> Response:
        user = self.current(request)
        if user is None or not auth.allowed(user["role"], "operator"):
            return self.refuse(request, 403, "forbidden")
        try:
            alert_id = int(request.path_params["alert_id"])
        except ValueError:
            return self.refuse(request, 404, "not_found")
        done = self.store().acknowledge_alert(alert_id, user["name"], note, time.time())
        log.info("console: alert %d acknowledged by %s (%s)", alert_id, user["name"], "done" if done else "no-op")
        return RedirectResponse("/alerts", status_code=303)

    def cart_page(self, request: Request) -> Response:
        user = self.current(request)
        cart = request.path_params["cart"]
        device = self.store().device(cart)
        if device is None:
            return self.refuse(request, 404, "not_found")
        span = detail.range_of(request.query_params.get("range"))
        series = self._series(cart, span)
        return self.page(request, "cart.html", user=user, cart=detail.cart_view(device), span=span,
                         ranges=detail.RANGES, series_keys=detail.SERIES, summary=series["summary"],
                         series=_script_json(series), chain=self.db.chain(cart), records=self.db.recent(cart),
                         alerts=self.store().alerts(ALERTS_SHOWN, cart=cart), when=local_time)

    def cart_series(self, request: Request) -> Response:
        cart = request.path_params["cart"]
        if self.store().device(cart) is None:
            return self.refuse(request, 404, "not_found")
        series = self._series(cart, detail.range_of(request.query_params.get("range")))
        return JSONResponse(series, headers={"Cache-Control": "no-store"})

    def _series(self, cart: str, span: str) -> dict[str, Any]:
        until = time.time()
        since = until - detail.RANGES[span]
        return detail.series_json(self.store().telemetry_series(cart, since, until, detail.POINTS), span, since, until)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/healthz", self.healthz),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/", self.fleet_page),
            Route("/api/fleet", self.fleet_json),
            Route("/api/fleet/events", self.fleet_events),
            Route("/api/me", self.me),
            Route("/alerts", self.alerts_page),
            Route("/carts/{cart}", self.cart_page),
            Route("/api/carts/{cart}/series", self.cart_series),
            Route("/alerts/{alert_id}/ack", self.acknowledge, methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]


def build_app(console: Console, secret: str, metrics: ASGIApp | None, metrics_token: str | None,
              on_start: Callable[[], None] = lambda: None, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The whole ASGI app: headers ∘ sessions ∘ login gate ∘ routes (+ /metrics); ``on_start`` runs
    when the server's loop is up (ConsoleServer waits for it); ``extra_routes``: the pages of the
    modules built on ``Console`` (``gateway.console.server.page_routes``)."""

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        on_start()
        yield

    routes = [*console.routes()[:-1], *extra_routes, console.routes()[-1]]  # the static mount last
    if metrics is not None:
        routes.append(Route("/metrics", BearerGate(metrics, metrics_token)))
    app = Starlette(routes=routes, lifespan=lifespan, middleware=[
        Middleware(SecurityHeaders),
        Middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                   max_age=int(console.config.session_hours * 3600), same_site="strict",
                   https_only=console.config.secure_cookie),
        Middleware(LoginGate, console=console),
    ])
    return app


class LoginGate:
    """No session, no page (303 to /login) and no API (401); the public paths pass."""

    def __init__(self, app: ASGIApp, console: Console) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in PUBLIC or path.startswith("/static/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if await run_in_threadpool(self.console.current, request) is not None:
            await self.app(scope, receive, send)
            return
        if path.startswith("/api/") or scope.get("method") != "GET":
            response: Response = JSONResponse({"error": "login required"}, status_code=401)
        else:
            target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
            response = RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)
        await response(scope, receive, send)


class BearerGate:
    """``Authorization: Bearer TOKEN`` in front of an ASGI app; no token configured: open."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is not None and scope["type"] == "http":
            given = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
            if not auth.csrf_ok(f"Bearer {self.token}", given):
                response = JSONResponse({"error": "bearer token required"}, status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """CSP and friends on every response (as the kiosk's handler sends them)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def read_form(request: Request) -> dict[str, str] | None:
    """An urlencoded body as {field: first value}; None if larger than FORM_MAX."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > FORM_MAX:
            return None
        chunks.append(chunk)
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return {}
    try:
        parsed = parse_qs(b"".join(chunks).decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=32)
    except ValueError:  # more fields than any of our forms has
        return {}
    return {key: values[0] for key, values in parsed.items()}


def _next(request: Request) -> str:
    return _safe_next(request.query_params.get("next", "/"))


def _safe_next(target: str) -> str:
    """Only a path of this site (never ``//host`` or ``https://…``): no open redirect after login."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or len(target) > 512:
        return "/"
    return target


def _script_json(value: Any) -> str:
    """JSON to sit in a ``<script type="application/json">`` element ("<" escaped: no "</script>")."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def local_time(ts: float | None) -> str:
    """A unix time as the gateway's local wall time for a page ("-" for none)."""
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))

