"""Fault-injection harness: the whole chain as REAL processes, and the exactly-once check.

``Stack`` starts, in a test's tmp folder, a private mosquitto (``PrivateBroker``), ``wastecart sim
platform``, ``wastecart gateway run`` and ``wastecart sim fleet`` — each with
``python -m wastecart.cli`` in its own session, so a SIGKILL hits exactly that process group and
nothing else.  Each process's stdout and stderr are copied line by line, by one reader thread per
pipe, into ``<tmp>/logs/<part>.out|.err`` (appended across restarts, one header per run) and into
memory, so a test can wait for a line (``wait_line``) without polling and a failure message can
show the tail of every log.

``assert_exactly_once`` checks the promise of issue 3 for every cart: ledger ids == platform ids
(none missing, none extra), same content (hash, seq, body), ``received_count`` 1 except re-deliveries
that the gateway counted, contiguous seqs at the gateway (``upto_seq == M``), no chain break, every
ledger row synced.

With ``WASTECART_FAULTS_TLS=1`` (``make faults-tls``, part of ``make test``) every stack runs on the
deployed broker configuration instead (issue 12): a site PKI, ``wastecart broker config`` (TLS with
client certificates, per-client ACL, CRL), the gateway and every cart with its own certificate.  The
tests of a hostile peer on an open broker (marker ``open_broker``) do not run then: under TLS that
peer is refused by the broker itself (tests/integration/test_broker_acl.py).

Where nothing can notify us (an HTTP endpoint, another process's SQLite file) we poll with a
bounded ``threading.Event().wait(interval)`` against a deadline; never a bare sleep in a loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from edge.errors import StoreError
from edge.ledger.export import open_read_only, read_ledger
from gateway.errors import GatewayError
from gateway.store import read_summary
from wastecart import pki
from wastecart.broker import PrivateBroker

T = TypeVar("T")

# How long a process may take to print its "listening" line (s): Python start-up + imports on a
# busy 2-core CI machine.
START_TIMEOUT_S = 30.0
# How long SIGTERM gets before SIGKILL when tidying up (s).
TERM_GRACE_S = 10.0
# Poll interval for state no one can notify us about (HTTP /records, other processes' SQLite) (s).
POLL_S = 0.2
# Lines of each log shown in a failure message, and warning/error lines from before that tail.
TAIL_LINES = 15
NOTABLE_LINES = 25
# Ids listed in a failure message before "… and N more".
IDS_SHOWN = 10

ORG = "H330100001"
GATEWAY_CLIENT_ID = "wc-gateway-faults"
TLS_GATEWAY_ID = "GW-FAULTS"  # the gateway's certificate CN under TLS: the broker makes it the client id
TLS = os.environ.get("WASTECART_FAULTS_TLS") == "1"  # run every stack on the TLS broker configuration


def cart_name(n: int) -> str:
    """``FLEET-001`` …: the fleet's cart ids."""
    return f"FLEET-{n:03d}"


