"""``wastecart sim camera``: the simulated camera (see ``sim_devices.camera``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wastecart.cli import Cli


def register(cli: Cli) -> None:
    p = cli.command("sim", "camera", sim_camera, "simulated camera: shows each payload typed on stdin "
                    "as a frame in a folder (camera URL file://DIR/)")
    p.add_argument("--dir", type=Path, required=True, help="folder the frames are written to")


def sim_camera(args: argparse.Namespace) -> int:
    from sim_devices.camera import SimCamera

    cam = SimCamera(args.dir)
    print(f"camera frames at {cam.url} (type a payload and Enter to show it)", flush=True)
    for line in sys.stdin:
        if line.strip():
            print(f"showing {line.strip()} in {cam.show(line.strip()).name}", flush=True)
    return 0
