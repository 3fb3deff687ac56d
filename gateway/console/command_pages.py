"""The console's remote commands to a cart (issue 15): resend from a seq, time sync, reprint a bag's
label, push workflow settings; and the list of a cart's commands with the cart's answers.

- ``POST /carts/{cart}/commands/{name}`` (operator or admin; CSRF first; a viewer gets 403): the
  form is checked here, each bad field named in one line (400), then handed to the gateway
  (``hooks.command``: logged with who asked and its audit row ``command.<name>`` in one
  transaction, signed with the gateway's key, published).  409 if it could not be sent (no
  verified boot of the cart yet, or the broker refused it).  ``Accept: application/json`` (the
  cart page's script) gets ``{"counter"}`` or ``{"error"}``; a plain form post is sent back to the
  cart page (303).
- ``GET /api/carts/{cart}/commands``: the cart's commands, newest first, each with the cart's
  answer (``cmd_result``, joined by boot and counter), and the settings a ``config`` may push with
  their allowed ranges and the value last pushed and done.  The cart page polls it.

Arguments are checked against the same bounds the cart checks (``wire.CONFIG_BOUNDS``; a label must
look like a package code or one of our bag labels), so an operator hears of a typo here, not as a
refusal from the cart.  The cart still parses a label's check characters itself (``edge.codes``,
which the gateway does not import): a damaged one comes back refused, with why.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from edge import wire
from edge.wire.core import CMD_CONFIG, CMD_NAMES, CMD_REPRINT, CONFIG_BOUNDS, LABEL_MAX
from gateway.console import auth
from gateway.console.i18n import LANG_COOKIE, lang_of, texts
from gateway.console.web import local_time

if TYPE_CHECKING:
    from gateway.console.web import Console

log = logging.getLogger(__name__)

SHOWN = 50  # commands listed, newest first
BAG_LABEL = re.compile(r"^W[CS]1\.B\.[A-Z0-9_.-]+$")  # one of our bag label payloads (edge.codes), roughly


class BadArgs(ValueError):
    """A form field that cannot become a command argument: a text key and its parameters."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key, self.params = key, params


def routes(console: Console) -> list[BaseRoute]:
    pages = CommandPages(console)
    return [Route("/carts/{cart}/commands/{name}", pages.send, methods=["POST"]),
            Route("/api/carts/{cart}/commands", pages.list_json, methods=["GET"])]


def parse_args(name: str, form: Mapping[str, str], now_ms: int) -> dict[str, int | str]:
    """The command's arguments from the form (``time`` takes the gateway's clock); BadArgs names the field."""
    if name == wire.CMD_RESEND:
        return {"from_seq": _number(form, "from_seq", 1, wire.MAX_SEQ)}
    if name == wire.CMD_TIME:
        return {"utc_ms": now_ms}
    if name == CMD_REPRINT:
        label = form.get("label", "").strip()
        if len(label) > LABEL_MAX or not (wire.ID_PATTERN.match(label) or BAG_LABEL.match(label)):
            raise BadArgs("cmd_err_label", field="label")
        return {"label": label}
    args: dict[str, int | str] = {}
    for key, (low, high) in CONFIG_BOUNDS.items():
        if form.get(key, "").strip():
            args[key] = _number(form, key, low, high)
    if not args:
        raise BadArgs("cmd_err_empty")
    return args


def _number(form: Mapping[str, str], key: str, low: int, high: int) -> int:
    text = form.get(key, "").strip()
    try:
        value = int(text)
    except ValueError:
        raise BadArgs("cmd_err_int", field=key) from None
    if not low <= value <= high:
        raise BadArgs("cmd_err_range", field=key, low=low, high=high)
    return value


def config_view(commands: list[dict[str, Any]]) -> dict[str, dict[str, int | None]]:
    """Each pushable setting: its allowed range and the value last pushed that the cart answered done."""
    last: dict[str, int] = {}
    for c in reversed(commands):  # oldest first: the newest done wins
        if c["name"] == CMD_CONFIG and c["outcome"] == "done":
            last.update({k: v for k, v in c["args"].items() if k in CONFIG_BOUNDS})
    return {key: {"min": low, "max": high, "last": last.get(key)} for key, (low, high) in CONFIG_BOUNDS.items()}


class CommandPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def send(self, request: Request) -> Response:
        form = await self.console.checked_form(request)
        if isinstance(form, Response):
            return form
        return await run_in_threadpool(self._send, request, form)

    def _send(self, request: Request, form: dict[str, str]) -> Response:
        user = self.console.current(request)
        if user is None or not auth.allowed(user["role"], "operator"):
            return self.console.refuse(request, 403, "forbidden")
        cart, name = request.path_params["cart"], request.path_params["name"]
        device = self.console.store().device(cart)
        if device is None or name not in CMD_NAMES:
            return self.console.refuse(request, 404, "not_found")
        t = texts(lang_of(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)))
        try:
            args = parse_args(name, form, time.time_ns() // 1_000_000)
        except BadArgs as exc:
            params = dict(exc.params)
            if "field" in params:
                params["field"] = t.get(f"cmd_field_{params['field']}", params["field"])
            return self._answer(request, cart, 400, {"error": t[exc.key].format(**params)})
        counter = self.console.hooks.command(str(device["site"]), cart, name, args, user["name"])
        log.info("console: %s sent %s %s to cart %s: %s", user["name"], name, args, cart,
                 "not sent" if counter is None else f"command {counter}")
        if counter is None:
            return self._answer(request, cart, 409, {"error": t["cmd_not_sent"]})
        return self._answer(request, cart, 200, {"counter": counter, "message": t["cmd_sent"].format(counter=counter)})

    def list_json(self, request: Request) -> Response:
        cart = request.path_params["cart"]
        store = self.console.store()
        if store.device(cart) is None:
            return self.console.refuse(request, 404, "not_found")
        commands = store.cart_commands(cart, SHOWN)
        user = self.console.current(request)
        return JSONResponse({
            "commands": [{**c, "sent": local_time(c["sent_at"]), "answered": local_time(c["answered_at"])}
                         for c in commands],
            "config": config_view(commands),
            "may_send": user is not None and auth.allowed(user["role"], "operator"),
        }, headers={"Cache-Control": "no-store"})

    def _answer(self, request: Request, cart: str, status: int, body: dict[str, Any]) -> Response:
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse(body, status_code=status)
        if status != 200:  # a form posted without script: the one line, plainly
            return Response(body["error"], status_code=status, media_type="text/plain; charset=utf-8")
        return RedirectResponse(f"/carts/{cart}#commands", status_code=303)
