"""The ledger on a county's store (issue 15): search and record-page times, XLSX export, verify rate.

1. The store: 1,000 carts' signed, chained records of 30 days, 1,000,000 in all, made straight into
   a gateway store by ``ledger_data`` (cached: a second run reuses it; ``generate_s`` is the time
   the generation took when it ran; ``WASTECART_BENCH_CACHE`` moves the cache from /tmp, about 5 GB
   at full size: version-2 bodies, names beside codes).  ``WASTECART_BENCH_LEDGER_RECORDS`` (and
   ``…_CARTS``) scale it down for a quick run; the report says the size it measured.
2. Search and record pages: the real console (``ConsoleServer`` on the store, a viewer logged in
   through the form) over loopback with one kept-alive httpx client, as a browser: ``SAMPLES``
   requests per kind after ``WARM_UP``, each with other values drawn from the store (a bag's code,
   a department and one calendar month, a collector, a confirmer (nurse), a cart, a record type and
   a week, a rare category and a week, page 2 of a department through the page's cursor, the
   unfiltered newest page; /api/ledger for the department-month one), the record pages of random
   records and the bag pages of random bags; each kind's first answer must show what the library found.
   The same queries through the library functions (``search``, ``record_view``, ``bag_path``) on the
   console's own connection (``ConsoleDb``) in this process: what the handler spends in SQLite and
   Python, against the HTTP time.  Baseline: ``GET /healthz`` through the same client.
3. Export: ``wastecart gateway export --format xlsx`` (and csv) as a child process on the store,
   for the most recent whole days that hold nearest ``EXPORT_ROWS`` bags handed over (台账 rows);
   wall time (also scaled to 100,000 rows) and the child's peak RSS (GNU time's ``%M``); the csv's
   line count against the store's.
4. Verify: a jsonl export (with the carts' keys) of the most recent days holding nearest
   ``VERIFY_RECORDS`` records (every cart, contiguous seq ranges), then ``wastecart verify --json FILE``
   as a child, which must pass; records per second of its wall time,
   against ``cryptography``'s bare Ed25519 verify of a 64-byte message (what a record's signature
   covers: its hex hash) on one core and on every core at once, in the same run.

Run alone: ``python -m tests.bench --only ledger --out /tmp/bench-ledger.json``
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from datetime import date, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.console.fleet import ConsoleDb
from gateway.console.hooks import GatewayHooks
from gateway.console.server import ConsoleServer
from gateway.console.settings import ConsoleConfig
from gateway.ingest.checks import KeyRing
from gateway.ledger import search as ledger
from gateway.store import SqliteStore
from tests.bench import bench_console, ledger_data

SAMPLES = 60  # timed requests per kind (11 kinds: several hundred in all)
WARM_UP = 5  # untimed requests per kind first
PAGE = 50  # rows per search page (the console's page)
EXPORT_ROWS = 100_000  # 台账 rows of the timed export (the size)
VERIFY_RECORDS = 100_000  # records of the verified jsonl export
BARE_VERIFIES = 20_000  # Ed25519 verifies per process for the bare rate
RARE_CATEGORY = "PATHOLOGICAL"  # 5 % of bags: the category filter's slow case (no index of its own)
WAIT_S = 60.0
CHILD_S = 600.0  # s: an export or verify child running longer is a failure
TIME = "/usr/bin/time"  # GNU time: a child's peak RSS
TARGETS = {"search_p95_ms": 200, "record_page_p95_ms": 200, "xlsx_s": 30, "xlsx_peak_mb": 200}


def percentiles(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"n": len(ms), "p50_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
            "max_ms": round(ordered[-1], 2)}


def timed(call: Callable[[int], object]) -> dict[str, Any]:
    for n in range(WARM_UP):
        call(n)
    ms = []
    for n in range(WARM_UP, WARM_UP + SAMPLES):
        t0 = time.perf_counter()
        call(n)
        ms.append((time.perf_counter() - t0) * 1000)
    return percentiles(ms)


# the queries: values drawn from the store ----------------------------------------------------------

def draw(db: sqlite3.Connection, sql: str, n: int, rng: random.Random) -> list[Any]:
    values = [r[0] for r in db.execute(sql).fetchall()]
    if not values:
        raise RuntimeError(f"the generated store has nothing for {sql!r}")
    return [rng.choice(values) for _ in range(n)]


def sample_rows(db: sqlite3.Connection, table: str, column: str, n: int, rng: random.Random,
                where: str = "") -> list[Any]:
    """``n`` values of ``column`` from random rows of ``table`` (by rowid: no full scan)."""
    top = db.execute(f"SELECT MAX(rowid) FROM {table}").fetchone()[0]
    out: list[Any] = []
    while len(out) < n:
        row = db.execute(f"SELECT {column} FROM {table} WHERE rowid >= ? {where} LIMIT 1",
                         (rng.randint(1, top),)).fetchone()
        if row is not None:
            out.append(row[0])
    return out


def queries(db: sqlite3.Connection, first: date, last: date) -> dict[str, list[dict[str, str]]]:
    """Per kind of search, WARM_UP + SAMPLES query parameters (as the console's search form sends them)."""
    rng = random.Random(15)
    n = WARM_UP + SAMPLES
    days = (last - first).days + 1

    def week() -> tuple[str, str]:
        start = first + timedelta(days=rng.randrange(max(1, days - 6)))
        return start.isoformat(), min(last, start + timedelta(days=6)).isoformat()

    def month() -> tuple[str, str]:
        day = first + timedelta(days=rng.randrange(days))
        start = max(first, day.replace(day=1))
        end = min(last, (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1))
        return start.isoformat(), end.isoformat()

    departments = draw(db, "SELECT DISTINCT department FROM ledger_records WHERE department IS NOT NULL", n, rng)
    out: dict[str, list[dict[str, str]]] = {
        "bag": [{"bag": c} for c in sample_rows(db, "ledger_bags", "package_code", n, rng, "AND type = 'handover'")],
        "department_month": [{"department": d, "from": a, "to": b} for d, (a, b) in
                             zip(departments, (month() for _ in range(n)), strict=True)],
        "collector": [{"collector": c} for c in sample_rows(db, "ledger_records", "collector", n, rng,
                                                            "AND collector IS NOT NULL")],
        "confirmer": [{"confirmer": c} for c in sample_rows(db, "ledger_records", "confirmer", n, rng,
                                                            "AND type = 'handover'")],
        "cart": [{"cart": c} for c in draw(db, "SELECT cart FROM carts", n, rng)],
        "type_week": [{"type": t, "from": a, "to": b} for t, (a, b) in
                      zip((rng.choice(("handover", "storage_in", "transfer", "void")) for _ in range(n)),
                          (week() for _ in range(n)), strict=True)],
        "rare_category_week": [{"category": RARE_CATEGORY, "from": a, "to": b} for a, b in (week() for _ in range(n))],
        "newest": [{} for _ in range(n)],
    }
    return out


# 2. server times --------------------------------------------------------------------------------

def http_kind(client: httpx.Client, route: str, paths: list[str], expect: str | None) -> dict[str, Any]:
    """GET each path in turn (200 expected); a route missing or failing is reported, not fatal.
    ``expect``: a text the first timed answer must hold (the first row's record id, as the library
    found it), checked after the clock: a fast answer that shows nothing is no figure."""
    def call(n: int) -> object:
        got = client.get(paths[n])
        if got.status_code != 200:
            raise RuntimeError(f"GET {paths[n]}: {got.status_code}")
        return got
    try:
        out: dict[str, Any] = {"route": f"GET {route}", **timed(call)}
    except RuntimeError as exc:
        return {"error": str(exc)}
    if expect is not None:
        out["shows_what_the_library_found"] = expect in client.get(paths[WARM_UP]).text
    return out


def page2_params(db: sqlite3.Connection, tz: Any, params: list[dict[str, str]]) -> list[dict[str, str]]:
    """Page 2 of each department search: the cursor page 1 links to (``after``)."""
    out = []
    for p in params:
        nxt = ledger.search(db, ledger.LedgerFilter.from_params(p, tz), PAGE).next
        out.append({**p, "after": nxt} if nxt else p)
    return out


def phase_times(gen: ledger_data.Generated) -> dict[str, Any]:
    load = os.getloadavg()[0]  # the machine's business when timing began (other work skews every figure)
    first, last = (date.fromisoformat(gen.meta[k]) for k in ("first_day", "last_day"))
    keys = KeyRing({}, gen.keys_dir)
    store = SqliteStore(gen.db_path)
    console_db = ConsoleDb(gen.db_path)
    with ExitStack() as done:
        done.callback(store.close)
        done.callback(console_db.close)
        with console_db._read("bench: drawing queries") as db:
            tz = ledger.ledger_zone(db)
            kinds = queries(db, first, last)
            kinds["department_page2"] = page2_params(db, tz, [{"department": p["department"]}
                                                              for p in kinds["department_month"]])
            n = WARM_UP + SAMPLES
            rng = random.Random(16)
            record_ids = sample_rows(db, "ledger_records", "id", n, rng)
            bag_codes = sample_rows(db, "ledger_bags", "package_code", n, rng, "AND type = 'handover'")
        functions = function_times(console_db, kinds, record_ids, bag_codes, keys, tz)
        server = ConsoleServer(lambda: store, ConsoleConfig(port=0), gen.db_path,
                               GatewayHooks(keys=keys, data_dir=gen.data))
        bench_console.add_user(gen.db_path, exists_ok=True)
        server.start()
        done.callback(server.stop)
        client = bench_console.login(server.url)
        done.callback(client.close)
        http: dict[str, Any] = {"healthz_baseline": timed(lambda _n: client.get("/healthz"))}
        for kind, params in kinds.items():
            http[f"search_{kind}"] = http_kind(client, "/ledger?…", [f"/ledger?{httpx.QueryParams(p)}" for p in params],
                                               functions[f"search_{kind}"]["first_row_first_sample"])
        http["search_api_department_month"] = http_kind(
            client, "/api/ledger?…", [f"/api/ledger?{httpx.QueryParams(p)}" for p in kinds["department_month"]],
            functions["search_department_month"]["first_row_first_sample"])
        http["record_page"] = http_kind(client, "/records/{id}", [f"/records/{rid}" for rid in record_ids],
                                        record_ids[WARM_UP])
        http["bag_page"] = http_kind(client, "/bags/{code}", [f"/bags/{code}" for code in bag_codes],
                                     bag_codes[WARM_UP])
    return {"http": http, "function": functions, "load_before": load,
            "queries": {k: v[WARM_UP] for k, v in kinds.items()}}


def function_times(console_db: ConsoleDb, kinds: dict[str, list[dict[str, str]]], record_ids: list[str],
                   bag_codes: list[str], keys: KeyRing, tz: Any) -> dict[str, Any]:
    """The library calls behind the pages, on the console's own connection (as its handlers read)."""
    out: dict[str, Any] = {}

    def searching(params: list[dict[str, str]]) -> Callable[[int], object]:
        def call(n: int) -> object:
            p = dict(params[n])
            after = p.pop("after", None)
            with console_db._read("bench: search") as db:
                return ledger.search(db, ledger.LedgerFilter.from_params(p, tz), PAGE, after, tz)
        return call

    for kind, params in kinds.items():
        out[f"search_{kind}"] = timed(searching(params))
        with console_db._read("bench: rows found") as db:
            p = dict(params[WARM_UP])
            after = p.pop("after", None)
            rows = ledger.search(db, ledger.LedgerFilter.from_params(p, tz), PAGE, after, tz).rows
        out[f"search_{kind}"].update(rows_first_sample=len(rows),
                                     first_row_first_sample=rows[0]["id"] if rows else None)

    def viewing(n: int) -> object:
        with console_db._read("bench: record") as db:
            view = ledger.record_view(db, record_ids[n], keys, tz)
        if view is None or view["signature"] != "valid":
            raise RuntimeError(f"record {record_ids[n]}: {view and view['signature']} (the generator's seal?)")
        return view

    def walking(n: int) -> object:
        with console_db._read("bench: bag") as db:
            steps = ledger.bag_path(db, bag_codes[n], tz)
        if not steps:
            raise RuntimeError(f"bag {bag_codes[n]}: no path")
        return steps

    out["record_view"] = timed(viewing)
    out["bag_path"] = timed(walking)
    return out


# 3. export, 4. verify: children with their peak RSS --------------------------------------------

def child(args: list[str]) -> dict[str, Any]:
    """``wastecart ARGS`` as a child process: wall s, its peak RSS (MB), exit code, its last line.

    The peak is GNU time's ``%M`` (``TIME``): the child's own ``wait4`` figure would start at this
    process's RSS (a forked child's high-water mark survives its exec)."""
    if not Path(TIME).is_file():
        raise RuntimeError(f"{TIME} (GNU time) is needed for a child's peak RSS: apt-get install time")
    with tempfile.TemporaryDirectory(prefix="wc-bench-child-") as tmp:
        peak = Path(tmp) / "peak"
        t0 = time.monotonic()
        done = subprocess.run([TIME, "-o", str(peak), "-f", "%M", sys.executable, "-m", "wastecart.cli", *args],
                              capture_output=True, timeout=CHILD_S, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wall = time.monotonic() - t0
        kib = peak.read_text().split()[-1] if peak.is_file() else ""
    said = (done.stderr + done.stdout).decode("utf-8", "replace").replace("\r", "\n").strip().splitlines()
    return {"s": round(wall, 2), "peak_mb": round(int(kib) / 1024, 1) if kib.isdigit() else None,
            "exit": done.returncode, "said": said[-1][:300] if said else "", "stdout": done.stdout}


def recent_days(db: sqlite3.Connection, sql: str, want: int) -> tuple[str, str, int]:
    """The most recent whole days (``sql``: day, n per day) whose total is nearest to ``want``: the
    command line exports whole days."""
    per_day = db.execute(sql).fetchall()
    best, total = (per_day[-1][0], per_day[-1][1]), 0
    for day, n in reversed(per_day):
        total += n
        if abs(total - want) <= abs(best[1] - want):
            best = (day, total)
    return best[0], per_day[-1][0], best[1]


def phase_export(gen: ledger_data.Generated, work: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{gen.db_path}?mode=ro", uri=True) as db:
        first, last, rows = recent_days(db, "SELECT day, COUNT(*) FROM ledger_bags WHERE type = 'handover'"
                                            " GROUP BY day ORDER BY day", EXPORT_ROWS)
    db.close()
    out: dict[str, Any] = {"from": first, "to": last, "rows": rows}
    for fmt in ("xlsx", "csv"):
        target = work / f"ledger.{fmt}"
        out[fmt] = child(["gateway", "export", "--data", str(gen.data), "--format", fmt, "--out", str(target),
                          "--from", first, "--to", last])
        del out[fmt]["stdout"]
        out[fmt]["bytes"] = target.stat().st_size if target.is_file() else None
        if fmt == "csv" and target.is_file():
            with target.open("rb") as handle:
                out[fmt]["lines"] = sum(1 for _ in handle)
            out[fmt]["rows_match_store"] = out[fmt]["lines"] == rows + 1  # a header line, then a line per bag
    return out


def _bare(n: int) -> float:
    """Ed25519 verifies per second of one process: one key, a 64-byte message (a hex SHA-256)."""
    key = Ed25519PrivateKey.generate()
    message = os.urandom(32).hex().encode("ascii")
    sig, public = key.sign(message), key.public_key()
    t0 = time.perf_counter()
    for _ in range(n):
        public.verify(sig, message)
    return n / (time.perf_counter() - t0)


def bare_rates() -> dict[str, Any]:
    one = _bare(BARE_VERIFIES)
    cpus = os.cpu_count() or 1
    with ProcessPoolExecutor(cpus, mp_context=get_context("spawn")) as pool:
        list(pool.map(_bare, [100] * cpus))  # every process of the pool up before the clock
        t0 = time.perf_counter()
        list(pool.map(_bare, [BARE_VERIFIES] * cpus))
        every = cpus * BARE_VERIFIES / (time.perf_counter() - t0)
    return {"one_core_per_s": round(one), "all_cores_per_s": round(every), "cpus": cpus}


def phase_verify(gen: ledger_data.Generated, work: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{gen.db_path}?mode=ro", uri=True) as db:
        first, last, records = recent_days(db, "SELECT day, COUNT(*) FROM ledger_records GROUP BY day ORDER BY day",
                                           VERIFY_RECORDS)
    db.close()
    target = work / "ledger.jsonl"
    made = child(["gateway", "export", "--data", str(gen.data), "--format", "jsonl", "--out", str(target),
                  "--from", first, "--to", last, "--cart-keys-dir", str(gen.keys_dir)])
    del made["stdout"]
    out: dict[str, Any] = {"from": first, "to": last, "records_in_range": records, "export": made}
    if not target.is_file():
        return out
    out["jsonl_mib"] = round(target.stat().st_size / 2**20, 1)
    checked = child(["verify", "--json", str(target)])
    try:
        report = json.loads(checked.pop("stdout"))
    except ValueError:
        report = {}
    checked.pop("said")  # the JSON report itself
    out["verify"] = {**checked, **{k: report.get(k) for k in ("ok", "records", "seconds", "records_per_s", "workers")},
                     "carts": len(report.get("carts") or {}), "failures": len(report.get("failures") or [])}
    out["bare_ed25519"] = bare_rates()
    return out


# the report ---------------------------------------------------------------------------------------

def run() -> dict[str, Any]:
    size = ledger_data.size_from_env()
    gen = ledger_data.dataset(size)
    times = phase_times(gen)
    with tempfile.TemporaryDirectory(prefix="wc-bench-ledger-") as tmp:
        exported = phase_export(gen, Path(tmp))
        verified = phase_verify(gen, Path(tmp))
    return figures(size, gen, times, exported, verified)


def figures(size: ledger_data.Size, gen: ledger_data.Generated, times: dict[str, Any], exported: dict[str, Any],
            verified: dict[str, Any]) -> dict[str, Any]:
    """The headline figures first (the issue's four), the detail after."""
    http, func = times["http"], times["function"]
    out: dict[str, Any] = {
        "what": f"{size.carts} carts, {size.records} signed chained records over {ledger_data.DAYS} days in one "
                "gateway store; search / record / bag pages through the console over loopback (HTTP) and the "
                "library calls behind them (function); XLSX/CSV export and verify as `wastecart` children",
        "records": size.records, "carts": size.carts, "full_size": size == ledger_data.Size(ledger_data.RECORDS,
                                                                                             ledger_data.CARTS),
        "generate_s": gen.meta["generate_s"], "generation_cached": gen.meta["cached"],
        "load_avg_1m": [round(x, 2) for x in (times["load_before"], os.getloadavg()[0])],
        "store": {k: gen.meta[k] for k in ("rows", "types", "db_mib", "first_day", "last_day", "workers")},
    }
    searches_http = {k.removeprefix("search_"): v for k, v in http.items() if k.startswith("search_")}
    searches_func = {k.removeprefix("search_"): v for k, v in func.items() if k.startswith("search_")}
    for name, kinds in (("search_http", searches_http), ("search_function", searches_func)):
        out[name] = {k: ({"p50_ms": v["p50_ms"], "p95_ms": v["p95_ms"]} if "p95_ms" in v else v)
                     for k, v in kinds.items()}
    page = {"record_page": (http["record_page"], func["record_view"]), "bag_page": (http["bag_page"], func["bag_path"])}
    for name, (h, f) in page.items():
        out[f"{name}_http"] = {k: h[k] for k in ("p50_ms", "p95_ms")} if "p95_ms" in h else h
        out[f"{name}_function"] = {k: f[k] for k in ("p50_ms", "p95_ms")}
    out["healthz_baseline_http"] = {k: http["healthz_baseline"][k] for k in ("p50_ms", "p95_ms")}
    xlsx, csv = exported.get("xlsx", {}), exported.get("csv", {})
    per_100k = 100_000 / exported["rows"] if exported["rows"] else 0  # streaming: time is linear in rows
    out.update({"xlsx_rows": exported["rows"], "xlsx_range": [exported["from"], exported["to"]],
                "xlsx_s": xlsx.get("s"), "xlsx_s_per_100k_rows": _scaled(xlsx.get("s"), per_100k),
                "xlsx_peak_mb": xlsx.get("peak_mb"), "xlsx_mib": _mib(xlsx.get("bytes")),
                "csv_s": csv.get("s"), "csv_s_per_100k_rows": _scaled(csv.get("s"), per_100k),
                "csv_peak_mb": csv.get("peak_mb"), "csv_rows_match_store": csv.get("rows_match_store")})
    verify, bare = verified.get("verify", {}), verified.get("bare_ed25519", {})
    records = verify.get("records") or 0
    rate = records / verify["s"] if verify.get("ok") and verify.get("s") else None  # the command's wall time
    out.update({"verify_records": records, "verify_carts": verify.get("carts"), "verify_ok": verify.get("ok"),
                "verify_s": verify.get("s"), "verify_records_per_s": round(rate) if rate else None,
                "verify_records_per_s_in_process": verify.get("records_per_s"),
                "ed25519_verify_per_s": bare.get("one_core_per_s"),
                "ed25519_verify_per_s_all_cores": bare.get("all_cores_per_s"),
                "verify_vs_bare_ratio": round(rate / bare["all_cores_per_s"], 3) if rate and bare else None,
                "verify_vs_bare_one_core_ratio": round(rate / bare["one_core_per_s"], 3) if rate and bare else None})
    shown = [v.get("shows_what_the_library_found") for v in http.values() if "shows_what_the_library_found" in v]
    out["http_pages_show_what_the_library_found"] = all(shown) if shown else None
    worst_search = max((v["p95_ms"] for v in searches_http.values() if "p95_ms" in v), default=None)
    out["notes"] = {
        "http": "client wall time of one kept-alive httpx client over loopback (the server's time plus ~1 ms: see "
                "healthz_baseline_http), pages rendered as HTML unless the route is /api/…",
        "function": "the library call behind the page on the console's own connection, in this process",
        "verify_vs_bare_ratio": "verify_records_per_s (the whole `wastecart verify` run: start, parse, hash, "
                                "signature, chain) over the bare Ed25519 verify rate on every core at once "
                                "(verify checks in a pool of every core); _one_core_ratio: over one core's",
        "load_avg_1m": "the machine's 1-minute load before and after: other work there skews every figure",
    }
    out["targets"] = TARGETS
    out["target_notes"] = {"search_p95_ms": "every search kind through HTTP (the worst p95 counts)",
                           "xlsx_s": "per 100,000 rows: the run exports whole days, its time is scaled to 100,000"}
    out["met"] = {
        "search_p95_ms": None if worst_search is None else worst_search < TARGETS["search_p95_ms"],
        "record_page_p95_ms": http["record_page"]["p95_ms"] < TARGETS["record_page_p95_ms"]
        if "p95_ms" in http["record_page"] else None,
        "xlsx_s": xlsx.get("exit") == 0 and out["xlsx_s_per_100k_rows"] < TARGETS["xlsx_s"] if xlsx else None,
        "xlsx_peak_mb": xlsx.get("exit") == 0 and xlsx["peak_mb"] < TARGETS["xlsx_peak_mb"] if xlsx else None,
    }
    out["worst_search_p95_ms_http"] = worst_search
    out["detail"] = {"http": http, "function": func, "queries_first_sample": times["queries"],
                     "export": exported, "verify": verified}
    return out


def _scaled(seconds: float | None, factor: float) -> float | None:
    return None if seconds is None or not factor else round(seconds * factor, 2)


def _mib(n: int | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, ensure_ascii=False))
