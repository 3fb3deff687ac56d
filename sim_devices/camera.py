"""A simulated camera: shows QR payloads as camera-like frames in a folder (``file://DIR/``).

Imports nothing from ``edge``: it draws codes with the ``qrcode`` library the way a printed label
would look, placed on a 640×480 grey "scene".  (MJPEG over HTTP with distortions comes with the
QR issue.)
"""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

FRAME_SIZE = (640, 480)  # pixels: a typical cart camera mode
MODULE_PX = 4  # pixels per QR module: a label ~20 cm from a 640×480 camera


class SimCamera:
    """``show(payload)`` makes the camera see that code in its next frame."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._n = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"file://{self.folder.resolve()}/"

    def show(self, payload: str) -> Path:
        import qrcode
        from PIL import Image

        qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, box_size=MODULE_PX, border=4)
        qr.add_data(payload)
        code = qr.make_image().get_image().convert("L")
        scene = Image.new("L", FRAME_SIZE, 170)
        scene.paste(code, ((FRAME_SIZE[0] - code.width) // 2, (FRAME_SIZE[1] - code.height) // 2))
        with self._lock:
            path = self.folder / f"frame-{next(self._n):06d}.png"
            tmp = path.with_suffix(".tmp")
            scene.save(tmp, format="PNG")
            os.replace(tmp, path)  # atomic: the camera never sees half a frame
        return path
