"""The console's action pages (issue 15): quarantine, dead letters, the audit log, cart key enrollment.

Who may do what: everyone logged in reads the quarantine and dead-letter pages; releasing,
discarding and retrying need ``operator`` (a viewer gets 403 and sees no buttons); the audit log
(read-only) and key enrollment need ``admin``.  Every POST checks the session's CSRF token first.
Each action is one store transaction with its audit row (``gateway.store.actions``); the outcome is
flashed in plain words on the page the POST redirects to (303), kept in the session until shown.

Enrollment writes ``<cart_keys_dir>/<CART>.pub`` atomically (a temporary file, fsync, rename) inside
the audit row's transaction (``SqliteActions.audited``): no key without its ``key.enroll`` row.  A
different key already there is replaced only when "replace" is ticked, with a reason.  The
gateway's ``KeyRing`` reads a new cart's file on first use; a replaced key it already loaded is
used until the gateway restarts (the page says so).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from edge import wire
from gateway.console import auth
from gateway.console.i18n import LANG_COOKIE, lang_of, texts
from gateway.errors import GatewayError
from gateway.release import release
from gateway.store.actions import DEAD_STATES, QUARANTINE_STATES, ActionResult, NotFound, check_reason
from gateway.store.schema import ALERT_KINDS_V3

if TYPE_CHECKING:
    from gateway.console.web import Console

log = logging.getLogger(__name__)

PAGE = 50  # rows per page
KEY_TEXT_MAX = 200  # characters of a pasted key (a base64 Ed25519 key is 44)
FLASH_ARG_MAX = 300  # characters of each flashed detail (an ingest error quotes at most 300)

Act = Callable[[Request, dict[str, str], dict[str, Any]], Response]


def routes(console: Console) -> list[BaseRoute]:
    pages = ActionPages(console)
    return [
        Route("/quarantine", pages.quarantine_page, methods=["GET"]),
        Route("/quarantine/{qid:int}", pages.quarantine_item_page, methods=["GET"]),
        Route("/quarantine/{qid:int}/release", pages.post("operator", pages.release), methods=["POST"]),
        Route("/quarantine/{qid:int}/discard", pages.post("operator", pages.discard_quarantined), methods=["POST"]),
        Route("/dead", pages.dead_page, methods=["GET"]),
        Route("/dead/{record_id}/retry", pages.post("operator", pages.retry_dead), methods=["POST"]),
        Route("/dead/{record_id}/discard", pages.post("operator", pages.discard_dead), methods=["POST"]),
        Route("/audit", pages.audit_page, methods=["GET"]),
        Route("/keys", pages.keys_page, methods=["GET"]),
        Route("/keys", pages.post("admin", pages.enroll_key), methods=["POST"]),
    ]


class ActionPages:
    """The handlers; ``post(role, act)`` wraps an action in the CSRF, role and not-found checks."""

    def __init__(self, console: Console) -> None:
        self.console = console

    # ---- the POST pattern: CSRF, role, the action, a flash, a redirect -------------------------

    def post(self, needed: str, act: Act) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            form = await self.console.checked_form(request)
            if isinstance(form, Response):
                return form
            return await run_in_threadpool(self._guarded, request, form, needed, act)

        return handler

    def _guarded(self, request: Request, form: dict[str, str], needed: str, act: Act) -> Response:
        user = self.console.current(request)
        if user is None or not auth.allowed(user["role"], needed):
            return self.console.refuse(request, 403, "forbidden")
        try:
            return act(request, form, user)
        except NotFound:
            return self.console.refuse(request, 404, "not_found")

    @staticmethod
    def _done(request: Request, result: ActionResult, to: str) -> Response:
        """Flash ``result`` and redirect (303) to ``to``; the args cut short: the session is a cookie."""
        args = {k: v[:FLASH_ARG_MAX] for k, v in result.args.items()}
        request.session["flash"] = {"ok": result.ok, "key": result.key, "args": args}
        return RedirectResponse(to, status_code=303)

    def _render(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        user = self.console.current(request)
        flash = request.session.pop("flash", None)
        t = texts(lang_of(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)))
        return self.console.page(request, template, status=status, user=user, flash=flash_text(t, flash),
                                 flash_ok=bool(flash and flash.get("ok")), when=when, **context)

    # ---- quarantine ----------------------------------------------------------------------------

    def quarantine_page(self, request: Request) -> Response:
        q = request.query_params
        state = q.get("state", "waiting")
        kind, cart = q.get("kind") or None, (q.get("cart") or "").strip() or None
        error = None
        if state not in (*QUARANTINE_STATES, "all"):
            error, state = f"state {state!r}: expected one of {', '.join(QUARANTINE_STATES)}, all", "waiting"
        if kind is not None and kind not in ALERT_KINDS_V3:
            error, kind = f"kind {kind!r}: expected one of {', '.join(ALERT_KINDS_V3)}", None
        before = _int(q.get("before"))
        rows = self.console.store().quarantine_list(None if state == "all" else state,  # type: ignore[arg-type]
                                                    kind, cart, PAGE, before)
        more = rows[-1]["id"] if len(rows) == PAGE else None
        return self._render(request, "quarantine.html", status=400 if error else 200, rows=rows, error=error,
                            state=state, kind=kind or "", cart=cart or "", kinds=ALERT_KINDS_V3,
                            states=(*QUARANTINE_STATES, "all"), more=more, may_act=self._may(request, "operator"))

    def quarantine_item_page(self, request: Request) -> Response:
        item = self.console.store().quarantine_item(int(request.path_params["qid"]))
        if item is None:
            return self.console.refuse(request, 404, "not_found")
        return self._render(request, "quarantine_item.html", item=item, may_act=self._may(request, "operator"))

    def release(self, request: Request, form: dict[str, str], user: dict[str, Any]) -> Response:
        qid = int(request.path_params["qid"])
        try:
            result = release(self.console.store(), self.console.hooks.keys, qid, time.time(), user=user["name"])
        except GatewayError as exc:
            raise NotFound(str(exc)) from exc
        if result.ok:  # a stored record to forward: now, not at the forwarder's next idle tick
            self.console.hooks.wake_forwarder()
        log.info("console: quarantine #%d release by %s: %s", qid, user["name"], result.text)
        return self._done(request, result, f"/quarantine/{qid}")

    def discard_quarantined(self, request: Request, form: dict[str, str], user: dict[str, Any]) -> Response:
        qid = int(request.path_params["qid"])
        try:
            result = self.console.store().discard_quarantined(qid, user["name"], form.get("reason", ""), time.time())
        except ValueError:
            result = ActionResult(False, "reason: required", "action_reason_required")
        log.info("console: quarantine #%d discard by %s: %s", qid, user["name"], result.text)
        return self._done(request, result, f"/quarantine/{qid}")

    # ---- dead letters ----------------------------------------------------------------------------

    def dead_page(self, request: Request) -> Response:
        state = request.query_params.get("state", "waiting")
        error = None
        if state not in (*DEAD_STATES, "all"):
            error, state = f"state {state!r}: expected one of {', '.join(DEAD_STATES)}, all", "waiting"
        rows = self.console.store().dead_list(None if state == "all" else state,  # type: ignore[arg-type]
                                              PAGE, _int(request.query_params.get("before")))
        more = rows[-1]["cursor"] if len(rows) == PAGE else None
        return self._render(request, "dead.html", status=400 if error else 200, rows=rows, error=error, state=state,
                            states=(*DEAD_STATES, "all"), more=more, may_act=self._may(request, "operator"))

    def retry_dead(self, request: Request, form: dict[str, str], user: dict[str, Any]) -> Response:
        record_id = request.path_params["record_id"]
        result = self.console.store().retry_dead(record_id, user["name"], time.time())
        if result.ok:
            self.console.hooks.wake_forwarder()
        log.info("console: dead letter %s retry by %s: %s", record_id, user["name"], result.text)
        return self._done(request, result, "/dead")

    def discard_dead(self, request: Request, form: dict[str, str], user: dict[str, Any]) -> Response:
        record_id = request.path_params["record_id"]
        try:
            result = self.console.store().discard_dead(record_id, user["name"], form.get("reason", ""), time.time())
        except ValueError:
            result = ActionResult(False, "reason: required", "action_reason_required")
        log.info("console: dead letter %s discard by %s: %s", record_id, user["name"], result.text)
        return self._done(request, result, "/dead")

    # ---- the audit log (admins, read-only) ---------------------------------------------------------

    def audit_page(self, request: Request) -> Response:
        if not self._may(request, "admin"):
            return self.console.refuse(request, 403, "forbidden")
        store = self.console.store()
        rows = store.audit_entries(PAGE, _int(request.query_params.get("before")))
        checked, broken_at = store.verify_audit()
        more = rows[-1]["id"] if len(rows) == PAGE else None
        return self._render(request, "audit.html", rows=rows, checked=checked, broken_at=broken_at, more=more)

    # ---- cart keys (admins) ----------------------------------------------------------------------

    def keys_page(self, request: Request) -> Response:
        if not self._may(request, "admin"):
            return self.console.refuse(request, 403, "forbidden")
        folder = self.console.hooks.cart_keys_dir
        enrolled = _enrolled(folder) if folder is not None else []
        cart = request.query_params.get("cart", "")[:32]
        return self._render(request, "keys.html", folder=folder, enrolled=enrolled, cart=cart)

    def enroll_key(self, request: Request, form: dict[str, str], user: dict[str, Any]) -> Response:
        folder = self.console.hooks.cart_keys_dir
        if folder is None:
            return self._done(request, ActionResult(False, "no cart_keys_dir", "action_keys_no_dir"), "/keys")
        result = enroll(self.console, folder, form, user["name"])
        log.info("console: key enrollment by %s: %s", user["name"], result.text)
        return self._done(request, result, "/keys")

    def _may(self, request: Request, needed: str) -> bool:
        user = self.console.current(request)
        return user is not None and auth.allowed(user["role"], needed)


def enroll(console: Console, folder: Path, form: dict[str, str], user: str) -> ActionResult:
    """Check the pasted cart id and key, then write ``<folder>/<CART>.pub`` with its audit row."""
    cart, text = form.get("cart", "").strip(), form.get("key", "").strip()[:KEY_TEXT_MAX]
    try:
        wire.check_id(cart, "cart")
    except wire.ContractError as exc:
        return ActionResult(False, str(exc), "action_keys_bad_cart", {"why": str(exc)})
    try:
        key = wire.public_key_text(wire.load_public_key(text))
    except wire.ContractError as exc:
        return ActionResult(False, str(exc), "action_keys_bad_key", {"why": str(exc)})
    path = folder / f"{cart}.pub"
    old = _read_key(path)
    args = {"cart": cart}
    if old == key:
        return ActionResult(True, f"cart {cart}: this key is enrolled already", "action_keys_same", args)
    reason = ""
    if old is not None:
        if form.get("replace") != "1":
            return ActionResult(False, f"cart {cart} has another key; tick replace", "action_keys_differs", args)
        try:
            reason = check_reason(form.get("reason", ""))
        except ValueError:
            return ActionResult(False, "reason: required to replace a key", "action_reason_required", args)
    tmp = folder / f".{cart}.pub.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_synced(tmp, key + "\n")
        console.store().audited(user, "key.enroll", f"cart {cart}", reason, {"key": key, "replaced": old},
                                time.time(), lambda: _replace(tmp, path))
    except OSError as exc:
        why = str(exc.strerror or exc)
        return ActionResult(False, f"{path}: {why}", "action_keys_io", {"why": why})
    finally:
        tmp.unlink(missing_ok=True)
    return ActionResult(True, f"cart {cart} enrolled", "action_keys_replaced" if old else "action_keys_enrolled", args)


def _read_key(path: Path) -> str | None:
    """The key text of an enrolled cart (canonical base64), the raw text if unusable, None if none."""
    try:
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return "?"
    try:
        return wire.public_key_text(wire.load_public_key(text))
    except wire.ContractError:
        return text


def _enrolled(folder: Path) -> list[dict[str, str]]:
    try:
        paths = sorted(folder.glob("*.pub"))
    except OSError:
        return []
    return [{"cart": p.stem, "key": _read_key(p) or "?"} for p in paths[:1000]]


def _write_synced(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _replace(tmp: Path, path: Path) -> None:
    """The rename, then the folder synced: the new name survives a power cut."""
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def flash_text(t: dict[str, str], flash: Any) -> str | None:
    """The flashed outcome in the page's language; None if there is none."""
    if not isinstance(flash, dict) or not isinstance(flash.get("key"), str):
        return None
    given = flash.get("args")
    args: dict[str, Any] = given if isinstance(given, dict) else {}
    key: str = flash["key"]
    template = t.get(key, key)
    try:
        return template.format(**args)
    except (KeyError, IndexError, ValueError):
        return template


def when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
