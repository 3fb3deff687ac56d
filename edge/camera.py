"""Cameras behind one narrow interface, chosen by URL scheme from an explicit registry.

A camera yields grayscale frames (numpy uint8 arrays).  This slice has ``file://DIR/``: a folder
the frames appear in (recorded sequences, the simulated camera, tests).  V4L2, HTTP MJPEG and RTSP
capture with a stall watchdog join this registry with the QR issue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from edge.errors import CameraError

if TYPE_CHECKING:
    import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class Camera(Protocol):
    def frames(self, stop: threading.Event) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(frame name, grayscale image)`` until ``stop`` is set."""
        ...


class FolderCamera:
    """Every image that appears in a folder is one frame, in name order, each read once."""

    def __init__(self, folder: Path, fps: float) -> None:
        if not folder.is_dir():
            raise CameraError(f"camera folder {folder} does not exist")
        self.folder = folder
        self.interval = 1.0 / fps
        self.last = ""

    def frames(self, stop: threading.Event) -> Iterator[tuple[str, np.ndarray]]:
        import cv2

        while True:
            fresh = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                           and p.name > self.last)
            for path in fresh:
                self.last = path.name
                image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
                if image is not None:  # a half-written or non-image file is skipped, not fatal
                    yield path.name, image
            if stop.wait(self.interval):  # the frame period of this "camera"
                return


def _folder(url: str, fps: float) -> Camera:
    return FolderCamera(Path(unquote(urlsplit(url).path)), fps)


CAMERAS: dict[str, Callable[[str, float], Camera]] = {"file": _folder}


def open_camera(url: str, fps: float = 10.0) -> Camera:
    scheme = urlsplit(url).scheme
    if scheme not in CAMERAS:
        raise CameraError(f"camera URL {url!r}: scheme must be one of {sorted(CAMERAS)}")
    return CAMERAS[scheme](url, fps)
