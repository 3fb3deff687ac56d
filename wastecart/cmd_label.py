"""``wastecart label render`` and ``wastecart label print``: a waste label as PNG, as printer bytes, or printed.

Both take the same label options: ``--kind medical`` (default; HJ 421 / Decree 36 content) or
``--kind industrial`` (HJ 1276).  The QR holds ``--payload`` as given, or a bag code built from
``--org``, ``--bag`` and ``--category``.  A medical label's 备注 is the Chinese words of its ``--note``
ids (``catalogue.LABEL_NOTES``, as the kiosk offers them) and any free ``--notes`` text, joined with
"；" as the workflow joins them; chemical waste needs ``--main-components``.  Heavy imports (Pillow,
qrcode, pyserial) happen in the handlers.
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from wastecart.errors import WastecartError

if TYPE_CHECKING:
    from edge.devices.printer import PrinterSettings
    from edge.labels import Label
    from wastecart.cli import Cli

LANGUAGES = ("tspl", "zpl", "escpos")  # edge.devices.printer.LANGUAGES, repeated so --help needs no import
# catalogue.LABEL_NOTES ids and labels.MAIN_COMPONENTS_MAX, repeated for --help (a test checks they agree)
NOTE_IDS = ("MIXED_DRUGS", "DOUBLE_BAG", "DISINFECTED")
COMPONENTS_MAX = 40
INDUSTRIAL_REQUIRED = ("waste_name", "hw_class", "waste_code", "uscc")


def register(cli: Cli) -> None:
    r = cli.command("label", "render", _render,
                    "draw a waste label to PNG, or write it as printer bytes with --language")
    _label_options(r)
    r.add_argument("--out", type=Path, required=True, help="FILE.png, or FILE.prn with --language")
    r.add_argument("--language", choices=LANGUAGES, help="write this printer language instead of a PNG")
    r.add_argument("--cjk", choices=("font", "bitmap"),
                   help="Chinese text with --language: the printer's font or a bitmap (default: the language's)")
    r.add_argument("--dpi", type=int, choices=(203, 300), default=203, help="dots per inch (default 203)")

    p = cli.command("label", "print", _print, "print a waste label on a printer (tcp://, usblp://, serial://)")
    _label_options(p)
    p.add_argument("--printer", metavar="URL", help="tcp://host:9100, usblp:///dev/usb/lp0, "
                   "serial:///dev/ttyUSB0?baud=9600 (default: printer.url of --config)")
    p.add_argument("--config", type=Path, help="take the printer settings from this cart config ([printer])")
    p.add_argument("--language", choices=LANGUAGES, help="printer language (default tspl, or the config's)")
    p.add_argument("--cjk", choices=("font", "bitmap"), help="Chinese text: printer font or bitmap "
                   "(default: tspl font, zpl bitmap, escpos font)")
    p.add_argument("--dpi", type=int, choices=(203, 300), help="the printer's resolution (default 203)")
    p.add_argument("--copies", type=int, default=1, help="labels to print (default 1)")
    p.add_argument("--no-status", action="store_true",
                   help="do not ask the printer's status first (for printers that never answer)")
    p.add_argument("--timeout", type=float, help="seconds the printer gets to answer the status query (default 1)")
    p.add_argument("--json", action="store_true", help='one JSON line: {"url","language","cjk","copies","bytes"}')


def _label_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("label content")
    g.add_argument("--kind", choices=("medical", "industrial"), default="medical",
                   help="medical waste (HJ 421 mark, default) or industrial hazardous waste (HJ 1276)")
    g.add_argument("--payload", help="the QR content and the code printed under it (a package code)")
    g.add_argument("--org", help="with --bag and --category: build the bag code WC1.B.<org>.<bag>.<letter>")
    g.add_argument("--bag", help="bag / container id for --org")
    g.add_argument("--category", help="INFECTIOUS, SHARPS, PATHOLOGICAL, PHARMACEUTICAL, CHEMICAL (or 感染性废物, I …)")
    g.add_argument("--org-name", default="", help="producing institution / unit (产生单位)")
    g.add_argument("--department", default="", help="department (科室), medical")
    g.add_argument("--weight-g", type=int, help="net weight in grams")
    g.add_argument("--note", action="append", default=[], metavar="ID",
                   help=f"备注 of a medical label, repeatable: {', '.join(NOTE_IDS)} (printed in Chinese; "
                        "each only on the categories it applies to)")
    g.add_argument("--notes", default="", help="further 备注 text, after the --note words (medical)")
    g.add_argument("--main-components", default="",
                   help=f"主要成分: required for CHEMICAL medical waste, at most {COMPONENTS_MAX} characters "
                        "on a medical label; also on HJ 1276 labels")
    g.add_argument("--produced-at",
                   help="production date-time, ISO, e.g. 2026-12-07T21:40+08:00: an offset is printed "
                        "(default: now, with this host's offset); industrial uses the date")
    h = p.add_argument_group("HJ 1276 fields (--kind industrial)")
    h.add_argument("--waste-name", help="废物名称 (required)")
    h.add_argument("--hw-class", help="废物类别, e.g. HW08 (required)")
    h.add_argument("--waste-code", help="废物代码, e.g. 900-249-08 (required)")
    h.add_argument("--uscc", help="producing unit's unified social credit code, 18 characters (required)")
    h.add_argument("--hazards", default="T", help="危险特性, comma-separated of T,C,I,R,In (default T)")
    h.add_argument("--form", default="", help="废物形态: 固态 / 半固态 / 液态 / 气态")
    h.add_argument("--harmful-components", default="", help="有害成分")
    h.add_argument("--precautions", default="", help="注意事项")
    h.add_argument("--contact", default="", help="联系人")
    h.add_argument("--phone", default="", help="联系方式")
    h.add_argument("--seq", type=int, default=1, help="the waste's sequence number that day (digital code, 1-999)")
    h.add_argument("--remarks", default="", help="备注")
    p.add_argument("--size", metavar="WxH", help="label size in mm (default 100x70 medical, 100x100 industrial)")


def _size(args: argparse.Namespace) -> tuple[float, float] | None:
    if not args.size:
        return None
    try:
        w, h = (float(v) for v in args.size.lower().split("x"))
    except ValueError as exc:
        raise WastecartError(f"--size {args.size!r}: expected WxH in mm, e.g. 100x70") from exc
    return w, h


def _when(args: argparse.Namespace) -> datetime:
    if not args.produced_at:
        return datetime.now().astimezone()
    try:
        return datetime.fromisoformat(args.produced_at)
    except ValueError as exc:
        raise WastecartError(f"--produced-at {args.produced_at!r}: not an ISO date-time (like 2025-01-02T10:30)") \
            from exc


def _payload(args: argparse.Namespace) -> str:
    from edge import catalogue, codes
    from edge.labels import parse_category

    if args.payload:
        return str(args.payload)
    if not (args.org and args.bag and args.category):
        raise WastecartError("give --payload TEXT, or --org, --bag and --category to build a bag code")
    letter = catalogue.CATEGORY[parse_category(args.category)].letter
    return codes.encode(codes.Code("B", args.org, args.bag, letter))


def _notes(args: argparse.Namespace, category: str | None) -> str:
    """The 备注 line: the ``--note`` ids' Chinese words, then ``--notes``, joined as the workflow joins them."""
    from edge import catalogue

    words: list[str] = []
    for note_id in args.note:
        note = catalogue.LABEL_NOTE.get(note_id.strip().upper())
        if note is None:
            raise WastecartError(f"--note {note_id!r}: one of {', '.join(catalogue.LABEL_NOTE)}")
        if note.zh in words:
            raise WastecartError(f"--note {note.id}: given twice")
        if note.categories and category not in note.categories:
            raise WastecartError(f"--note {note.id}: only for {', '.join(note.categories)} waste, "
                                 f"not {category or 'a label without --category'}")
        words.append(note.zh)
    if args.notes.strip():
        words.append(args.notes.strip())
    return "；".join(words)


