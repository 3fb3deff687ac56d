"""The kiosk's HTTP contract: what the page may ask of the cart, and what the cart agent provides.

A Chromium in kiosk mode on the cart's screen (``deploy/systemd/wastecart-kiosk.service``) opens
the kiosk server (``edge/kiosk/server.py``) on localhost.  The page (``edge/kiosk/static/``: plain
HTML/CSS/JS, no build step, no CDN, works offline) renders the screen model and posts taps and
typed codes back; it never holds workflow logic.  This module is the one written statement of
that conversation: the prose below, the ``KioskSource`` the agent implements, the request bodies
(``ActionBody``, ``ScanBody``) the server checks, and the answers it gives.

Kiosk ⇄ workflow
================

The pure state machine (``edge.workflow``) produces a JSON-able **screen model** with
``workflow.view(state, now)``, typed as ``edge.workflow.view.ScreenModel``; the cart agent
(``edge.app``) adds the ``device`` block (``DeviceView``); the kiosk server serves it to the page
and hands taps to the agent, which turns them into ``workflow.Action`` events.  The server only
serialises the model, so it takes any mapping (``KioskSource.snapshot``) and imports nothing of
the workflow.

GET /api/state → the screen model (also pushed on every change over SSE: GET /api/events,
``event: state`` / ``data: <json>``; the server also sends a ``: ping`` comment every 15 s)::

    {
      "step": "idle" | "round" | "stop" | "confirm" | "saving" | "storage" | "transfer" | ...,  # machine step
      "title":  {"zh": "…", "en": "…"},        # short name of the current screen, e.g. 科室交接 / Department handover
      "prompt": {"zh": "…", "en": "…"},        # what to do next (big text)
      "error":   {"zh": "…", "en": "…"} | null, # last refusal (red banner) until the next accepted action
      "message": {"zh": "…", "en": "…"} | null, # last confirmation (green), e.g. 已保存交接记录 #12
      "saved_seq": int | null,                 # set ONLY after the ledger commit returned (the "saved" tick)
      "collector": str | null, "department": str | null, "place": str | null,  # codes; place = storage room / vehicle
      "collector_name": str | null, "department_name": str | null,  # the roster's names (the code when it has none)
      "place_name": str | null,                # the room's name, the vehicle's plate
      "signer": str | null,                    # who has signed at this place so far (keeper, driver), by name
      "dwell": [{"package_code": str, "where": "cart" | "storage", "hours": float, "limit_h": float,
                 "level": "warn" | "over"}],   # bags past the warning share of their limit (yellow / red)
      "round_started_at": iso str | null, "round_overdue": bool,
      "weight": {"net_g": int | null, "stable": bool, "error": {"zh","en"} | null} | null,
      "lines": [{"package_code": str, "category": "INFECTIOUS", "category_name": {"zh","en"}, "weight_g": int,
                 "editable": bool}],
      "totals": [{"category": str, "category_name": {"zh","en"}, "count": int, "weight_g": int}],
      "pending": {"package_code": str | null, "category": str | null, "category_name": {"zh","en"} | null,
                  "weight_g": int | null, "printing": bool, "editing": bool,
                  "notes": [{"zh","en"}],      # the label notes (备注) that are on
                  "components": str} | null,   # 主要成分 typed (chemical waste); "" when none
                                               # a bag being taken (weight captured, waiting for category/label)
      "actions": [{"id": "remove_last", "label": {"zh","en"}, "style": "primary"|"danger"|"normal"|"chosen",
                   "needs": null | "pin" | "text" | "reason",
                   "reasons": [{"id", "zh", "en"}]}],  # the buttons valid NOW; ids are opaque; reasons: see below
      "categories": [{"id": "INFECTIOUS", "name": {"zh","en"}, "color": "#f5d000"}],  # when a choice is asked
      "voice": {"id": int, "zh": "…", "en": "…"} | null,  # a NEW id = speak it once (main steps only)
      "device": {"online": bool, "unsent": int, "scale": str, "camera": str, "printer": str,
                 "actuator": str, "clock": str}            # added by the agent, not by the machine
    }

The device states and clock sources in ``device`` are those of ``edge.catalogue`` (``DEVICES``,
``CLOCK_SOURCES``); a line's ``status`` one of its ``LINE_STATUSES``.

GET /api/catalogue → ``edge.catalogue.as_json()``: the fixed facts the page draws with, so that it
knows no category, device state or level of its own::

    {
      "categories": [{"id", "zh", "en", "waste_code", "letter", "color"}],   # in the order shown
      "device_states": {"<state>": {"level": "ok"|"busy"|"off"|"warn"|"bad", "zh", "en"}},
      "devices": {"scale": ["none", "connecting", …], "camera": […], "printer": […], "actuator": […]},
      "clock_synced": ["ntp", "gateway", "rtc"],              # clock sources shown as synced
      "line_statuses": {"waiting": "off", "ok": "ok", …}      # a storage line's status → its level
    }

The page loads it at start and again after every reconnect (an updated agent may bring a new
one).  Until it has one it still renders: a device state shows as sent, in the neutral ``off``
level, and no clock warning is drawn.

POST /api/action ``{"id": "<action id>", "value": "<optional: pin / text / reason>"}`` (a reason is
``"<reason id>"`` or ``"<reason id>|<words>"``: the id one of the action's ``reasons``)
→ 202 ``{"ok": true}`` (the result shows up in the next state), 400 ``{"error": "..."}`` for an
unknown id.  POST /api/scan ``{"text": "<payload>"}`` — a code typed/entered on the kiosk (same
path as the camera).  The page never decides workflow logic: it renders the model and posts actions.

What the page does where the contract leaves it open (ids stay opaque: posted unchanged):
an action whose id ends in ``:<id of a category shown>`` (``choose:SHARPS``) is that category's
button, one ending in ``:<a line's package_code>`` (``edit:B000101``) is a button on that line —
neither is drawn a second time among the buttons.  A category with no such action posts
``{"id": "choose", "value": "<category id>"}``.  A code typed on the on-screen keyboard, or
"typed" by a USB hand scanner acting as a keyboard (fast keys + Enter), is a POST /api/scan.

A ``needs: "reason"`` action lists its ``reasons`` (``edge.catalogue.VOID_REASONS``): the page
shows them as buttons with a text field under them and posts ``ID`` or ``ID|words`` (words are
required for ``OTHER``: OK stays off until some are typed; the cart checks it again).  Without a
list the typed words are posted as they are.  An action ``note:<id>`` (a label note) is drawn as a
toggle, pressed while its ``style`` is ``chosen``.  ``dwell`` is drawn as one banner, a row per
place (count at the worst level there, the longest stay against its limit): red when any bag is
``over``, else yellow.  Names are shown where codes were, the code small beside.

What the page also understands (optional, tolerated when absent): ``color`` on a line or a total
(else the colour last seen for that category in ``categories``, else the catalogue's);
``status`` on a line (storage: ``waiting`` | ``ok`` | ``deviation`` | ``batch``).

The other answers
=================

- ``GET /`` and the files of ``static/`` by exact name; anything else → 404 ``{"error": ...}``.
- ``GET /api/events``: ``retry: 1000``, one ``event: hello`` ``{"assets": "<hash of the page's
  files>"}`` (a page of an older release reloads itself), then ``event: state`` on every change,
  and ``: ping`` plus ``event: ping`` after 15 s of silence (EventSource hides comments).
- ``GET /healthz`` → ``{"ok": true, "clients": N, "version": V, "assets": "<hash>", "refused":
  {"host": n, "origin": n, "busy": n, "timeout": n, "streams_closed": n}}`` (refusals since start).
- Refusals: a body that is not JSON, not an object, nested deeper than 4, with an unknown, missing
  or wrong-typed field → 400 naming the problem; no ``Content-Type: application/json`` → 415; no
  Content-Length → 411; over 4096 bytes → 413; a known path with the wrong method → 405 with
  ``Allow``; a ``KioskError`` (any ``ValueError``) from the source → 400 with its message; a bug → 500.
- Who may ask (``edge.kiosk.guard``): a ``Host`` other than localhost, 127.0.0.1, [::1], the
  configured ``host`` or ``hosts`` → 421 on every path (none: 400); a POST whose ``Origin`` is not
  the page's own (or ``null``), or with ``Sec-Fetch-Site: cross-site`` → 403.  How much
  (``edge.kiosk.connections``): a request's head and body must arrive within ``read_timeout_s``
  (a short body → 408; a head → 408 if begun, else the connection is closed); beyond
  ``max_connections`` open sockets the one slowest to send its request gets 503 (the newcomer
  itself when every open one is being answered); beyond ``max_streams`` event streams the
  oldest stream ends (the page reconnects; a page closed is noticed within a second).
"""

