"""``wastecart gateway export`` and ``wastecart verify`` (issue 15): the ledger out of the gateway, and an
inspector's offline check of a jsonl export.

``gateway export`` reads ``DATA/gateway.sqlite`` read-only (``mode=ro``), so it runs beside a running
gateway; days are the ledger zone's (the one the gateway's index was built in).  ``verify`` needs
only the file: exit 0 when every record is proven, 1 when anything failed, 2 when the file (or a
flag) cannot be used at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from wastecart.cli import Cli
from wastecart.errors import WastecartError

if TYPE_CHECKING:
    from gateway.ingest import KeyRing


def register(cli: Cli) -> None:
    p = cli.command("gateway", "export", _gateway_export,
                    "the ledger (台账) to XLSX or CSV, or its signed records to jsonl for `wastecart verify` "
                    "(read-only, safe while the gateway runs)")
    p.add_argument("--data", type=Path, metavar="DIR", required=True, help="folder of gateway.sqlite")
    p.add_argument("--format", required=True, metavar="FMT", dest="fmt",
                   help="xlsx (台账, 汇总, 说明 sheets), csv (台账 only, UTF-8 with BOM) or jsonl (signed envelopes "
                        "and the carts' public keys)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="file to write (replaced if present)")
    p.add_argument("--from", dest="first", metavar="YYYY-MM-DD", help="first day, in the ledger's time zone")
    p.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="last day (included)")
    p.add_argument("--cart", metavar="C", help="one cart's records only")
    p.add_argument("--department", metavar="D", help="one department's bags (not with jsonl)")
    p.add_argument("--category", metavar="X", help="one waste category, e.g. INFECTIOUS (not with jsonl)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="the gateway's TOML config: its cart_keys and cart_keys_dir for the jsonl's public keys")
    p.add_argument("--cart-keys-dir", type=Path, metavar="DIR",
                   help="folder of <CART>.pub files for the jsonl's public keys (overrides the config's)")

    p = cli.command("", "verify", _verify,
                    "check a jsonl ledger export offline: every hash, signature and chain link; prints what it "
                    "proved (exit 0), what failed (1), or why the file is unusable (2)")
    p.add_argument("file", type=Path, metavar="FILE", help="the export (wastecart gateway export --format jsonl)")
    p.add_argument("--keys", type=Path, metavar="DIR",
                   help="folder of trusted <CART>.pub keys, used instead of the keys the file carries")
    p.add_argument("--json", action="store_true", help="one JSON object (every failure) instead of text")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes checking signatures in a large file (default: one per CPU; 1: none)")


def _gateway_export(args: argparse.Namespace) -> int:
    from gateway.ledger.export import FORMATS, ExportError, export, open_readonly
    from gateway.ledger.search import LedgerFilter, ledger_zone

    if args.fmt not in FORMATS:
        raise WastecartError(f"--format: {args.fmt!r} is not one of {', '.join(FORMATS)}")
    out = args.out
    if out.is_dir() or not out.resolve().parent.is_dir():
        raise WastecartError(f"--out: {out} is a folder or in a folder that does not exist")
    keys = cart_key_ring(args) if args.fmt == "jsonl" else None
    db = open_readonly(args.data)
    try:
        tz = ledger_zone(db)
        params = {k: v for k, v in (("from", args.first), ("to", args.last), ("cart", args.cart),
                                    ("department", args.department), ("category", args.category)) if v}
        try:
            f = LedgerFilter.from_params(params, tz)
        except ValueError as exc:
            raise WastecartError(f"--{exc}") from exc
        what = "records" if args.fmt == "jsonl" else "rows"
        bar = _Bar(sys.stderr, what) if sys.stderr.isatty() else None
        try:
            done = export(db, f, args.fmt, out, tz, keys, bar.update if bar else None)
        except ExportError as exc:
            raise WastecartError(f"--{exc}") from exc
        except OSError as exc:
            raise WastecartError(f"--out: cannot write {out} ({exc.strerror or exc})") from exc
        if bar:
            bar.close()
    finally:
        db.close()
    print(f"exported {done.rows} {what} to {done.path} ({done.bytes:,} bytes) in {done.seconds:.1f} s", flush=True)
    return 0


def cart_key_ring(args: argparse.Namespace) -> KeyRing:
    """The gateway's cart keys from ``--config`` and ``--cart-keys-dir`` (the flag wins), for the commands
    that read a gateway's data beside it (``gateway export``, ``gateway release``)."""
    from gateway.config import GatewayConfig
    from gateway.ingest import KeyRing
    from wastecart.config import load

    keys_dir = args.cart_keys_dir
    cart_keys: dict[str, str] = {}
    if args.config is not None:
        config = load(GatewayConfig, args.config, {"data": str(args.data)})
        cart_keys, keys_dir = dict(config.cart_keys), keys_dir or config.cart_keys_dir
    if keys_dir is not None and not Path(keys_dir).is_dir():
        raise WastecartError(f"--cart-keys-dir: {keys_dir} is not a folder")
    return KeyRing(cart_keys, keys_dir)


class _Bar:
    """``[#####     ] 12,000/40,000 rows`` on a terminal, redrawn in place (as ``sim fleet``'s)."""

    WIDTH = 30

    def __init__(self, out: TextIO, unit: str) -> None:
        self.out = out
        self.unit = unit

    def update(self, done: int, total: int) -> None:
        bar = "#" * (self.WIDTH * done // max(total, 1))
        self.out.write(f"\r[{bar:<{self.WIDTH}}] {done:,}/{total:,} {self.unit}")
        self.out.flush()

    def close(self) -> None:
        self.out.write("\n")
        self.out.flush()


def _verify(args: argparse.Namespace) -> int:
    from gateway.ledger.verify import VerifyError, load_keys_dir, render, verify_file

    try:
        trusted = load_keys_dir(args.keys) if args.keys is not None else None
        if args.workers is not None and args.workers < 1:
            raise VerifyError(f"--workers: {args.workers} is not a number of processes (1 or more)")
        report = verify_file(args.file, trusted, keys_label=str(args.keys) if args.keys else "--keys",
                             workers=args.workers)
    except VerifyError as exc:
        print(f"wastecart: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        print(render(report), flush=True)
    return 0 if report.ok else 1