def _medical(args: argparse.Namespace, payload: str, when: datetime) -> Label:
    from edge.errors import LabelError
    from edge.labels import MedicalLabel

    try:
        bare = MedicalLabel(payload, category=args.category, main_components=args.main_components)
    except LabelError as exc:
        if exc.key in ("label.no_main_components", "label.main_components_too_long"):
            raise WastecartError(f"--main-components: {exc}") from exc
        raise
    return MedicalLabel(payload, org_name=args.org_name, department=args.department, category=bare.category,
                        weight_g=args.weight_g, produced_at=when, notes=_notes(args, bare.category),
                        main_components=args.main_components)


def build_label(args: argparse.Namespace) -> Label:
    """The label the options describe; missing or bad fields are one clear error."""
    from edge.labels import HazardousLabel

    payload = _payload(args)
    when = _when(args)
    if args.kind == "medical":
        return _medical(args, payload, when)
    if args.note:
        raise WastecartError("--note: for medical labels; an HJ 1276 label takes --remarks")
    missing = [f"--{name.replace('_', '-')}" for name in INDUSTRIAL_REQUIRED if not getattr(args, name)]
    if missing:
        raise WastecartError(f"--kind industrial needs {', '.join(missing)} (HJ 1276 label fields)")
    produced_on: date = when.date()
    return HazardousLabel(
        payload, waste_name=args.waste_name, hw_class=args.hw_class, waste_code=args.waste_code, uscc=args.uscc,
        produced_on=produced_on, hazards=tuple(h.strip() for h in args.hazards.split(",") if h.strip()),
        form=args.form, main_components=args.main_components, harmful_components=args.harmful_components,
        precautions=args.precautions, org_name=args.org_name, contact=args.contact, phone=args.phone,
        weight_g=args.weight_g, seq=args.seq, remarks=args.remarks or args.notes)