# No ``from __future__ import annotations`` here: the body TypedDicts' ``NotRequired`` must be seen at
# run time (their ``__optional_keys__`` drive the server's checks), which string annotations defeat.
import threading
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, Protocol, TypedDict

from edge.errors import EdgeError


class KioskError(EdgeError, ValueError):
    """A tap or a typed code the cart refuses (unknown action id, bad value); a message key and its
    parameters like every ``EdgeError``: the page gets ``str()``, the one line ``中文 (English)``."""


class KioskSource(Protocol):
    """What the server needs of the cart agent; the page only ever sees ``snapshot()``.

    ``act`` and ``scan`` hand over and return at once (the outcome shows in the next state); they
    raise ``KioskError`` for what the page should not have sent.  ``wait_changed(version, timeout)``
    returns the current version (an int ≥ 0) as soon as it differs from ``version``, else after
    ``timeout`` seconds — blocking on a condition, not polling.  ``Changes`` implements it.
    """

    def snapshot(self) -> Mapping[str, Any]: ...
    def act(self, id: str, value: str | None) -> None: ...
    def scan(self, text: str) -> None: ...
    def wait_changed(self, version: int, timeout: float) -> int: ...


class Changes:
    """A version counter to wait on: the owner calls ``bump()`` after each change of the model."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    def bump(self) -> int:
        with self._cond:
            self._version += 1
            self._cond.notify_all()
            return self._version

    def wait_changed(self, version: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: self._version != version, timeout=timeout)
            return self._version


# Request bodies.  Every field is a string: a required one non-empty, an optional one may be null;
# any other field is refused (the server checks a body against these, edge.kiosk.handler.check_fields).
class ActionBody(TypedDict):
    id: str                          # an action id of the current screen, posted unchanged
    value: NotRequired[str | None]   # a PIN, a typed text, a reason or a category id (never logged)


class ScanBody(TypedDict):
    text: str                        # a code's payload, as typed or read by a keyboard-wedge scanner


# Answers.
class Accepted(TypedDict):
    ok: Literal[True]


class Refused(TypedDict):
    """Requests and connections refused since the server started, by why (``edge.kiosk.guard``)."""

    host: int                        # a Host not ours (DNS rebinding), or none: 421 / 400
    origin: int                      # a POST from a foreign or opaque origin, or cross-site: 403
    busy: int                        # a connection beyond max_connections: 503
    timeout: int                     # a head or body not complete within read_timeout_s: 408 / closed
    streams_closed: int              # an event stream ended to make room for a newer one


class Health(TypedDict):
    ok: Literal[True]
    clients: int                     # open event streams
    version: int | None              # the source's version last pushed, None before the first
    assets: str                      # hash of the page's files
    refused: Refused


ACCEPTED: Accepted = {"ok": True}