class _Stopwatch:
    """A deadline: ``left()`` seconds remaining, ``expired()``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end


def poll_until(what: str, probe: Callable[[], T | None], timeout: float, *, on_timeout: Callable[[], str]
               = lambda: "") -> T:
    """Call ``probe`` every POLL_S until it returns something other than None; AssertionError at the
    deadline.  Only for state that nobody can notify us about (see the module docstring)."""
    deadline = _Stopwatch(timeout)
    tick = threading.Event()  # never set: a bounded wait that a signal cannot turn into a busy loop
    last_exc: BaseException | None = None
    while True:
        try:
            value = probe()
        except (OSError, StoreError, GatewayError, ValueError) as exc:  # not there yet (file, port, JSON)
            value, last_exc = None, exc
        if value is not None:
            return value
        if deadline.expired():
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                                 f"{f' (last error: {last_exc!r})' if last_exc else ''}\n{on_timeout()}")
        tick.wait(min(POLL_S, deadline.left()))


# ------------------------------------------------------------------------------------------------
# One process


class Proc:
    """A ``python -m wastecart.cli …`` process that can be started again with the same arguments."""

    def __init__(self, name: str, args: Sequence[str], log_dir: Path) -> None:
        self.name = name
        self.args = list(args)
        self.out_path = log_dir / f"{name}.out"
        self.err_path = log_dir / f"{name}.err"
        self.popen: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.exit_codes: list[int] = []  # one per finished run, negative = killed by that signal
        self.pids: list[int] = []  # every process this Proc started, for the stray-process check
        self._cond = threading.Condition()
        self._lines: list[tuple[str, str]] = []  # (stream, line) of the current run
        self._open_streams = 0
        self._readers: list[threading.Thread] = []

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", "wastecart.cli", *self.args]

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> Proc:
        assert not self.running(), f"{self.name} is already running"
        if self.popen is not None:  # the previous run ended by itself: keep its exit code
            self._reap()
        self.runs += 1
        header = f"=== run {self.runs} at {time.strftime('%H:%M:%S')}: {shlex.join(self.argv)}\n"
        for path in (self.out_path, self.err_path):
            with path.open("a", encoding="utf-8") as f:
                f.write(header)
        with self._cond:
            self._lines = []
            self._open_streams = 2
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Own session: SIGKILL of the group hits this process (and any child it made), nothing else.
        self.popen = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.pids.append(self.popen.pid)
        self._readers = [
            threading.Thread(target=self._copy, args=(self.popen.stdout, "out", self.out_path),
                             name=f"{self.name}-out", daemon=True),
            threading.Thread(target=self._copy, args=(self.popen.stderr, "err", self.err_path),
                             name=f"{self.name}-err", daemon=True),
        ]
        for t in self._readers:
            t.start()
        return self

    def _copy(self, pipe: Any, stream: str, path: Path) -> None:
        with path.open("a", encoding="utf-8") as f:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                f.write(line + "\n")
                f.flush()
                with self._cond:
                    self._lines.append((stream, line))
                    self._cond.notify_all()
        pipe.close()
        with self._cond:
            self._open_streams -= 1
            self._cond.notify_all()

    def wait_line(self, pattern: str, timeout: float = START_TIMEOUT_S, stream: str = "out") -> re.Match[str]:
        """First line of this run (on ``stream``: out, err or any) matching ``pattern``."""
        rx = re.compile(pattern)
        deadline = _Stopwatch(timeout)
        seen = 0
        with self._cond:
            while True:
                for s, line in self._lines[seen:]:
                    m = rx.search(line) if stream in (s, "any") else None
                    if m:
                        return m
                seen = len(self._lines)
                if self._open_streams == 0:
                    raise AssertionError(f"{self.name} ended (exit {self._returncode()}) without printing "
                                         f"/{pattern}/\n{self.tail()}")
                if deadline.expired():
                    raise AssertionError(f"{self.name} printed no /{pattern}/ within {timeout:.0f} s\n"
                                         f"{self.tail()}")
                self._cond.wait(deadline.left())

    def output(self) -> str:
        """Everything this run printed so far (stdout and stderr interleaved as read)."""
        with self._cond:
            return "\n".join(line for _, line in self._lines)

    def _returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def wait_exit(self, timeout: float) -> int:
        """Exit code of this run; AssertionError with the logs if it is still running at the deadline."""
        assert self.popen is not None, f"{self.name} was never started"
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout:.0f} s\n{self.tail()}") from None
        self._reap()
        return code

    def _reap(self) -> None:
        assert self.popen is not None
        for t in self._readers:
            t.join(5)
        self.exit_codes.append(self.popen.returncode)
        self.popen = None

    def kill9(self) -> None:
        """SIGKILL the process group (a power cut for this process)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        self._reap()

    def terminate(self) -> None:
        """SIGTERM, then SIGKILL after TERM_GRACE_S; also reaps a process that already exited."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        # A child the process left in its group (none expected) must not outlive the test.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._reap()

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The last lines of each log, plus the last warnings/errors/tracebacks that scrolled by."""
        parts = []
        for path in (self.out_path, self.err_path):
            rows = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
            last = rows[-lines:]
            earlier = rows[:-lines] if len(rows) > lines else []
            notable = [r for r in earlier if _NOTABLE.search(r)][-NOTABLE_LINES:]
            if notable:
                parts.append(f"--- {path.name}: last {len(notable)} warning/error line(s) before the tail ---\n"
                             + "\n".join(notable))
            parts.append(f"--- {path.name} (last {len(last)} of {len(rows)} lines) ---\n" + "\n".join(last))
        return "\n".join(parts)


