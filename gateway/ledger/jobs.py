"""Exports run in the background for the console: a job per request, at most ``exports_running_max``
at once, the rest waiting their turn; progress, state and errors kept in memory for the page.

Each job opens its OWN read-only connection (``export.open_readonly``): a 100,000-row export reads
for seconds, and must hold neither the gateway's store nor the console's connection that long.
Files go to ``DATA/exports/`` and are deleted ``exports_keep_h`` after they were written (also
those left by an earlier run, whose jobs this process never knew).  Threads are daemons: a gateway
that stops does not wait for an export; its half-written ``.part`` file is swept like the rest.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.errors import GatewayError
from gateway.ingest.checks import KeyRing
from gateway.ledger.export import FORMATS, ExportError, Format, export, open_readonly
from gateway.ledger.search import LedgerFilter, ledger_zone
from gateway.ledger.settings import LedgerConfig

log = logging.getLogger(__name__)

JOBS_MAX = 50  # jobs remembered (running, waiting and finished); a new one beyond: the oldest finished goes
WAITING_MAX = 10  # jobs waiting for a slot; more are refused (the operator sees why)
STATES = ("waiting", "running", "done", "failed")
MEDIA_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


class JobRefused(Exception):
    """Too many exports waiting: try again when one has finished."""


@dataclass
class Job:
    id: str
    user: str
    fmt: Format
    filter: LedgerFilter
    created_at: float
    state: str = "waiting"
    done: int = 0
    total: int = 0
    rows: int = 0
    size: int = 0
    error: str = ""
    finished_at: float | None = None
    path: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def filename(self) -> str:
        """What the browser saves it as: the range and the format (ASCII, so every browser keeps it)."""
        params = self.filter.to_params()
        span = "-".join(params[k] for k in ("from", "to") if k in params) or "all"
        return f"wastecart-ledger-{span}-{self.id[:6]}.{self.fmt}"

    def view(self) -> dict[str, Any]:
        with self.lock:
            return {"id": self.id, "user": self.user, "format": self.fmt, "filter": self.filter.to_params(),
                    "created_at": self.created_at, "state": self.state, "done": self.done, "total": self.total,
                    "rows": self.rows, "size": self.size, "error": self.error, "finished_at": self.finished_at,
                    "filename": self.filename,
                    "download": f"/exports/{self.id}/download" if self.state == "done" else None}


class ExportJobs:
    """``start`` a job, ``list`` / ``get`` them, ``sweep`` expired files (called by both)."""

    def __init__(self, data_dir: Path, config: LedgerConfig, keys: KeyRing | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(data_dir) / "exports"
        self.data_dir = Path(data_dir)
        self.config = config
        self.keys = keys
        self.clock = clock
        self._slots = threading.BoundedSemaphore(config.exports_running_max)
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def start(self, f: LedgerFilter, fmt: Format, user: str) -> Job:
        """Queue an export; JobRefused if too many are waiting, ValueError for an unknown format."""
        if fmt not in FORMATS:
            raise ValueError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
        self.sweep()
        job = Job(secrets.token_hex(8), user, fmt, f, self.clock())
        with self._lock:
            if sum(j.state == "waiting" for j in self._jobs.values()) >= WAITING_MAX:
                raise JobRefused(f"{WAITING_MAX} exports are already waiting")
            finished = [j for j in self._jobs.values() if j.state in ("done", "failed")]
            while len(self._jobs) >= JOBS_MAX and finished:
                self._forget(finished.pop(0))
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name=f"export-{job.id[:6]}", daemon=True).start()
        return job

    def list(self) -> list[Job]:
        self.sweep()
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def wait(self, job: Job, timeout: float) -> bool:
        """Until ``job`` finished (tests, the bench); False on timeout."""
        deadline = time.monotonic() + timeout
        while job.state in ("waiting", "running"):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def sweep(self) -> None:
        """Delete export files written more than ``exports_keep_h`` ago, and forget their jobs."""
        if not self.folder.is_dir():
            return
        cutoff = self.clock() - self.config.exports_keep_h * 3600
        for path in self.folder.iterdir():
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError as exc:  # gone already, or not ours to delete: the next sweep tries again
                log.debug("exports: cannot delete %s (%s)", path, exc)
        with self._lock:
            for job in [j for j in self._jobs.values() if j.state == "done" and j.path and not j.path.exists()]:
                self._forget(job)

    def _forget(self, job: Job) -> None:
        self._jobs.pop(job.id, None)
        if job.path is not None:
            job.path.unlink(missing_ok=True)

    def _run(self, job: Job) -> None:
        with self._slots:
            with job.lock:
                job.state = "running"
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                path = self.folder / f"{job.id}.{job.fmt}"
                db = open_readonly(self.data_dir)
                try:
                    result = export(db, job.filter, job.fmt, path, ledger_zone(db), self.keys,
                                    lambda done, total: self._progress(job, done, total))
                finally:
                    db.close()
            except (ExportError, GatewayError, OSError, ValueError) as exc:
                log.warning("exports: %s for %s failed: %s", job.id, job.user, exc)
                self._failed(job, str(exc)[:300])
                return
            except Exception as exc:  # a bug must not end the thread unseen: the page says the job failed
                log.exception("exports: %s for %s failed", job.id, job.user)
                self._failed(job, f"internal error ({type(exc).__name__})")
                return
            with job.lock:
                job.state, job.rows, job.size, job.path = "done", result.rows, result.bytes, result.path
                job.done, job.total, job.finished_at = result.rows, max(job.total, result.rows), self.clock()
            log.info("exports: %s for %s: %d rows, %s in %.1f s", job.id, job.user, result.rows, result.path.name,
                     result.seconds)

    def _failed(self, job: Job, error: str) -> None:
        with job.lock:
            job.state, job.error, job.finished_at = "failed", error, self.clock()

    @staticmethod
    def _progress(job: Job, done: int, total: int) -> None:
        with job.lock:
            job.done, job.total = done, total
