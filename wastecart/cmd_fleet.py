"""``wastecart sim fleet``: many carts (real ledger + uplink, no hardware) for load and fault tests."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from wastecart.cli import Cli
from wastecart.errors import WastecartError


def register(cli: Cli) -> None:
    p = cli.command("sim", "fleet", fleet, "run N simulated carts through the real cart ledger and uplink; "
                    "exits 0 once all N×M records are committed and acknowledged by the gateway")
    p.add_argument("--broker", required=True, help="mqtt://host:port")
    p.add_argument("--data", type=Path, required=True,
                   help="one folder per cart under it (DIR/<cart>/); public keys in DIR/keys/ for the gateway")
    p.add_argument("--carts", type=int, default=3, help="number of carts (default 3)")
    p.add_argument("--records", type=int, default=100, help="records per cart (default 100)")
    p.add_argument("--rate", type=float, default=0.0, help="records/s for the whole fleet (0 = as fast as possible)")
    p.add_argument("--org", default="H330100001", help="organisation code (the MQTT site level)")
    p.add_argument("--window", type=int, help="QoS 1 messages in flight per cart (default: the cart's)")
    p.add_argument("--max-unacked", type=int, help="records awaiting the gateway's ack per cart (default: the cart's)")
    p.add_argument("--resend-after", type=float, default=5.0,
                   help="seconds without ack progress before re-sending (default 5)")
    p.add_argument("--drain-rate", type=float,
                   help="records/s per cart when draining a backlog (0 = unpaced; default: the cart's)")
    p.add_argument("--min-free-mb", type=int, default=0, help="refuse new records below this much free disk")
    p.add_argument("--gateway-key", action="append", metavar="B64", required=True,
                   help="a gateway's public key (`wastecart gateway keygen` prints it): the carts believe only "
                        "acks and commands it signed; repeat for several")
    p.add_argument("--pki", type=Path, metavar="DIR",
                   help="TLS with client certificates from this `wastecart pki` folder: every cart uses DIR/ca.crt "
                        "and DIR/clients/<its id>/client.crt|key (issue FLEET-001, FLEET-002, … with --role cart); "
                        "the broker URL must be mqtts://")
    p.add_argument("--tls-no-hostname-check", action="store_true",
                   help="with --pki: accept a broker certificate that does not name the host in the broker URL")
    p.add_argument("--json", action="store_true", help="print the final summary as JSON")


def fleet(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from edge.ledger.settings import UplinkSettings
    from wastecart.fleet import Fleet, progress_stream

    if args.carts < 1 or args.records < 0 or not 1 <= args.carts <= 999:
        raise WastecartError("--carts must be 1..999 and --records >= 0")
    given = {"window": args.window, "max_unacked": args.max_unacked, "drain_rate": args.drain_rate,
             "resend_after_s": args.resend_after, "gateway_keys": args.gateway_key}
    try:
        settings = UplinkSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:  # the cart's own bounds: --window 0 is refused, not clamped
        raise WastecartError("; ".join(f"--{_flag(str(e['loc'][0]))}: {e['msg']}" for e in exc.errors())) from exc
    if args.tls_no_hostname_check and args.pki is None:
        raise WastecartError("--tls-no-hostname-check needs --pki DIR")
    f = Fleet(broker=args.broker, data=args.data, carts=args.carts, records=args.records, rate=args.rate,
              org=args.org, settings=settings, min_free_mb=args.min_free_mb, pki=args.pki,
              check_hostname=not args.tls_no_hostname_check)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: f.stop.set())
    print(f"fleet: {args.carts} carts x {args.records} records, data {args.data}, "
          f"gateway keys {f.keys_dir}", flush=True)
    t0 = time.monotonic()
    try:
        done = f.run(progress_stream())
        summary = {"carts": args.carts, "records": args.records, "committed": f.committed(),
                   "synced": f.synced(), "rejected": f.rejected(), "disk_full_refusals": f.disk_full,
                   "seconds": round(time.monotonic() - t0, 2), "done": done}
    finally:
        f.close()
    if progress_stream():
        sys.stderr.write("\n")
    print(json.dumps(summary) if args.json else "fleet " + ("done" if done else "stopped") + ": "
          + ", ".join(f"{k}={v}" for k, v in summary.items()), flush=True)
    return 0 if done and summary["rejected"] == 0 else 1


def _flag(field: str) -> str:
    """The flag that set an UplinkSettings field: ``resend_after_s`` -> ``resend-after``."""
    return "gateway-key" if field == "gateway_keys" else field.removesuffix("_s").replace("_", "-")