_NOTABLE = re.compile(r"WARNING|ERROR|CRITICAL|Traceback|Error:|^=== run ")


# ------------------------------------------------------------------------------------------------
# The stack


class Stack:
    """broker + platform + gateway + fleet in ``root``; ``kill9``/``restart`` any part; ``close()``."""

    def __init__(self, root: Path, *, carts: int = 3, records: int = 200, rate: float = 0,
                 org: str = ORG, platform_args: Sequence[str] = (), forward: dict[str, Any] | None = None,
                 ingest: dict[str, Any] | None = None, fleet_dir: Path | None = None,
                 tls: bool = TLS) -> None:
        self.root = root
        self.carts = [cart_name(n) for n in range(1, carts + 1)]
        self.records = records
        self.rate = rate
        self.org = org
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.fleet_dir = fleet_dir or root / "fleet"
        self.keys_dir = self.fleet_dir / "keys"
        self.gateway_dir = root / "gateway"
        self.pki: Path | None = None
        self._broker_out: Path | None = None
        if tls:
            self.pki = root / "pki"
            pki.init(self.pki, org)
            for cart in self.carts:
                pki.issue(self.pki, cart, "cart")
            pki.issue(self.pki, TLS_GATEWAY_ID, "gateway")
            # Outside tmp_path: mosquitto reads its folder as its own user when we are root.
            self._broker_out = Path(tempfile.mkdtemp(prefix="wc-faults-broker-"))
            self._broker_out.chmod(0o755)
            self.broker = PrivateBroker.for_pki(self.pki, self._broker_out / "broker")
        else:
            self.broker = PrivateBroker(data_dir=self._mkdir(root / "broker"))
        self.client_id = TLS_GATEWAY_ID if tls else GATEWAY_CLIENT_ID
        self.platform_args = list(platform_args)
        self.platform_url = ""
        self.control_url = ""
        # Fast retries so a test's outage costs seconds, not the production backoff of minutes;
        # a high rate so the platform's token bucket is not what a test measures.
        self.forward = {"backoff_base_s": 0.05, "backoff_max_s": 1.0, "rate_per_s": 2000.0, **(forward or {})}
        self.ingest = dict(ingest or {})
        self.platform: Proc | None = None
        self.gateway: Proc | None = None
        self.fleet: Proc | None = None
        self.events: list[str] = []  # what the test did, with times, for failure messages
        self._broker_pids: list[int] = []
        self._t0 = time.monotonic()

    @staticmethod
    def _mkdir(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        return path

    def note(self, what: str) -> None:
        self.events.append(f"{time.monotonic() - self._t0:7.2f}s {what}")

    # ---------------------------------------------------------------- starting

    def start(self, *, fleet: bool = True) -> Stack:
        self.start_broker()
        self.start_platform()
        self.start_gateway()
        if fleet:
            self.start_fleet()
        return self

    def start_broker(self) -> None:
        self.broker.start()
        assert self.broker.proc is not None
        self._broker_pids.append(self.broker.proc.pid)
        self.note(f"broker started on {self.broker.url}")

    def start_platform(self) -> None:
        if self.platform is None:
            self.platform = Proc("platform", ["sim", "platform", "--port", "0", *self.platform_args], self.logs)
        self.platform.start()
        m = self.platform.wait_line(r"platform listening on (http://\S+)")
        self.platform_url = m.group(1)
        # The never-faulted control listener (/control, GET /records) when the platform has one:
        # asking it is not slowed or refused by the faults a test injects.
        try:
            self.control_url = self.platform.wait_line(r"platform control on (http://\S+)", timeout=5).group(1)
        except AssertionError:
            self.control_url = self.platform_url
        # A restart must come back on the same ports: the gateway keeps the records URL.
        args = self.platform.args
        args[args.index("--port") + 1] = self.platform_url.rsplit(":", 1)[1]
        if self.control_url != self.platform_url and "--control-port" not in args:
            args += ["--control-port", self.control_url.rsplit(":", 1)[1]]
        self.note(f"platform started on {self.platform_url} (control {self.control_url})")

    def gateway_config(self) -> Path:
        self._mkdir(self.keys_dir)  # the gateway checks that cart_keys_dir exists; the fleet fills it
        self._mkdir(self.gateway_dir)
        lines = [
            f"broker = {json.dumps(self.broker.url)}",
            f"client_id = {json.dumps(self.client_id)}",
            f"data = {json.dumps(str(self.gateway_dir))}",
            f"platform = {json.dumps(self.platform_url)}",
            f"cart_keys_dir = {json.dumps(str(self.keys_dir))}",
            "", "[ingest]", *(f"{k} = {json.dumps(v)}" for k, v in self.ingest.items()),
            "", "[forward]", *(f"{k} = {json.dumps(v)}" for k, v in self.forward.items()),
        ]
        if self.pki is not None:
            cert, key = pki.client_files(self.pki, TLS_GATEWAY_ID)
            lines += ["", "[tls]", f"ca = {json.dumps(str(self.pki / 'ca.crt'))}",
                      f"cert = {json.dumps(str(cert))}", f"key = {json.dumps(str(key))}"]
        path = self.root / "gateway.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def start_gateway(self) -> None:
        if self.gateway is None:
            self.gateway = Proc("gateway", [
                "gateway", "run", "--config", str(self.gateway_config()), "--broker", self.broker.url,
                "--data", str(self.gateway_dir), "--platform", self.platform_url,
                "--client-id", self.client_id], self.logs)
        self.gateway.start()
        self.gateway.wait_line(r"^gateway connecting to")
        # Best effort: its subscription exists before the first cart publishes (a record published
        # before the gateway's very first subscription has no session to wait in).  The log line
        # is not a contract, so a missing one only costs this wait.
        with contextlib.suppress(AssertionError):
            self.gateway.wait_line(r"connected to", timeout=5, stream="err")
        self.note("gateway started")

    def fleet_args(self) -> list[str]:
        return ["sim", "fleet", "--broker", self.broker.url, "--data", str(self.fleet_dir),
                "--carts", str(len(self.carts)), "--records", str(self.records), "--rate", str(self.rate),
                "--org", self.org, "--gateway-key", self.gateway_public_key(),
                *(["--pki", str(self.pki)] if self.pki is not None else [])]

    def gateway_public_key(self) -> str:
        """The gateway's public key: its ``DATA/gateway.key``, made now if absent (``gateway run``
        then uses the same), so the fleet believes the acks it signs."""
        from gateway.identity import load_or_create, public_text

        return public_text(load_or_create(self._mkdir(self.gateway_dir)))

    def start_fleet(self) -> None:
        if self.fleet is None:
            self.fleet = Proc("fleet", self.fleet_args(), self.logs)
        self.fleet.start()
        self.note(f"fleet started (run {self.fleet.runs})")

    def part(self, name: str) -> Proc:
        proc = {"platform": self.platform, "gateway": self.gateway, "fleet": self.fleet}[name]
        assert proc is not None, f"{name} was never started"
        return proc

    # ---------------------------------------------------------------- faults

    def kill9(self, name: str) -> None:
        if name == "broker":
            proc = self.broker.proc
            self.broker.kill()
            # PrivateBroker.kill() leaves its stderr pipe open (ResourceWarning = error under
            # pytest's filterwarnings); close it here until broker.py does.
            if proc is not None and proc.stderr is not None and not proc.stderr.closed:
                proc.stderr.close()
        else:
            self.part(name).kill9()
        self.note(f"{name} SIGKILLed")

    def stop(self, name: str) -> None:
        if name == "broker":
            self.broker.stop()
        else:
            self.part(name).terminate()
        self.note(f"{name} stopped (SIGTERM)")

    def restart(self, name: str) -> None:
        {"broker": self.start_broker, "platform": self.start_platform, "gateway": self.start_gateway,
         "fleet": self.start_fleet}[name]()

    def control(self, **faults: Any) -> dict[str, Any]:
        """POST /control on the platform: error_rate, latency_ms, down."""
        req = urllib.request.Request(f"{self.control_url}/control", data=json.dumps(faults).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            answer: dict[str, Any] = json.load(resp)
        self.note(f"platform control {faults}")
        return answer

    # ---------------------------------------------------------------- state

    def platform_records(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.control_url}/records", timeout=10) as resp:
            items: list[dict[str, Any]] = json.load(resp)
        return items

    def ledger(self, cart: str) -> list[dict[str, Any]]:
        return read_ledger(self.fleet_dir / cart)

    def ledger_count(self, cart: str) -> int:
        """Records committed in ``cart``'s ledger (read-only, one COUNT; safe while the fleet runs).
        A cart whose every run was killed while Python was still starting, or between creating the
        ledger's file and its tables, has committed nothing: 0."""
        path = self.fleet_dir / cart / "ledger.sqlite"
        if not path.exists():
            return 0
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as raw:
            if raw.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'").fetchone() is None:
                return 0
        with open_read_only(self.fleet_dir / cart) as db:
            return db.table("records").count

    def summary(self) -> dict[str, Any]:
        """The gateway's ``read_summary(data)`` (read-only; safe while it runs)."""
        return read_summary(self.gateway_dir)

    def wait_fleet_done(self, timeout: float) -> None:
        """The fleet exits 0 once every record is committed and acknowledged by the gateway."""
        fleet = self.part("fleet")
        code = fleet.wait_exit(timeout)
        self.note(f"fleet exited {code}")
        assert code == 0, f"fleet exited with {code}\n{self.diagnostics()}"

    def wait_delivered(self, timeout: float = 30.0) -> None:
        """Until the platform holds every ledger id and the gateway counts them all accepted."""
        expected = {r["id"] for cart in self.carts for r in self.ledger(cart)}

        def probe() -> bool | None:
            have = {item["id"] for item in self.platform_records()}
            if not expected <= have:
                return None
            return True if self.summary()["counts"]["accepted"] >= len(expected) else None

        poll_until(f"all {len(expected)} committed records accepted by the platform", probe, timeout,
                   on_timeout=self.diagnostics)
        self.note("all delivered")

    def wait_platform_count(self, n: int, timeout: float = 30.0) -> int:
        """Until the platform holds at least ``n`` distinct records (progress marker for a fault)."""
        def probe() -> int | None:
            have = len(self.platform_records())
            return have if have >= n else None
        have = poll_until(f"{n} records at the platform", probe, timeout, on_timeout=self.diagnostics)
        self.note(f"platform holds {have} records")
        return have

    def wait_ledger_rows(self, cart: str, n: int, timeout: float = 30.0) -> int:
        """Until ``cart``'s ledger holds at least ``n`` committed records."""
        def probe() -> int | None:
            have = self.ledger_count(cart)
            return have if have >= n else None
        have = poll_until(f"{n} records in {cart}'s ledger", probe, timeout, on_timeout=self.diagnostics)
        self.note(f"{cart} ledger holds {have} records")
        return have

    # ---------------------------------------------------------------- the promise

    def assert_exactly_once(self, *, records_per_cart: int | None = None) -> dict[str, Any]:
        """Every committed record at the platform exactly once (re-deliveries only as counted),
        nothing uncommitted, per-cart seqs contiguous at the gateway, no chain break, all synced.
        Returns the facts it checked (for a test's own extra assertions)."""
        m = self.records if records_per_cart is None else records_per_cart
        problems: list[str] = []
        at_platform = {item["id"]: item for item in self.platform_records()}
        summary = self.summary()
        committed: dict[str, dict[str, Any]] = {}
        for cart in self.carts:
            rows = self.ledger(cart)
            committed.update({r["id"]: r for r in rows})
            seqs = [r["seq"] for r in rows]
            if seqs != list(range(1, m + 1)):
                problems.append(f"{cart}: ledger seqs are {_ranges(seqs)}, expected 1..{m}")
            unsynced = [r["seq"] for r in rows if not r["synced"]]
            if unsynced:
                problems.append(f"{cart}: {len(unsynced)} ledger row(s) not synced: seqs {_ranges(unsynced)}")
            mine = {i for i, item in at_platform.items() if item["record"].get("cart") == cart}
            ids = {r["id"] for r in rows}
            missing = ids - set(at_platform)
            extra = mine - ids
            if missing:
                problems.append(f"{cart}: {len(missing)} committed record(s) missing at the platform: "
                                f"{_show(missing, committed)}")
            if extra:
                problems.append(f"{cart}: {len(extra)} record(s) at the platform that the cart never "
                                f"committed: {_show_platform(extra, at_platform)}")
            gw = summary.get("carts", {}).get(cart)
            if gw is None:
                problems.append(f"{cart}: unknown to the gateway summary")
            else:
                if gw.get("upto_seq") != m:
                    problems.append(f"{cart}: gateway upto_seq is {gw.get('upto_seq')}, expected {m}")
                if gw.get("chain_broken"):
                    problems.append(f"{cart}: gateway reports chain_broken = {gw.get('chain_broken')!r}")
                if "chain_ok" in gw and gw["chain_ok"] != m:  # every record's prev_hash checked
                    problems.append(f"{cart}: gateway verified the chain of {gw['chain_ok']} record(s), "
                                    f"expected {m} (chain_pending {gw.get('chain_pending')!r})")
        foreign = {i for i, item in at_platform.items() if item["record"].get("cart") not in self.carts}
        if foreign:
            problems.append(f"{len(foreign)} record(s) at the platform for no cart of this fleet: "
                            f"{_show_platform(foreign, at_platform)}")
        for rid, item in at_platform.items():
            row = committed.get(rid)
            if row is None:
                continue
            env, got = row["record"], item["record"]
            diffs = [k for k in ("hash", "seq", "cart", "type", "body") if got.get(k) != env.get(k)]
            if diffs:
                problems.append(f"{rid} ({row['record']['cart']} seq {row['seq']}): the platform's copy "
                                f"differs from the ledger in {diffs}")
        extra_receipts = {rid: item["received_count"] - 1 for rid, item in at_platform.items()
                          if item["received_count"] != 1}
        # The gateway re-sends only after an unknown outcome (timeout, crash between sending and
        # recording) and cannot know whether the first send arrived: so every extra copy at the
        # platform must be explained by a counted re-send of that same record (never hidden), while
        # a counted re-send whose first send was lost leaves no extra copy.
        counted: dict[str, int] = summary.get("redelivered", {})
        hidden = {rid: n for rid, n in extra_receipts.items() if n > counted.get(rid, 0)}
        if hidden:
            problems.append(
                f"re-deliveries hidden: the platform received extra copies of {len(hidden)} record(s) beyond "
                f"the gateway's counted re-sends: "
                + ", ".join(f"{rid} x{n + 1} (counted {counted.get(rid, 0)})"
                            for rid, n in list(hidden.items())[:IDS_SHOWN]))
        if sum(counted.values()) != summary.get("counts", {}).get("redeliveries"):
            problems.append(f"per-record re-sends {sum(counted.values())} != counted redeliveries "
                            f"{summary.get('counts', {}).get('redeliveries')!r}")
        accepted = summary.get("counts", {}).get("accepted")
        if accepted != len(committed):
            problems.append(f"gateway counts accepted = {accepted!r}, the carts committed {len(committed)}")
        if problems:
            raise AssertionError("exactly-once violated:\n  - " + "\n  - ".join(problems)
                                 + f"\ngateway summary: {_brief(summary)}\n{self.diagnostics()}")
        return {"committed": len(committed), "extra_receipts": sum(extra_receipts.values()),
                "summary": summary}

    # ---------------------------------------------------------------- reporting and tidying

    def diagnostics(self) -> str:
        parts = ["=== what the test did ===", *self.events[-40:]]
        for proc in (self.fleet, self.gateway, self.platform):
            if proc is not None:
                parts.append(f"=== {proc.name}: {proc.runs} run(s), exit codes {_codes(proc.exit_codes)}, "
                             f"running: {proc.running()} ===")
                parts.append(proc.tail())
        log = self.broker.data_dir / "mosquitto.log"
        if log.exists():
            rows = log.read_text(errors="replace").splitlines()[-10:]
            parts.append("=== mosquitto.log (last 10 lines) ===\n" + "\n".join(rows))
        return "\n".join(parts)

    @property
    def all_pids(self) -> list[int]:
        """Every process this stack ever started (restarts included)."""
        procs = [p for p in (self.fleet, self.gateway, self.platform) if p is not None]
        return [*self._broker_pids, *(pid for p in procs for pid in p.pids)]

    def close(self) -> None:
        """Stop everything this stack started, in order (cart, gateway, platform, broker); always."""
        for proc in (self.fleet, self.gateway, self.platform):
            if proc is not None:
                proc.terminate()
        self.broker.stop()
        if self._broker_out is not None:
            shutil.rmtree(self._broker_out, ignore_errors=True)


def _codes(codes: list[int]) -> str:
    if len(codes) <= 12:
        return str(codes)
    return f"{codes[:6]} … {codes[-6:]} ({len(codes)} runs)"


def _ranges(values: list[int]) -> str:
    """[1,2,3,7,8] -> '1-3, 7-8'."""
    if not values:
        return "(none)"
    out, start, prev = [], values[0], values[0]
    for v in values[1:]:
        if v != prev + 1:
            out.append(f"{start}-{prev}" if start != prev else str(start))
            start = v
        prev = v
    out.append(f"{start}-{prev}" if start != prev else str(start))
    return ", ".join(out)


def _show(ids: set[str], rows: dict[str, dict[str, Any]]) -> str:
    shown = sorted(ids, key=lambda i: (rows[i]["record"]["cart"], rows[i]["seq"]))[:IDS_SHOWN]
    text = ", ".join(f"{i} (seq {rows[i]['seq']})" for i in shown)
    return text + (f" … and {len(ids) - len(shown)} more" if len(ids) > len(shown) else "")


def _show_platform(ids: set[str], items: dict[str, dict[str, Any]]) -> str:
    shown = sorted(ids)[:IDS_SHOWN]
    text = ", ".join(f"{i} (cart {items[i]['record'].get('cart')} seq {items[i]['record'].get('seq')})"
                     for i in shown)
    return text + (f" … and {len(ids) - len(shown)} more" if len(ids) > len(shown) else "")


def _brief(summary: dict[str, Any]) -> str:
    alerts = summary.get("alerts", [])
    short = {**summary, "alerts": [f"{a.get('kind')}:{a.get('cart')}" for a in alerts[:20]]}
    return json.dumps(short, default=str)[:3000]
