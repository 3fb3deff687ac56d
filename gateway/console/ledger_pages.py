"""The console's ledger pages (issue 15): search, a record, a bag's path, summaries — and their JSON twins.

Any logged-in role may read them (the login gate has already let the request in).  Every read goes
through the console's own connection (``console.db``), never the gateway's store lock, so a heavy
search never holds up ingest.  A filter the ledger cannot mean is one line naming the field, with
status 400 (the form keeps what was typed).  Times are shown in the ledger's zone with the offset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from edge import wire
from edge.catalogue import CATEGORIES
from gateway.console.i18n import LANG_COOKIE, lang_of
from gateway.ledger import words
from gateway.ledger.search import LedgerFilter, Page, bag_path, record_view, search
from gateway.ledger.summary import PERIODS, Period, per_period, summarize, totals
from gateway.ledger.zone import zone

if TYPE_CHECKING:
    from gateway.console.web import Console

PAGE_ROWS = 50  # rows of a page of results
FILTER_KEYS = ("from", "to", "cart", "department", "category", "collector", "confirmer", "type", "bag")
CATEGORY_NAMES = {c.id: (c.zh, c.en) for c in CATEGORIES}
NO_STORE = {"Cache-Control": "no-store"}


class LedgerPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.console.hooks.ledger.timezone)

    def _context(self, request: Request) -> dict[str, Any]:
        """What every ledger template is given besides its own data."""
        return {"user": self.console.current(request), "zone": self.tz.key, "cats": CATEGORY_NAMES,
                "types": wire.RECORD_TYPES, "keys": FILTER_KEYS}

    def _filter(self, request: Request) -> LedgerFilter:
        return LedgerFilter.from_params(request.query_params, self.tz)

    # ---- search --------------------------------------------------------------------------------

    def _search(self, request: Request) -> tuple[LedgerFilter, Page]:
        f = self._filter(request)
        limit = _limit(request.query_params.get("limit"))
        with self.console.db._read("searching the ledger") as db:
            return f, search(db, f, limit, request.query_params.get("after") or None, self.tz)

    def ledger_page(self, request: Request) -> Response:
        form = {k: request.query_params.get(k, "") for k in FILTER_KEYS}
        try:
            f, page = self._search(request)
        except ValueError as exc:
            return self.console.page(request, "ledger.html", status=400, form=form, page=None, error=str(exc),
                                     bad=_field(exc), next_url=None, **self._context(request))
        next_url = "/ledger?" + urlencode({**f.to_params(), "after": page.next}) if page.next else None
        first_url = "/ledger?" + urlencode({k: v for k, v in form.items() if v})
        export_url = "/exports?" + urlencode(f.to_params())
        return self.console.page(request, "ledger.html", form=form, page=page, error=None, bad=None,
                                 next_url=next_url, first_url=first_url, export_url=export_url,
                                 paged=bool(request.query_params.get("after")),
                                 **self._context(request))

    def ledger_json(self, request: Request) -> Response:
        try:
            f, page = self._search(request)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"filter": f.to_params(), "rows": page.rows, "next": page.next}, headers=NO_STORE)

    # ---- one record ----------------------------------------------------------------------------

    def _record(self, request: Request) -> dict[str, Any] | None:
        with self.console.db._read("reading a record") as db:
            return record_view(db, request.path_params["record_id"], self.console.hooks.keys, self.tz)

    def record_page(self, request: Request) -> Response:
        view = self._record(request)
        if view is None:
            return self.console.refuse(request, 404, "not_found")
        lang = lang_of(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE))
        said = words.describe(view["envelope"], lang, self.tz)
        return self.console.page(request, "record.html", r=view, said=said, **self._context(request))

    def record_json(self, request: Request) -> Response:
        view = self._record(request)
        if view is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        view.pop("envelope_text")
        return JSONResponse(view, headers=NO_STORE)

    # ---- one bag ----------------------------------------------------------------------------------

    def _path(self, request: Request) -> tuple[str, list[dict[str, Any]]]:
        code = request.path_params["code"].strip().upper()[:64]
        with self.console.db._read("reading a bag's path") as db:
            return code, bag_path(db, code, self.tz)

    def bag_page(self, request: Request) -> Response:
        code, steps = self._path(request)
        return self.console.page(request, "bag.html", status=200 if steps else 404, code=code, steps=steps,
                                 **self._context(request))

    def bag_json(self, request: Request) -> Response:
        code, steps = self._path(request)
        return JSONResponse({"package_code": code, "steps": steps}, status_code=200 if steps else 404,
                            headers=NO_STORE)

    # ---- summaries ------------------------------------------------------------------------------

    def _summary(self, request: Request) -> tuple[LedgerFilter, Period, dict[str, Any]]:
        f = self._filter(request)
        by = _period(request.query_params.get("by", "day"))
        with self.console.db._read("summarising the ledger") as db:
            rows = summarize(db, f, by)
        bags, grams = totals(rows)
        series = per_period(rows)
        return f, by, {"rows": [row.__dict__ for row in rows], "bags": bags, "weight_g": grams,
                       "kg": round(grams / 1000, 3),
                       "periods": [{"period": p, "bags": b, "weight_g": g, "kg": round(g / 1000, 3)}
                                   for p, b, g in series]}

    def summaries_page(self, request: Request) -> Response:
        form = {k: request.query_params.get(k, "") for k in FILTER_KEYS}
        by = request.query_params.get("by", "day")
        try:
            _, by, data = self._summary(request)
        except ValueError as exc:
            return self.console.page(request, "summaries.html", status=400, form=form, by=by, data=None,
                                     error=str(exc), bad=_field(exc), chart=None, periods=PERIODS,
                                     **self._context(request))
        chart = {"labels": [p["period"] for p in data["periods"]], "kg": [p["kg"] for p in data["periods"]]}
        return self.console.page(request, "summaries.html", form=form, by=by, data=data, error=None, bad=None,
                                 chart=chart, periods=PERIODS, **self._context(request))

    def summaries_json(self, request: Request) -> Response:
        try:
            f, by, data = self._summary(request)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"filter": f.to_params(), "by": by, **data}, headers=NO_STORE)


def _limit(text: str | None) -> int:
    if not text:
        return PAGE_ROWS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 500:
        raise ValueError(f"limit: {text!r} is not a number of rows from 1 to 500")
    return value


def _period(text: str) -> Period:
    for p in PERIODS:
        if text == p:
            return p
    raise ValueError(f"by: {text!r} is not one of {', '.join(PERIODS)}")


def _field(exc: ValueError) -> str:
    """The field a filter's error names (its text starts with it): the form marks that input."""
    return str(exc).split(":", 1)[0]


def routes(console: Console) -> list[BaseRoute]:
    pages = LedgerPages(console)
    return [
        Route("/ledger", pages.ledger_page),
        Route("/api/ledger", pages.ledger_json),
        Route("/records/{record_id}", pages.record_page),
        Route("/api/records/{record_id}", pages.record_json),
        Route("/bags/{code}", pages.bag_page),
        Route("/api/bags/{code}", pages.bag_json),
        Route("/summaries", pages.summaries_page),
        Route("/api/summaries", pages.summaries_json),
    ]
