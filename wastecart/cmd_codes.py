"""``wastecart qr make``: print one of our QR payloads (for label printing, tests, site set-up)."""

from __future__ import annotations

import argparse
from pathlib import Path

from wastecart.cli import Cli
from wastecart.errors import WastecartError


def register(cli: Cli) -> None:
    p = cli.command("qr", "make", make, "print the payload of one of our QR codes (badge, department, bag, …)")
    p.add_argument("--kind", required=True, choices=list("SDBRV"),
                   help="S staff badge, D department, B bag / container, R storage room, V vehicle")
    p.add_argument("--org", required=True, help="organisation code, e.g. H330100001")
    p.add_argument("--ident", required=True, help="the code's number, 1-32 of A-Z 0-9 - (e.g. B00010203)")
    p.add_argument("--category", help="bags only: category letter (I S P D C) or name (INFECTIOUS, …)")
    p.add_argument("--mac-key-file", type=Path,
                   help="the organisation's MAC key (hex or raw, >= 16 bytes): the code is signed (WS1)")


def make(args: argparse.Namespace) -> int:
    from edge import catalogue, codes

    letter = ""
    if args.category is not None:
        if args.kind != "B":
            raise WastecartError("--category is only for bags (--kind B)")
        try:
            letter = catalogue.CATEGORY[codes.category_name(args.category)].letter
        except ValueError as exc:
            raise WastecartError(f"--category: {exc}") from exc
    elif args.kind == "B":
        raise WastecartError("a bag label needs --category (I S P D C)")
    key = codes.load_mac_key(args.mac_key_file) if args.mac_key_file else None
    print(codes.encode(codes.Code(args.kind, args.org, args.ident, letter), key))
    return 0
