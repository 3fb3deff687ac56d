"""``wastecart scale read`` and ``wastecart sim scale``: a serial scale and its simulator on a pty.

Heavy imports happen in the handlers.  ``edge.devices.scales`` is imported here only for its protocol registry;
it imports pyserial lazily, so ``wastecart --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from edge.devices.scales import PROTOCOLS
from sim_devices.scales import SIMS  # stdlib only: cheap, and the sim's --protocol choices

if TYPE_CHECKING:
    from edge.devices.scales import Reading
    from edge.devices.scales.detect import Detection
    from sim_devices.scales import VirtualScale
    from wastecart.cli import Cli

DEFAULT_TIMEOUT_S = 5.0  # s: no frame for this long ends `scale read`; Toledo streams ≈7-10 frames/s
SIM_SETTLE_S = 0.6  # s: how long a load typed into `sim scale` shows motion before it is stable


def register(cli: Cli) -> None:
    read = cli.command("scale", "read", _read, "read weights from a serial scale, one line per reading")
    read.add_argument("--port", required=True, help="serial URL (serial://, socket://, loop://) or device path")
    read.add_argument(
        "--protocol",
        default="auto",
        choices=["auto", *PROTOCOLS],
        help="indicator protocol; auto: listen at the usual bauds (then ask command-mode indicators with "
        "harmless requests only), report what was found and how sure, then read with the winner",
    )
    read.add_argument("--baud", type=int, help="line speed (default: the protocol's usual setting; "
                      "with auto: only try this one)")
    read.add_argument("--count", type=int, default=None, help="stop after N readings (default: run until ^C)")
    read.add_argument("--json", action="store_true", help="one JSON object per line")
    read.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds without any frame before giving up with exit 1 (default {DEFAULT_TIMEOUT_S:g})",
    )

    sim = cli.command("sim", "scale", _sim, "a virtual scale on a pty; type grams on stdin to load it")
    sim.add_argument("--protocol", default="toledo", choices=sorted(SIMS), help="protocol to speak")
    sim.add_argument("--link", default=None, help="also make this symlink to the pty (a stable device path)")
    sim.add_argument("--weight", type=int, default=0, help="initial load in grams (stable from the start)")
    sim.add_argument("--rate", type=float, default=10.0, help="frames per second (default 10)")
    sim.add_argument(
        "--no-checksum", action="store_true", help="17-byte frames without checksum (read: --protocol toledo-nochk)"
    )
    sim.add_argument("--script", type=argparse.FileType("r", encoding="utf-8"), default=None,
                     help="play this script (load/wait/unplug/garbage/corrupt/drift/overload/off/on …, "
                     "see sim_devices/scales/script.py); stdin still loads the scale")
    sim.add_argument("--line-baud", type=int, default=None,
                     help="the indicator's baud: a reader at another speed receives garbled bytes")
    sim.add_argument("--seven-e1", action="store_true", help="send 7E1 (bit 7 = even parity) as seen by 8N1")


def _emit(obj: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(obj, ensure_ascii=False) if as_json else _human(obj), flush=True)


def _human(obj: dict[str, Any]) -> str:
    if "error" in obj:
        return f"error: {obj['error']}"
    if obj["weight_g"] is None:
        return f"{'OVERLOAD' if obj['overload'] else 'UNDER ZERO'} ({obj['unit']})"
    motion = "stable" if obj["stable"] else "motion"
    return f"{obj['weight_g']:>9} g  {motion:<6} {'net' if obj['net'] else 'gross'}  (shown in {obj['unit']})"


def _error_line(reading: Reading) -> dict[str, Any]:
    return {"error": reading.error, "protocol": reading.protocol, "raw": reading.raw.decode("latin-1")}


def _read(args: argparse.Namespace) -> int:
    """Print readings until ``--count``; exit 1 when ``--timeout`` passes without a frame."""
    from edge.devices.scales import ScaleReader
    from edge.errors import ScaleError

    if not getattr(args, "verbose", False):  # our own lines report port errors; the log would repeat them
        logging.getLogger("edge.devices.scales").setLevel(logging.ERROR)
    protocol, baud = args.protocol, args.baud
    if protocol == "auto":
        detection = _detect(args)
        best = detection.best
        if best is None:
            _emit({"error": f"no known scale protocol recognised on {args.port}"}, args.json)
            return 1
        if detection.conflicting:  # e.g. the "=" formats: configured, never guessed (reference §4.3)
            _emit({"error": f"the frames fit {best.protocol} and {', '.join(detection.conflicting)}, which read "
                            "different weights from them: put a known mass on the scale and choose with "
                            "--protocol"}, args.json)
            return 1
        # Only the baud carries over: a 7E1 indicator is read with the protocol's own framing, whose
        # parser masks bit 7 (a continuous protocol) or which already says 7E1 (one we send commands to).
        protocol, baud = best.protocol, best.baud
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    reader = ScaleReader(
        args.port,
        protocol=protocol,
        baud=baud,
        on_reading=lambda r: events.put(("reading", r)),
        on_state=lambda s: events.put(("state", s)),
    )
    reader.start()
    readings, up, was_up = 0, False, False
    deadline = time.monotonic() + args.timeout  # moved on by every frame, not by reconnect attempts
    try:
        while args.count is None or readings < args.count:
            try:
                kind, item = events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                _emit({"error": f"no frame from {args.port} within {args.timeout:g} s"}, args.json)
                return 1
            if kind == "reading":
                deadline = time.monotonic() + args.timeout
                readings += item.error is None
                _emit(item.as_json() if item.error is None else _error_line(item), args.json)
            elif item == "connected":
                up = was_up = True
            elif item == "disconnected":
                if not was_up:  # the port never opened: a user error (path, permissions), say so once
                    failure = reader.last_failure
                    raise ScaleError(failure.key, **failure.params) if failure else ScaleError(
                        "scale.port_not_open", url=args.port)
                if up:  # report the loss once, not every failed reconnect
                    _emit({"error": f"disconnected: {reader.last_error}"}, args.json)
                up = False
    finally:
        reader.stop()
    return 0


def _detect(args: argparse.Namespace) -> Detection:
    """Run auto-detection; say what was found and how sure (stdout JSON line with --json, else stderr)."""
    from edge.devices.scales.detect import BAUDS, detect

    def step(text: str) -> None:
        if getattr(args, "verbose", False):
            print(f"auto: {text}", file=sys.stderr, flush=True)

    detection = detect(args.port, bauds=[args.baud] if args.baud else BAUDS, on_step=step)
    found = detection.as_json()
    if args.json:
        keys = ("detected", "confidence", "baud", "framing", "ambiguous_with", "conflicting")
        print(json.dumps({k: found[k] for k in keys}), flush=True)
    elif found["detected"] is not None:
        also = f"; cannot be told apart from {', '.join(found['ambiguous_with'])}" if found["ambiguous_with"] else ""
        print(f"detected {found['detected']} at {found['baud']} {found['framing']}, "
              f"confidence {found['confidence']:.2f}{also}", file=sys.stderr, flush=True)
    return detection


def _sim(args: argparse.Namespace) -> int:
    """Serve frames until SIGINT/SIGTERM; stdin lines load the scale (a person at a terminal)."""
    from sim_devices.scales import VirtualScale
    from sim_devices.scales.script import ScriptError, Step, parse_script, play
    from wastecart.errors import WastecartError

    steps: list[Step] = []
    if args.script is not None:
        with args.script:
            try:
                steps = parse_script(args.script.read())  # a bad line stops here, before the pty exists
            except ScriptError as exc:
                raise WastecartError(f"{args.script.name}: {exc}") from exc
    protocol = "toledo-nochk" if args.no_checksum and args.protocol == "toledo" else args.protocol
    scale = VirtualScale(protocol, rate_hz=args.rate, link=args.link, baud=args.line_baud, seven_e1=args.seven_e1)
    scale.set_load(args.weight, settle_s=0)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scale.start()
    try:
        print(f"scale ({args.protocol}) on {scale.path}", flush=True)
        if args.link:
            print(f"link {args.link} -> {scale.path}", flush=True)
        threading.Thread(target=_load_from_stdin, args=(scale,), name="sim-scale-stdin", daemon=True).start()
        if steps:
            threading.Thread(target=play, args=(scale, steps, stop, lambda t: print(f"script {t}", flush=True)),
                             name="sim-scale-script", daemon=True).start()
        started = time.monotonic()
        while not stop.wait(1.0):
            pass
        print(f"scale stopped after {time.monotonic() - started:.0f} s, {scale.frames_sent} frames", flush=True)
    finally:
        scale.stop()
    return 0


def _load_from_stdin(scale: VirtualScale) -> None:
    """``1234`` puts 1234 g on, ``0``/``off`` empties the platform; EOF just ends this thread."""
    for line in sys.stdin:
        text = line.strip().lower()
        if not text:
            continue
        if text in ("0", "off"):
            scale.remove_load(SIM_SETTLE_S)
        elif text.lstrip("-").isdigit():
            scale.set_load(int(text), SIM_SETTLE_S)
        else:
            print(f"ignored {text!r}: type grams (e.g. 1250), or 0 / off", file=sys.stderr, flush=True)
