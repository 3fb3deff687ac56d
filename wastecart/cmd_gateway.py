"""``wastecart gateway run|status`` and ``wastecart sim platform``: parse flags, start, wait, stop.

``gateway status`` only reads (``gateway.store.read_summary``, SQLite ``mode=ro``), so it is safe
to run next to a running gateway.

``--port`` of ``gateway run`` is accepted and kept in the config for the dashboard / metrics
server of a later issue; today nothing listens on it (the command says so).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wastecart.cli import Cli
from wastecart.errors import WastecartError


def register(cli: Cli) -> None:
    p = cli.command("gateway", "run", _gateway_run,
                    "run the gateway: MQTT ingest, SQLite store, forwarding to the platform")
    p.add_argument("--config", type=Path, metavar="FILE", help="TOML config (flags override it)")
    p.add_argument("--broker", metavar="URL", help="mqtt://host:port (default mqtt://127.0.0.1:1883)")
    p.add_argument("--data", type=Path, metavar="DIR", help="folder for gateway.sqlite")
    p.add_argument("--platform", metavar="URL", help="platform base URL; records go to URL/records")
    p.add_argument("--port", type=int, metavar="N",
                   help="dashboard/metrics port (reserved: nothing is served on it yet)")
    p.add_argument("--client-id", metavar="ID", help="MQTT client id = persistent session name")

    p = cli.command("gateway", "status", _gateway_status,
                    "what the gateway holds: counts, carts, alerts (read-only, safe while it runs)")
    p.add_argument("--data", type=Path, metavar="DIR", required=True, help="folder of gateway.sqlite")
    p.add_argument("--json", action="store_true", help="one JSON object (all sections) instead of text")
    p.add_argument("--alerts", action="store_true", help="list the alerts")
    p.add_argument("--dead", action="store_true", help="list the dead-lettered records with their reasons")
    p.add_argument("--quarantine", action="store_true", help="list the quarantined payloads")
    p.add_argument("--limit", type=int, default=100, metavar="N", help="rows per list (default 100)")

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
    from wastecart.config import load

    config = load(GatewayConfig, args.config, {
        "broker": args.broker, "data": str(args.data) if args.data else None,
        "platform": args.platform, "port": args.port, "client_id": args.client_id,
    })
    app = GatewayApp(config)
    stop = _stop_on_signals()
    app.start()
    print(f"gateway connecting to {config.broker} as {config.client_id}; "
          f"database {config.db_path}; forwarding to {config.platform}/records", flush=True)
    if config.port is not None:
        print(f"gateway: port {config.port} is reserved for the dashboard; nothing listens on it yet",
              flush=True)
    try:
        stop.wait()
    finally:
        app.stop()
    print(f"gateway stopped: {app.stats()}", flush=True)
    return 0


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
    for line in _status_lines(summary, alerts=args.alerts, dead=args.dead, quarantine=args.quarantine):
        print(line)
    return 0


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _status_lines(summary: dict[str, Any], *, alerts: bool, dead: bool, quarantine: bool) -> list[str]:
    """The text form of ``read_summary`` for an operator's terminal."""
    c = summary["counts"]
    lines = [f"gateway database {summary['database']}",
             "records: " + ", ".join(f"{k} {c[k]}" for k in (
                 "received", "stored", "duplicates", "quarantined", "pending", "held", "forwarding",
                 "accepted", "dead", "redeliveries")),
             "alerts: " + (", ".join(f"{k} {n}" for k, n in sorted(c["alerts_by_kind"].items())) or "none")]
    lines.append(f"{'cart':<20} {'site':<10} {'upto':>8} {'max':>8} {'stored':>8} {'ok':>8} {'pending':>8}"
                 f" {'broken':>7} {'online':>7} last seen")
    for cart, e in sorted(summary["carts"].items()):
        online = "-" if e["online"] is None else "yes" if e["online"] else "no"
        lines.append(f"{cart:<20} {e['site'] or '-':<10} {e['upto_seq']:>8} {e['max_seq']:>8} {e['stored']:>8}"
                     f" {e['chain_ok']:>8} {e['chain_pending']:>8} {e['chain_broken']:>7} {online:>7}"
                     f" {_when(e['last_seen'])}")
    if alerts:
        lines.append("alerts (newest first):")
        lines += [f"  #{a['id']} {_when(a['raised_at'])} {a['kind']} cart={a['cart'] or '-'} {a['subject']}:"
                  f" {a['detail']}{' (acknowledged)' if a['acknowledged_at'] else ''}" for a in summary["alerts"]]
    if dead:
        lines.append("dead letters (newest first):")
        lines += [f"  {d['id']} cart={d['cart']} seq={d['seq']} attempts={d['attempts']}: {d['reason']}"
                  for d in summary["dead"]]
    if quarantine:
        lines.append("quarantine (newest first):")
        lines += [f"  #{q['id']} {_when(q['received_at'])} {q['kind'] or '-'} {q['topic']} ({q['size']} bytes):"
                  f" {q['reason']}" for q in summary["quarantine"]]
    return lines
