"""``wastecart demo``: the whole chain on simulated devices (see ``wastecart.demo``)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from wastecart.cli import Cli


def register(cli: Cli) -> None:
    p = cli.command("", "demo", run, "run the whole chain (broker, platform, gateway, scale, camera, cart) "
                    "on simulated devices with embedded defaults")
    p.add_argument("--rounds", type=int, default=3,
                   help="handover rounds to script (default 3); from 2 on, the last round also checks the bags "
                        "into storage (one reported lost: an incident) and hands them to the transporter")
    p.add_argument("--exit", action="store_true", help="exit after the rounds instead of staying up")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.add_argument("--data", type=Path, help="keep the SQLite files here (default: a temporary folder)")
    p.add_argument("--broker", help="use this broker (mqtt://host:port) instead of a private mosquitto")
    p.add_argument("--port", type=int, default=8088,
                   help="port of the kiosk page (default %(default)s; a free one if that is taken; 0 = free)")
    p.add_argument("--secure", action="store_true",
                   help="the deployed broker configuration: a site PKI in DATA/pki, mosquitto with TLS, client "
                        "certificates, a per-client ACL and a CRL; the cart and the gateway each with its certificate")
    p.add_argument("--console-port", type=int, default=8090, metavar="N",
                   help="port of the operator console (default %(default)s; a free one if that is taken; 0 = free)")
    p.add_argument("--carts", type=int, default=0, metavar="N",
                   help="also run N simulated carts (the real ledger and uplink, as `sim fleet`), online and "
                        "reporting, so the console's fleet page is not empty (default 0)")
    p.add_argument("--pace", type=float, default=0.0,
                   help="seconds to pause after each scripted step, to follow it on the kiosk (default 0)")


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (the main thread owns signals)."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def run(args: argparse.Namespace) -> int:
    from wastecart import demo

    if args.rounds < 1:
        raise demo.DemoError("--rounds must be at least 1")
    if not 0 <= args.carts <= demo.MAX_FLEET:
        raise demo.DemoError(f"--carts must be 0..{demo.MAX_FLEET}")
    if not args.verbose:  # the demo prints its own progress; library chatter only with -v
        logging.getLogger().setLevel(logging.WARNING)

    def emit(summary: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps(summary), flush=True)
        else:
            print("summary:", ", ".join(f"{k}={v}" for k, v in summary.items()), flush=True)

    out = sys.stderr if args.json else sys.stdout
    summary = demo.run(args.rounds, out=out, emit=emit, data=args.data, broker=args.broker,
                       keep_running=None if args.exit else wait_for_signal, kiosk_port=args.port,
                       pace=args.pace, secure=args.secure, carts=args.carts,
                       console_port=args.console_port)
    ok = summary["committed"] == summary["stored_at_gateway"] == summary["accepted_by_platform"]
    return 0 if ok and summary["duplicates_at_platform"] == 0 else 1
