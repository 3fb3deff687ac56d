"""``wastecart sim camera``: the simulated camera (see ``sim_devices.camera``).

``--dir DIR`` writes a frame per payload typed on stdin (camera URL ``file://DIR/``); ``--http``
serves an MJPEG stream with a control API until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from wastecart.cli import Cli


def register(cli: Cli) -> None:
    p = cli.command("sim", "camera", sim_camera, "simulated camera: a folder of frames (payloads typed on stdin) "
                    "or an HTTP MJPEG stream with a control API")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dir", type=Path, help="folder the frames are written to (camera URL file://DIR/)")
    mode.add_argument("--http", action="store_true", help="serve http://HOST:PORT/stream.mjpg and a control API")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on with --http (default %(default)s)")
    p.add_argument("--port", type=int, default=0, help="port for --http; 0 picks a free one (default)")


def sim_camera(args: argparse.Namespace) -> int:
    if args.http:
        return _serve_http(args.host, args.port)
    from sim_devices.camera import SimCamera

    cam = SimCamera(args.dir)
    print(f"camera frames at {cam.url} (type a payload and Enter to show it)", flush=True)
    for line in sys.stdin:
        if line.strip():
            print(f"showing {line.strip()} in {cam.show(line.strip()).name}", flush=True)
    return 0


def _serve_http(host: str, port: int) -> int:
    from sim_devices.camera import MjpegCamera

    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with MjpegCamera(host, port) as cam:
            print(f"camera {cam.url} (control {cam.control_url})", flush=True)
            done.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0
