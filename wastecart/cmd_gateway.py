"""``wastecart gateway run|status|keygen|release|user`` and ``wastecart sim platform``: parse flags,
start, wait, stop.

``gateway status`` only reads (``gateway.store.read_summary``, SQLite ``mode=ro``), so it is safe
to run next to a running gateway; so is ``gateway release`` (one transaction).  ``gateway keygen``
creates ``DATA/gateway.key`` if absent and prints the public key carts trust as its LAST line.

``gateway run`` serves the operator console on ``--port`` (default 8090 from the command line;
``console.port`` in the config; ``--no-console`` for none).  The library's default stays "no
console", so tests and embedders get one only when they ask.  ``gateway user add|list|disable|
passwd`` keep the console's logins in ``DATA/gateway.sqlite`` (argon2id hashes; the password is
read from stdin: asked twice on a terminal, the first line otherwise).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wastecart.cli import Cli
from wastecart.cmd_edge import add_tls_flags, tls_overrides
from wastecart.errors import WastecartError


def register(cli: Cli) -> None:
    p = cli.command("gateway", "run", _gateway_run,
                    "run the gateway: MQTT ingest, SQLite store, forwarding to the platform")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML config (flags override it)")
    p.add_argument("--broker", metavar="URL", help="mqtt://host:port (default mqtt://127.0.0.1:1883)")
    p.add_argument("--data", type=Path, metavar="DIR", help="folder for gateway.sqlite")
    p.add_argument("--platform", metavar="URL", help="platform base URL; records go to URL/records")
    p.add_argument("--port", type=int, metavar="N",
                   help="operator console and /metrics port (default 8090; 0: a free one)")
    p.add_argument("--no-console", action="store_true", help="serve no operator console")
    p.add_argument("--client-id", metavar="ID", help="MQTT client id = persistent session name")
    add_tls_flags(p, "tls")

    p = cli.command("gateway", "keygen", _gateway_keygen,
                    "create the gateway's signing key (DATA/gateway.key) if absent; print its public key last")
    p.add_argument("--data", type=Path, metavar="DIR", required=True, help="folder of gateway.key")

    p = cli.command("gateway", "release", _gateway_release,
                    "check a quarantined record again (e.g. after its cart's key was enrolled); store it if it passes")
    p.add_argument("--data", type=Path, metavar="DIR", required=True, help="folder of gateway.sqlite")
    p.add_argument("--id", type=int, required=True, metavar="N", dest="quarantine_id",
                   help="quarantine row (gateway status --quarantine lists them)")
    p.add_argument("--config", type=Path, metavar="FILE", help="the gateway's TOML config (for its cart keys)")
    p.add_argument("--cart-keys-dir", type=Path, metavar="DIR", help="folder of <CART>.pub files")

    p = cli.command("gateway", "status", _gateway_status,
                    "what the gateway holds: counts, carts, alerts (read-only, safe while it runs)")
    p.add_argument("--data", type=Path, metavar="DIR", required=True, help="folder of gateway.sqlite")
    p.add_argument("--json", action="store_true", help="one JSON object (all sections) instead of text")
    p.add_argument("--alerts", action="store_true", help="list the alerts")
    p.add_argument("--dead", action="store_true", help="list the dead-lettered records with their reasons")
    p.add_argument("--quarantine", action="store_true",
                   help="list the quarantined payloads, each with the command that releases it")
    p.add_argument("--limit", type=int, default=100, metavar="N", help="rows per list (default 100)")

    _register_users(cli)

    p = cli.command("sim", "platform", _sim_platform,
                    "simulated platform: POST/GET /records, GET/POST /control for faults")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, metavar="N", help="port (default: a free one)")
    p.add_argument("--error-rate", type=float, default=0.0, metavar="X",
                   help="share of POST /records answered 503, 0..1")
    p.add_argument("--latency-ms", type=int, default=0, metavar="N", help="delay before every answer")
    p.add_argument("--down", action="store_true",
                   help="start down: the records port refuses connections until /control sets down=false")
    p.add_argument("--control-port", type=int, default=0, metavar="N",
                   help="port of the never-faulted /control, GET /records, GET /stats (default: a free one)")
    p.add_argument("--seed", type=int, help="random seed for the error draw")


def _stop_on_signals() -> threading.Event:
    """An Event that SIGINT or SIGTERM sets; installed before starting, so no signal is missed."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _gateway_run(args: argparse.Namespace) -> int:
    from gateway.app import GatewayApp
    from gateway.config import GatewayConfig
    from gateway.console.settings import CONSOLE_PORT
    from wastecart.config import load

    if args.no_console and args.port is not None:
        raise WastecartError("gateway run: --port and --no-console contradict each other")
    overrides = {
        "broker": args.broker, "data": str(args.data) if args.data else None,
        "platform": args.platform, "console.port": args.port, "client_id": args.client_id, **tls_overrides(args, "tls"),
    }
    config = load(GatewayConfig, args.config, overrides)
    if config.console.port is None and not args.no_console:  # the command line's default: a console on 8090
        config = load(GatewayConfig, args.config, {**overrides, "console.port": CONSOLE_PORT})
    elif args.no_console and config.console.port is not None:
        config = config.model_copy(update={"console": config.console.model_copy(update={"port": None})})
    app = GatewayApp(config)
    stop = _stop_on_signals()
    app.start()
    print(f"gateway connecting to {config.broker} as {config.client_id}; "
          f"database {config.db_path}; forwarding to {config.platform}/records; public key {app.public_key}",
          flush=True)
    if app.console_url is not None:
        print(f"console  {app.console_url}", flush=True)
    try:
        stop.wait()
    finally:
        app.stop()
    print(f"gateway stopped: {app.stats()}", flush=True)
    return 0


