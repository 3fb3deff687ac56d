"""``wastecart sim printer``: the simulated label/receipt printer (see ``sim_devices.printer``).

Listens on raw TCP (and a pty with ``--pty``), prints one line saying where, then one line per job
received, until SIGINT/SIGTERM.  Jobs (PNG + JSON) stay in ``--dir`` for inspection.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from wastecart.cli import Cli
from wastecart.errors import SetupError

DEFAULT_PORT = 9100  # the raw-TCP (AppSocket/JetDirect) port every network printer listens on


def register(cli: Cli) -> None:
    p = cli.command("sim", "printer", sim_printer, "simulated label/receipt printer (TSPL, ZPL, ESC/POS) on raw "
                    "TCP and a pty: records each job and renders it as a PNG")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default %(default)s; 0 = a free one)")
    p.add_argument("--pty", action="store_true", help="also listen on a pseudo-terminal (a serial/USB printer)")
    p.add_argument("--dir", type=Path, help="folder for the job PNGs and JSON (default: a new temporary folder)")
    p.add_argument("--width-dots", type=int, default=576,
                   help="ESC/POS paper width in dots: 576 = 80 mm, 384 = 58 mm (default %(default)s)")


def sim_printer(args: argparse.Namespace) -> int:
    from sim_devices.printer import SimPrinter

    if not 0 <= args.port <= 65535:
        raise SetupError(f"--port {args.port}: must be 0..65535")
    if args.width_dots <= 0 or args.width_dots % 8:
        raise SetupError(f"--width-dots {args.width_dots}: must be a positive multiple of 8")
    made = args.dir is None
    folder: Path = args.dir or Path(tempfile.mkdtemp(prefix="wastecart-printer-"))
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    def on_job(job: dict[str, Any]) -> None:
        print(f"job {job['id']} {job['language']} qr={job['qr']} texts={job['texts']} "
              f"warnings={len(job['warnings'])} png={job['png']}", flush=True)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with contextlib.ExitStack() as stack:
            try:
                printer = stack.enter_context(SimPrinter(folder, args.host, args.port, pty=args.pty,
                                                         width_dots=args.width_dots, on_job=on_job))
            except OSError as e:
                if made:
                    shutil.rmtree(folder, ignore_errors=True)  # nothing was printed into it
                raise _listen_error(args.host, args.port, e) from e
            pty = f" pty {printer.pty_path}" if printer.pty_path else ""
            print(f"printer {printer.tcp_url}{pty} control {printer.control_url} jobs {folder}", flush=True)
            done.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def _listen_error(host: str, port: int, e: OSError) -> SetupError:
    if e.errno == errno.EADDRINUSE:
        return SetupError(f"TCP port {port} on {host} is already in use (another printer?); "
                          "use --port 0 for a free one")
    if e.errno == errno.EACCES:
        return SetupError(f"TCP port {port} needs privileges on this machine; use a port above 1023 (or --port 0)")
    return SetupError(f"cannot listen on {host}:{port}: {e.strerror or e}")
