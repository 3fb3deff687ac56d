"""``wastecart gateway run`` and ``wastecart sim platform``: parse flags, start, wait for a signal, stop.

``--port`` of ``gateway run`` is accepted and kept in the config for the dashboard / metrics
server of a later issue; today nothing listens on it (the command says so).
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

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

    p = cli.command("sim", "platform", _sim_platform,
                    "simulated platform: POST/GET /records, GET/POST /control for faults")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, metavar="N", help="port (default: a free one)")
    p.add_argument("--error-rate", type=float, default=0.0, metavar="X",
                   help="share of POST /records answered 503, 0..1")
    p.add_argument("--latency-ms", type=int, default=0, metavar="N", help="delay before every answer")
    p.add_argument("--down", action="store_true", help="answer 503 to everything except /control")
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
                               latency_ms=args.latency_ms, down=args.down, seed=args.seed)
    except ValueError as exc:
        raise WastecartError(f"sim platform: {exc}") from exc
    stop = _stop_on_signals()
    platform.start()
    print(f"platform listening on {platform.url}", flush=True)
    try:
        stop.wait()
    finally:
        platform.stop()
    return 0
