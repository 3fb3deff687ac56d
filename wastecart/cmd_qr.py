"""``wastecart scan``: decode QR codes in image files with the cart's pipeline."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from edge.codes import CodeBook
from edge.errors import CodeError
from wastecart.cli import Cli
from wastecart.errors import WastecartError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def register(cli: Cli) -> None:
    p = cli.command("", "scan", scan, "decode the QR codes in image file(s) or a folder of images")
    p.add_argument("--image", type=Path, nargs="+", required=True, help="image files and/or folders")
    p.add_argument("--json", action="store_true",
                   help='one JSON line per image: {"file","codes","ms","checked"}; checked[i] is '
                        '{"kind","org","ident","category","source"} or {"error": reason} for codes[i]')
    p.add_argument("--config", type=Path, help="the cart's config: judge codes by its org and [codes] section "
                                               "(key, require_mac, external formats); default: our format only")


def verdict(book: CodeBook, text: str) -> dict[str, Any]:
    """What the cart would make of ``text``: the code's fields, or the reason it refuses it."""
    try:
        c = book.decode(text)
    except CodeError as exc:
        return {"error": str(exc)}
    return {"kind": c.kind, "org": c.org, "ident": c.ident, "category": c.category, "source": c.source}


def _images(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.exists():
            out.append(p)
        else:
            raise WastecartError(f"{p}: no such file or folder")
    return out


def scan(args: argparse.Namespace) -> int:
    import cv2

    from edge.devices.scanner import Decoder, load_libraries

    book = CodeBook()
    if args.config:
        from edge.config import EdgeConfig
        from wastecart.config import load

        cfg = load(EdgeConfig, args.config)
        book = cfg.codes.book(cfg.org)
    images = _images(args.image)
    load_libraries()  # not counted in the first image's ms
    decode = Decoder()  # the cart's pipeline and policy (edge/devices/scanner.py), one per run like the camera's
    for path in images:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        found: list[str] = []
        line: dict[str, Any] = {"file": str(path), "codes": found, "ms": None}
        if gray is None:
            line["error"] = "not a readable image"
        else:
            t0 = time.perf_counter()  # decoding only, not reading the file (DESIGN §5)
            found += decode(gray)
            line["ms"] = round((time.perf_counter() - t0) * 1000, 3)
        checked = line["checked"] = [verdict(book, text) for text in found]
        if args.json:
            print(json.dumps(line, ensure_ascii=False))
        else:
            shown = [f"{t} [{v.get('error') or ' '.join(str(v[k]) for k in ('kind', 'org', 'ident', 'source'))}]"
                     for t, v in zip(found, checked, strict=True)]
            print(f"{path}: {', '.join(shown) or '-'}")
    return 0
