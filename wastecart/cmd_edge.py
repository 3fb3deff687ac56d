"""``wastecart edge run | ledger | keygen``: the cart agent and its ledger."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from wastecart.cli import Cli

log = logging.getLogger("wastecart.edge")


def register(cli: Cli) -> None:
    p = cli.command("edge", "run", run, "run the cart agent (scale, camera, workflow, ledger, uplink)")
    p.add_argument("--config", type=Path, help="TOML config (see deploy/edge.example.toml)")
    p.add_argument("--broker", help="override broker, e.g. mqtt://127.0.0.1:1883")
    p.add_argument("--data", type=Path, help="override data folder (ledger, key)")
    p.add_argument("--org", help="override organisation code")
    p.add_argument("--cart", help="override this cart's id")
    p.add_argument("--scale-port", help="override scale.port (serial URL or device path)")
    p.add_argument("--camera", help="override camera.url, e.g. file:///tmp/frames/")
    p.add_argument("--printer", help="override printer.url, e.g. tcp://192.168.1.50:9100")
    p.add_argument("--port", type=int, help="override kiosk.port (the kiosk page; 0 = a free port)")

    p = cli.command("edge", "ledger", ledger, "list the records on a cart (id, seq, type, synced)")
    p.add_argument("--data", type=Path, required=True, help="the cart's data folder")
    p.add_argument("--json", action="store_true", help="one JSON object per record, one per line")
    p.add_argument("--full", action="store_true", help="with --json: include the whole signed record")

    p = cli.command("edge", "hash-pin", hash_pin, "hash a nurse's PIN for [workflow.pins] (reads the PIN from stdin)")
    p.add_argument("--person", required=True, help="the nurse's person id (as on the badge)")

    p = cli.command("edge", "keygen", keygen, "create the cart's Ed25519 key (once) and print its public key")
    p.add_argument("--data", type=Path, required=True, help="the cart's data folder")
    p.add_argument("--cart", help="also write <data>/<CART>.pub for the gateway's cart_keys_dir")


def run(args: argparse.Namespace) -> int:
    from edge.app import EdgeApp
    from edge.config import EdgeConfig
    from wastecart import config
    from wastecart.cmd_demo import wait_for_signal

    cfg = config.load(EdgeConfig, args.config, {
        "broker": args.broker, "data": str(args.data) if args.data else None, "org": args.org,
        "cart": args.cart, "scale.port": args.scale_port, "camera.url": args.camera,
        "printer.url": args.printer, "kiosk.port": args.port})
    app = EdgeApp(cfg)
    app.start()
    print(f"cart {cfg.cart} ({cfg.org}) running: ledger {app.ledger.path}, broker {cfg.broker}, "
          f"scale {cfg.scale.port or 'none'}, camera {cfg.camera.url or 'none'}, "
          f"printer {cfg.printer.url or 'none'}", flush=True)
    if app.kiosk is not None:
        print(f"kiosk {app.kiosk.url}", flush=True)
    try:
        wait_for_signal()
    finally:
        app.stop()
    return 0


def ledger(args: argparse.Namespace) -> int:
    from edge.store import read_ledger

    rows = read_ledger(args.data)
    for row in rows:
        if args.json:
            keep = row if args.full else {k: row[k] for k in ("id", "seq", "type", "created_at", "synced")}
            print(json.dumps(keep, ensure_ascii=False))
        else:
            print(f"{row['seq']:>7}  {row['id']}  {row['type']:<10} {row['created_at']}  "
                  f"{'synced' if row['synced'] else 'UNSENT'}")
    return 0


def keygen(args: argparse.Namespace) -> int:
    from edge import keys, wire

    existed = (args.data / keys.KEY_FILE).exists()
    pub = wire.public_key_text(keys.load_or_create(args.data).public_key())
    if args.cart:
        (args.data / f"{wire.check_id(args.cart, 'cart id')}.pub").write_text(pub + "\n")
    print(pub)
    log.info("%s key in %s", "existing" if existed else "new", args.data / keys.KEY_FILE)
    return 0


def hash_pin(args: argparse.Namespace) -> int:
    """Reads the PIN from stdin (not argv: it would sit in the shell history and ps)."""
    import getpass
    import sys

    from edge import pins, wire
    from wastecart.errors import WastecartError

    pin = (getpass.getpass("PIN: ") if sys.stdin.isatty() else sys.stdin.readline()).strip()
    try:
        person = wire.check_id(args.person, "person id")
        hashed = pins.hash_pin(pin)
    except (ValueError, wire.ContractError) as exc:
        raise WastecartError(str(exc)) from exc
    print(f'"{person}" = "{hashed}"   # under [workflow.pins]')
    return 0
