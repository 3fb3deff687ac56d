"""``wastecart scan``, ``label render`` and ``sim camera``: QR codes in and out."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from wastecart.cli import Cli
from wastecart.errors import WastecartError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def register(cli: Cli) -> None:
    p = cli.command("", "scan", scan, "decode the QR codes in image file(s) or a folder of images")
    p.add_argument("--image", type=Path, nargs="+", required=True, help="image files and/or folders")
    p.add_argument("--json", action="store_true", help='one JSON line per image: {"file","codes","ms"}')

    p = cli.command("label", "render", render, "render a QR label to a PNG file")
    p.add_argument("--payload", required=True, help="the text to encode, e.g. a bag code")
    p.add_argument("--out", type=Path, required=True, help="PNG file to write")



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

    from edge.scanner import Decoder, load_libraries

    load_libraries()  # not counted in the first image's ms
    decode = Decoder()  # the cart's pipeline and policy (edge/scanner.py), one per run like the camera's
    for path in _images(args.image):
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        found: list[str] = []
        line: dict[str, Any] = {"file": str(path), "codes": found, "ms": None}
        if gray is None:
            line["error"] = "not a readable image"
        else:
            t0 = time.perf_counter()  # decoding only, not reading the file (DESIGN §5)
            found += decode(gray)
            line["ms"] = round((time.perf_counter() - t0) * 1000, 3)
        print(json.dumps(line, ensure_ascii=False) if args.json else f"{path}: {', '.join(found) or '-'}")
    return 0


def render(args: argparse.Namespace) -> int:
    import qrcode

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, box_size=8, border=4)
    qr.add_data(args.payload)
    qr.make_image().save(str(args.out))
    print(f"label written to {args.out} (QR version {qr.version}, error correction Q)")
    return 0
