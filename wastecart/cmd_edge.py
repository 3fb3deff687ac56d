"""``wastecart edge run | ledger | keygen``: the cart agent and its ledger."""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path
from typing import Any, TextIO

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
    p.add_argument("--gateway-key", action="append", metavar="B64",
                   help="override uplink.gateway_keys: a gateway's public key (`wastecart gateway keygen` "
                        "prints it); repeat for several")
    add_tls_flags(p, "uplink.tls")

    p = cli.command("edge", "ledger", ledger, "list or export the records on a cart (id, seq, type, synced)")
    p.add_argument("--data", type=Path, required=True, help="the cart's data folder")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON object per record, one per line")
    form.add_argument("--csv", action="store_true", help="CSV with a header line, one line per record")
    p.add_argument("--full", action="store_true",
                   help="with --json or --csv: also when it was acknowledged and the whole signed record")
    p.add_argument("--out", type=Path,
                   help="write to this file instead of stdout (a --csv file starts with a UTF-8 BOM, so "
                        "spreadsheet programs show the Chinese)")

    p = cli.command("edge", "hash-pin", hash_pin, "hash a person's PIN for [workflow.pins] (reads the PIN from stdin); "
                    "the person must be in [roster.people], whose roles decide what the PIN signs")
    p.add_argument("--person", required=True, help="the person id in [roster.people] (as on the badge)")

    p = cli.command("edge", "keygen", keygen, "create the cart's Ed25519 key (once) and print its public key")
    p.add_argument("--data", type=Path, required=True, help="the cart's data folder")
    p.add_argument("--cart", help="also write <data>/<CART>.pub for the gateway's cart_keys_dir")


def add_tls_flags(p: argparse.ArgumentParser, section: str) -> None:
    """``--tls-ca/--tls-cert/--tls-key/--tls-no-hostname-check``: override ``[section]`` of the config
    (``edge run``: uplink.tls, ``gateway run``: tls).  The files come from ``wastecart pki``."""
    p.add_argument("--tls-ca", type=Path, metavar="FILE", help=f"override {section}.ca: the site CA (PKI ca.crt)")
    p.add_argument("--tls-cert", type=Path, metavar="FILE",
                   help=f"override {section}.cert: this client's certificate (clients/ID/client.crt)")
    p.add_argument("--tls-key", type=Path, metavar="FILE",
                   help=f"override {section}.key: its private key (clients/ID/client.key, mode 0600)")
    p.add_argument("--tls-no-hostname-check", action="store_true",
                   help=f"{section}.check_hostname = false: accept a broker certificate that does not name the "
                        "host in the broker URL")


def tls_overrides(args: argparse.Namespace, section: str) -> dict[str, Any]:
    """The TLS flags as dotted overrides (None: not given, the file's value stays)."""
    return {f"{section}.ca": _text(args.tls_ca), f"{section}.cert": _text(args.tls_cert),
            f"{section}.key": _text(args.tls_key),
            f"{section}.check_hostname": False if args.tls_no_hostname_check else None}


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def run(args: argparse.Namespace) -> int:
    from edge.app import EdgeApp
    from edge.config import EdgeConfig
    from wastecart import config
    from wastecart.cmd_demo import wait_for_signal

    cfg = config.load(EdgeConfig, args.config, {
        "broker": args.broker, "data": str(args.data) if args.data else None, "org": args.org,
        "cart": args.cart, "scale.port": args.scale_port, "camera.url": args.camera,
        "printer.url": args.printer, "kiosk.port": args.port, "uplink.gateway_keys": args.gateway_key,
        **tls_overrides(args, "uplink.tls")})
    app = EdgeApp(cfg)
    app.start()
    print(f"cart {cfg.cart} ({cfg.org}) running: ledger {app.ledger.path}, broker {cfg.broker}, "
          f"scale {cfg.scale.port or 'none'}, camera {cfg.camera.url or 'none'}, "
          f"printer {cfg.printer.url or 'none'}, roster {cfg.roster.version} ({cfg.roster.org_name}, "
          f"{len(cfg.roster.people)} people)", flush=True)
    if app.kiosk is not None:
        print(f"kiosk {app.kiosk.url}", flush=True)
    try:
        wait_for_signal()
    finally:
        app.stop()
    return 0


def ledger(args: argparse.Namespace) -> int:
    """Reads through a read-only connection (``edge.ledger.export``): safe while the cart runs."""
    import sys

    from edge.ledger import export
    from wastecart.errors import WastecartError

    rows = export.listing(args.data, full=args.full)
    if args.out is None:
        _ledger_out(args, rows, sys.stdout)
        return 0
    # utf-8-sig: Excel, what a hospital office opens a CSV with, reads UTF-8 only after a BOM.
    encoding = "utf-8-sig" if args.csv else "utf-8"
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    try:
        with tmp.open("w", encoding=encoding, newline="") as f:
            _ledger_out(args, rows, f)
        tmp.replace(args.out)  # a reader never sees half a file
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise WastecartError(f"{args.out}: cannot write ({exc.strerror or exc})") from exc
    log.info("%d records written to %s", len(rows), args.out)
    return 0


def _ledger_out(args: argparse.Namespace, rows: list[dict[str, Any]], out: TextIO) -> None:
    from edge.ledger import export

    if args.csv:
        export.write_csv(rows, out, full=args.full)
    elif args.json:
        export.write_json_lines(rows, out)
    else:
        for row in rows:
            state = f"REJECTED {row['rejected']}" if row["rejected"] else "synced" if row["synced"] else "UNSENT"
            out.write(f"{row['seq']:>7}  {row['id']}  {row['type']:<10} {row['created_at']}  {state}\n")


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