def _render(args: argparse.Namespace) -> int:
    from edge import labels
    from edge.devices import printer

    lay = labels.layout(build_label(args), args.dpi, _size(args))
    if args.language is None:
        if args.cjk:
            raise WastecartError("--cjk applies to printer bytes: give --language too")
        labels.render_png(lay, args.out)
        print(f"{args.out}: {args.kind} label, {lay.width}×{lay.height} dots at {lay.dpi} dpi")
        return 0
    data = printer.encode(lay, args.language, args.cjk)
    try:
        args.out.write_bytes(data)
    except OSError as exc:
        raise WastecartError(f"{args.out}: cannot write ({exc.strerror})") from exc
    print(f"{args.out}: {args.kind} label in {args.language} (cjk={printer.cjk_mode(args.language, args.cjk)}), "
          f"{len(data)} bytes")
    return 0


def _print(args: argparse.Namespace) -> int:
    from edge.devices.printer import Printer

    device = Printer(_printer_settings(args))
    label = build_label(args)
    size = _size(args)
    if size is not None:
        device.sizes_mm[type(label)] = size
    result = device.print_label(label, args.copies)
    if args.json:
        print(json.dumps({"url": result.url, "language": result.language, "cjk": result.cjk,
                          "copies": result.copies, "bytes": result.bytes}, ensure_ascii=False))
    else:
        print(result)
    return 0


# PrinterSettings field -> the flag that sets it, to name the flag in an error
FLAGS = {"url": "--printer", "language": "--language", "cjk": "--cjk", "dpi": "--dpi", "timeout_s": "--timeout"}


def _printer_settings(args: argparse.Namespace) -> PrinterSettings:
    """The ``[printer]`` settings of ``--config`` with the flags on top, or the flags alone."""
    from pydantic import ValidationError

    from edge.devices.printer import PrinterSettings

    flags = {"url": args.printer, "language": args.language, "cjk": args.cjk, "dpi": args.dpi,
             "timeout_s": args.timeout, "status": False if args.no_status else None}
    if args.config is not None:
        from edge.config import EdgeConfig
        from wastecart import config

        return config.load(EdgeConfig, args.config, {f"printer.{k}": v for k, v in flags.items()}).printer
    if args.printer is None:
        raise WastecartError("give --printer URL (or --config with a [printer] url)")
    try:
        return PrinterSettings.model_validate({k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        raise WastecartError("; ".join(f"{FLAGS.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}"
                                       for e in exc.errors())) from exc

