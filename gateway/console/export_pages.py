"""The console's export pages (issue 15): start a ledger export, watch it run, download the file.

``GET /exports`` shows the form (pre-filled from the same query the ledger page uses, so its
"export" link carries its filter) and the jobs; ``exports.js`` polls ``GET /api/exports`` for their
progress.  ``POST /exports`` (operator or admin, CSRF) starts one and writes ``export.start`` to the
audit log; ``GET /exports/{id}/download`` sends the finished file to any logged-in user (the login
gate has let the request in).  Jobs run in ``gateway.ledger.jobs.ExportJobs``, one per console.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from edge import wire
from edge.catalogue import CATEGORIES
from gateway.console import auth
from gateway.ledger.export import FORMATS, Format, check_jsonl_filter
from gateway.ledger.jobs import MEDIA_TYPES, ExportJobs, JobRefused
from gateway.ledger.search import LedgerFilter
from gateway.ledger.zone import zone

if TYPE_CHECKING:
    from gateway.console.web import Console

log = logging.getLogger(__name__)

FILTER_KEYS = ("from", "to", "cart", "department", "category", "collector", "confirmer", "type", "bag")
HIDDEN_KEYS = ("since", "until")  # a range given in unix seconds (LedgerFilter.to_params): carried, not shown
NO_STORE = {"Cache-Control": "no-store"}


class ExportPages:
    def __init__(self, console: Console) -> None:
        self.console = console
        hooks = console.hooks
        self.jobs = ExportJobs(hooks.data_dir, hooks.ledger, hooks.keys)

    def page(self, request: Request) -> Response:
        form = {k: request.query_params.get(k, "") for k in (*FILTER_KEYS, *HIDDEN_KEYS)}
        fmt = request.query_params.get("format", "xlsx")
        return self._render(request, form, fmt if fmt in FORMATS else "xlsx", None)

    def _render(self, request: Request, form: dict[str, str], fmt: str, error: str | None,
                status: int = 200) -> Response:
        user = self.console.current(request)
        jobs = self._views()
        return self.console.page(
            request, "exports.html", status=status, user=user, form=form, fmt=fmt, formats=FORMATS, error=error,
            may_start=user is not None and auth.allowed(user["role"], "operator"), jobs=jobs,
            jobs_json=json.dumps(jobs, ensure_ascii=False).replace("<", "\\u003c"),
            zone=self.console.hooks.ledger.timezone, cats=[(c.id, c.zh, c.en) for c in CATEGORIES],
            types=wire.RECORD_TYPES, keys=FILTER_KEYS, hidden=HIDDEN_KEYS,
            keep_h=f"{self.console.hooks.ledger.exports_keep_h:g}")

    def _views(self) -> list[dict[str, Any]]:
        """The jobs as the page and its script show them (times in the ledger's zone)."""
        tz = zone(self.console.hooks.ledger.timezone)
        views = [j.view() for j in self.jobs.list()]
        for view in views:
            view["created_text"] = datetime.fromtimestamp(view["created_at"], tz).isoformat(sep=" ",
                                                                                             timespec="seconds")
        return views

    def jobs_json(self, request: Request) -> Response:
        return JSONResponse({"jobs": self._views()}, headers=NO_STORE)

    async def start(self, request: Request) -> Response:
        form = await self.console.checked_form(request)
        if isinstance(form, Response):
            return form
        return await run_in_threadpool(self._start, request, form)

    def _start(self, request: Request, form: dict[str, str]) -> Response:
        user = self.console.current(request)
        if user is None or not auth.allowed(user["role"], "operator"):
            return self.console.refuse(request, 403, "forbidden")
        shown = {k: form.get(k, "") for k in (*FILTER_KEYS, *HIDDEN_KEYS)}
        fmt = form.get("format", "")
        try:
            f = LedgerFilter.from_params(shown, zone(self.console.hooks.ledger.timezone))
            if fmt == "jsonl":
                check_jsonl_filter(f)
            job = self.jobs.start(f, _format(fmt), user["name"])
        except ValueError as exc:
            return self._render(request, shown, fmt, str(exc), status=400)
        except JobRefused as exc:
            return self._render(request, shown, fmt, str(exc), status=429)
        detail = json.dumps({"format": fmt, "filter": f.to_params()}, ensure_ascii=False, sort_keys=True)
        self.console.store().append_audit(user["name"], "export.start", job.id, "", detail)
        log.info("console: export %s (%s) started by %s", job.id, fmt, user["name"])
        return RedirectResponse("/exports", status_code=303)

    def download(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["job_id"])
        if job is None or job.path is None or job.state != "done" or not job.path.is_file():
            return self.console.refuse(request, 404, "not_found")
        return FileResponse(job.path, media_type=MEDIA_TYPES[job.fmt], filename=job.filename, headers=NO_STORE)


def _format(text: str) -> Format:
    for fmt in FORMATS:
        if fmt == text:
            return fmt
    raise ValueError(f"format: {text!r} is not one of {', '.join(FORMATS)}")


def routes(console: Console) -> list[BaseRoute]:
    pages = ExportPages(console)
    return [
        Route("/exports", pages.page, methods=["GET"]),
        Route("/exports", pages.start, methods=["POST"]),
        Route("/api/exports", pages.jobs_json),
        Route("/exports/{job_id}/download", pages.download),
    ]