def _gateway_keygen(args: argparse.Namespace) -> int:
    from gateway.identity import key_path, load_or_create, public_text

    existed = key_path(args.data).is_file()
    key = load_or_create(args.data)
    print(f"gateway key {key_path(args.data)} ({'existing' if existed else 'created'}, mode 0600);"
          " carts trust this public key (uplink.gateway_keys / --gateway-key):", flush=True)
    print(public_text(key), flush=True)
    return 0


def _gateway_release(args: argparse.Namespace) -> int:
    import getpass

    from gateway.release import release
    from gateway.store import SqliteStore
    from wastecart.cmd_ledger import cart_key_ring

    keys = cart_key_ring(args)
    if not (args.data / "gateway.sqlite").is_file():
        raise WastecartError(f"{args.data / 'gateway.sqlite'}: no gateway database here")
    store = SqliteStore(args.data / "gateway.sqlite")
    try:
        # audited like the console's release: who ran it on this machine
        done = release(store, keys, args.quarantine_id, user=f"cli:{getpass.getuser()}")
    finally:
        store.close()
    print(done.text, flush=True)
    return 0 if done.ok else 1


def _sim_platform(args: argparse.Namespace) -> int:
    from sim_devices.platform import SimPlatform

    try:
        platform = SimPlatform(args.host, args.port, error_rate=args.error_rate,
                               latency_ms=args.latency_ms, down=args.down, seed=args.seed,
                               control_port=args.control_port)
    except ValueError as exc:
        raise WastecartError(f"sim platform: {exc}") from exc
    stop = _stop_on_signals()
    platform.start()
    print(f"platform listening on {platform.url}", flush=True)
    print(f"platform control on {platform.control_url}", flush=True)
    try:
        stop.wait()
    finally:
        platform.stop()
    return 0


def _gateway_status(args: argparse.Namespace) -> int:
    from gateway.store import read_summary

    if args.limit < 1:
        raise WastecartError("gateway status: --limit must be at least 1")
    summary = read_summary(args.data, limit=args.limit)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return 0
    for line in _status_lines(summary, alerts=args.alerts, dead=args.dead, quarantine=args.quarantine,
                              data=args.data):
        print(line)
    return 0


def _repeats(alert: dict[str, Any]) -> str:
    count = int(alert.get("count") or 1)
    return "" if count == 1 else f" (x{count}, last {_when(alert.get('last_seen'))})"


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


# Command results shown by a plain ``gateway status`` (newest first).
STATUS_CMD_RESULTS = 10


def _status_lines(summary: dict[str, Any], *, alerts: bool, dead: bool, quarantine: bool,
                  data: Path | None = None) -> list[str]:
    """The text form of ``read_summary`` for an operator's terminal."""
    c = summary["counts"]
    lines = [f"gateway database {summary['database']}",
             "records: " + ", ".join(f"{k} {c[k]}" for k in (
                 "received", "stored", "duplicates", "quarantined", "pending", "held", "forwarding",
                 "accepted", "dead", "redeliveries")),
             f"quarantine: {c['quarantine_bytes']} bytes held, {c['quarantine_dropped']} rows dropped beyond"
             f" the budget; status ignored: {c['status_stale']} stale, {c['status_ahead']} ahead of verified seqs",
             "alerts: " + (", ".join(f"{k} {n} ({c['alert_events_by_kind'].get(k, n)}x)"
                                     for k, n in sorted(c["alerts_by_kind"].items())) or "none")]
    lines.append(f"{'cart':<20} {'site':<10} {'upto':>8} {'max':>8} {'stored':>8} {'ok':>8} {'pending':>8}"
                 f" {'broken':>7} {'online':>7} last seen")
    for cart, e in sorted(summary["carts"].items()):
        online = "-" if e["online"] is None else "yes" if e["online"] else "no"
        lines.append(f"{cart:<20} {e['site'] or '-':<10} {e['upto_seq']:>8} {e['max_seq']:>8} {e['stored']:>8}"
                     f" {e['chain_ok']:>8} {e['chain_pending']:>8} {e['chain_broken']:>7} {online:>7}"
                     f" {_when(e['last_seen'])}")
    results = summary.get("cmd_results", [])[:STATUS_CMD_RESULTS]
    if results:
        lines.append("command results (newest first):")
        lines += [f"  {_when(r['received_at'])} {r['cart']} {r['name']} #{r['counter']} {r['outcome']}"
                  f"{': ' + r['reason'] if r['reason'] else ''}" for r in results]
    if alerts:
        lines.append("alerts (newest first):")
        lines += [f"  #{a['id']} {_when(a['raised_at'])} {a['kind']} cart={a['cart'] or '-'} {a['subject']}:"
                  f" {a['detail']}{' (acknowledged)' if a['acknowledged_at'] else ''}{_repeats(a)}"
                  for a in summary["alerts"]]
    if dead:
        lines.append("dead letters (newest first):")
        lines += [f"  {d['id']} cart={d['cart']} seq={d['seq']} attempts={d['attempts']}: {d['reason']}"
                  for d in summary["dead"]]
    if quarantine:
        lines.append("quarantine (newest first; release one with the command under it):")
        for q in summary["quarantine"]:
            kept = "" if q["kept"] >= (q["size"] or 0) else f", first {q['kept']} kept"
            lines.append(f"  #{q['id']} {_when(q['received_at'])} {q['kind'] or '-'} {q['topic']}"
                         f" ({q['size']} bytes{kept}, sha256 {(q['sha256'] or '-')[:16]}): {q['reason']}")
            if q["released_at"] is not None:
                lines.append(f"      {q['release_note'] or 'released'} at {_when(q['released_at'])}")
            else:
                lines.append(f"      wastecart gateway release --data {data or 'DIR'} --id {q['id']}")
    return lines


def _register_users(cli: Cli) -> None:
    from gateway.store.users import ROLES

    p = cli.command("gateway", "user", _user_list, "the operator console's users: add, list, disable, passwd")
    verbs = p.add_subparsers(dest="user_command", metavar="VERB", required=True)
    for verb, handler, text in (
            ("add", _user_add, "add a console user; the password is read from stdin"),
            ("list", _user_list, "list the console's users and roles"),
            ("disable", _user_disable, "disable a console user (the row stays; its sessions end)"),
            ("passwd", _user_passwd, "set a console user's password, read from stdin (its sessions end)")):
        v = verbs.add_parser(verb, help=text, description=text)
        v.set_defaults(func=handler)
        v.add_argument("--data", type=Path, metavar="DIR", required=True, help="folder of gateway.sqlite")
        if verb != "list":
            v.add_argument("name", metavar="NAME", help="login name")
        if verb == "add":
            v.add_argument("--role", choices=ROLES, required=True, help="viewer (reads), operator (acts), admin")


@contextmanager
def _users_db(data: Path) -> Iterator[Any]:
    """The gateway's users table (``DATA/gateway.sqlite``), closed afterwards."""
    from gateway.store.schema import DB_NAME
    from gateway.store.users import SqliteUsers

    db = SqliteUsers(data / DB_NAME)
    try:
        yield db
    finally:
        db.close()


def _read_password(confirm: bool) -> str:
    """The new password: asked twice (no echo) on a terminal, else the first line of stdin."""
    import getpass
    import sys

    from gateway.console.auth import PasswordError, check_new_password

    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if confirm and getpass.getpass("again: ") != first:
            raise WastecartError("the two passwords differ; nothing changed")
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    try:
        return check_new_password(first)
    except PasswordError as exc:
        raise WastecartError(f"{exc}; nothing changed") from exc


def _user_add(args: argparse.Namespace) -> int:
    import time

    from gateway.console.auth import Passwords
    from gateway.store.users import check_name

    check_name(args.name)
    password_hash = Passwords().hash(_read_password(confirm=True))
    with _users_db(args.data) as db:
        if not db.add_user(args.name, args.role, password_hash, time.time()):
            raise WastecartError(f"user {args.name} exists already (gateway user passwd / disable change it)")
    print(f"user {args.name} added ({args.role})", flush=True)
    return 0


def _user_list(args: argparse.Namespace) -> int:
    with _users_db(args.data) as db:
        users = db.users()
    print(f"{'name':<24} {'role':<9} {'state':<9} changed")
    for u in users:
        print(f"{u['name']:<24} {u['role']:<9} {'disabled' if u['disabled'] else 'active':<9} {_when(u['changed_at'])}")
    return 0


def _user_disable(args: argparse.Namespace) -> int:
    import time

    with _users_db(args.data) as db:
        if not db.set_disabled(args.name, True, time.time()):
            raise WastecartError(f"no user {args.name}")
    print(f"user {args.name} disabled; its sessions have ended", flush=True)
    return 0


def _user_passwd(args: argparse.Namespace) -> int:
    import time

    from gateway.console.auth import Passwords

    with _users_db(args.data) as db:
        if db.user(args.name) is None:
            raise WastecartError(f"no user {args.name}")
        if not db.set_password(args.name, Passwords().hash(_read_password(confirm=True)), time.time()):
            raise WastecartError(f"no user {args.name}")
    print(f"password of {args.name} changed; its sessions have ended", flush=True)
    return 0
