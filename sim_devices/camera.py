"""Simulated cameras: QR payloads drawn as camera-like frames, served the way real cameras are.

Imports nothing from ``edge``: codes are drawn with the ``qrcode`` library the way a printed label
would look, placed on a 640×480 grey "scene".  Two ways to reach the cart:

- :class:`SimCamera` writes each frame into a folder (camera URL ``file://DIR/``);
- :class:`MjpegCamera` serves an HTTP MJPEG stream (``multipart/x-mixed-replace``) that OpenCV's
  FFmpeg backend opens like an IP camera (``http://127.0.0.1:PORT/stream.mjpg``), with a small
  control API to show codes with distortions, blank the view, play a script or stall the stream::

      POST /show        {"payload": "...", "distort": {"blur": 1.5, "tilt": 20, "glare": 0.4,
                                                       "noise": 8, "contrast": 0.6, "scale": 1.2}}
      POST /show-image  raw PNG/JPEG body
      POST /blank
      POST /script      [{"payload": "...", "seconds": 2, "distort": {...}}, ...]  (no payload: blank)
      POST /stall       {"seconds": 3}   no frames for that long; connections stay open
      GET  /status
"""

from __future__ import annotations

import itertools
import json
import math
import os
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

FRAME_SIZE = (640, 480)  # pixels: a typical cart camera mode
MODULE_PX = 4  # pixels per QR module: a label ~20 cm from a 640×480 camera
SCENE_GREY = 170  # background level of the scene (0-255): a cart's inside, neither black nor white
STREAM_FPS = 10.0  # frames/s sent on the MJPEG stream: what a cheap IP camera does at this size
JPEG_QUALITY = 85  # 0-100: the usual default of IP cameras; artefacts visible but QR-safe
BOUNDARY = "frame"


class SimCamera:
    """``show(payload)`` makes the camera see that code in its next frame."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        # Frames of an earlier run in the same folder (`demo --data DIR` twice) would outrank ours:
        # a new frame-000001 sorts before the old last frame, so the camera kept showing that one.
        for old in folder.glob("frame-*.png"):
            old.unlink()
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


# --- scenes and distortions (pure: numpy arrays in, numpy arrays out) --------------------------

# name -> (lowest, highest) accepted value; out-of-range values are refused, never clamped.
DISTORTIONS: dict[str, tuple[float, float]] = {
    "blur": (0.0, 20.0),  # Gaussian sigma in pixels: defocus / motion
    "tilt": (0.0, 80.0),  # degrees the label is turned away from the camera (about its vertical axis)
    "glare": (0.0, 1.0),  # strength of a bright specular blob over the label
    "noise": (0.0, 100.0),  # Gaussian sensor-noise sigma in grey levels
    "contrast": (0.0, 1.0),  # 1 = full contrast, 0.3 = a dim, washed-out view
    "scale": (0.2, 3.0),  # label size relative to MODULE_PX modules (distance to the camera)
}


@dataclass(frozen=True)
class Distort:
    blur: float = 0.0
    tilt: float = 0.0
    glare: float = 0.0
    noise: float = 0.0
    contrast: float = 1.0
    scale: float = 1.0

    @classmethod
    def parse(cls, raw: object) -> Distort:
        """From the JSON of the control API; ``ValueError`` names the offending key."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ValueError("distort must be an object")
        values: dict[str, float] = {}
        for key, value in raw.items():
            if key not in DISTORTIONS:
                raise ValueError(f"distort.{key}: unknown; known: {', '.join(DISTORTIONS)}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"distort.{key}: must be a number")
            low, high = DISTORTIONS[key]
            if not low <= value <= high:
                raise ValueError(f"distort.{key}: {value} is outside {low}..{high}")
            values[key] = float(value)
        return cls(**values)


def blank_scene() -> np.ndarray:
    import numpy as np

    return np.full((FRAME_SIZE[1], FRAME_SIZE[0]), SCENE_GREY, np.uint8)


def qr_image(payload: str) -> np.ndarray:
    """The code as a printed label would look: black modules on white, quiet zone included."""
    import numpy as np
    import qrcode

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, box_size=MODULE_PX, border=4)
    qr.add_data(payload)
    return np.asarray(qr.make_image().get_image().convert("L"), dtype=np.uint8)


def fit(image: np.ndarray) -> np.ndarray:
    """Any grey image centred on the scene, shrunk (never stretched) to fit 640×480."""
    import cv2

    scene = blank_scene()
    h, w = image.shape[:2]
    f = min(1.0, FRAME_SIZE[0] / w, FRAME_SIZE[1] / h)
    if f < 1.0:
        image = cv2.resize(image, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
    y, x = (FRAME_SIZE[1] - h) // 2, (FRAME_SIZE[0] - w) // 2
    scene[y:y + h, x:x + w] = image
    return scene


def render(payload: str, distort: Distort = Distort(), seed: int = 0) -> np.ndarray:
    """A 640×480 grey scene showing the code of ``payload`` with the given distortions."""
    import cv2
    import numpy as np

    code = qr_image(payload)
    if distort.scale != 1.0:
        size = max(8, round(code.shape[1] * distort.scale))
        code = cv2.resize(code, (size, size), interpolation=cv2.INTER_AREA if distort.scale < 1 else cv2.INTER_NEAREST)
    scene: np.ndarray = fit(code).astype(np.float32)
    if distort.tilt:
        scene = _tilt(scene, distort.tilt)
    if distort.contrast != 1.0:
        scene = SCENE_GREY + (scene - SCENE_GREY) * distort.contrast
    if distort.glare:
        h, w = scene.shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy, r = w * 0.55, h * 0.42, min(w, h) * 0.18  # off-centre, over part of the label
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        scene = scene + (255.0 - scene) * blob * distort.glare
    if distort.blur:
        scene = cv2.GaussianBlur(scene, (0, 0), distort.blur)
    if distort.noise:
        scene = scene + np.random.default_rng(seed).normal(0.0, distort.noise, scene.shape)
    out: np.ndarray = np.clip(scene, 0, 255).astype(np.uint8)
    return out


def _tilt(scene: np.ndarray, degrees: float) -> np.ndarray:
    """The label plane turned by ``degrees`` about the vertical axis through the centre."""
    import cv2
    import numpy as np

    h, w = scene.shape
    focal = 800.0  # pixels: a ~45° horizontal field of view at 640 px wide
    a = math.radians(degrees)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    projected = []
    for x, y in corners:
        dx, dy = x - w / 2, y - h / 2
        z = focal + dx * math.sin(a)
        projected.append([w / 2 + focal * dx * math.cos(a) / z, h / 2 + focal * dy / z])
    matrix = cv2.getPerspectiveTransform(corners, np.array(projected, np.float32))
    return cv2.warpPerspective(scene, matrix, (w, h), borderMode=cv2.BORDER_CONSTANT, borderValue=SCENE_GREY)


def encode_jpeg(gray: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf)


# --- the MJPEG server ------------------------------------------------------------------------


class MjpegCamera:
    """An IP camera on ``http://HOST:PORT/stream.mjpg``; ``port=0`` picks a free port.

    ``stop()`` closes every stream; ``start()`` again serves on the same port (a camera that was
    unplugged and comes back).  The methods behind the control API are public for tests too.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, fps: float = STREAM_FPS) -> None:
        self.host = host
        self.port = port
        self.period = 1.0 / fps
        self._lock = threading.Lock()
        self._jpeg = encode_jpeg(blank_scene())
        self._showing: str | None = None
        self._stalled_until = 0.0  # time.monotonic() before which no frames are sent
        self._script_gen = 0  # bumped by every show/blank/script: a running script stops
        self.frames_sent = 0
        self.clients = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/stream.mjpg"

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> MjpegCamera:
        if self._server is not None:
            return self
        self._stop = threading.Event()
        server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="sim-mjpeg", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stop.set()  # streaming handlers leave their loops and close their sockets
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> MjpegCamera:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # what the camera sees --------------------------------------------------------------------

    def _set(self, gray: np.ndarray, showing: str | None, cancel_script: bool = True) -> None:
        jpeg = encode_jpeg(gray)
        with self._lock:
            self._jpeg, self._showing = jpeg, showing
            if cancel_script:
                self._script_gen += 1

    def show(self, payload: str, distort: Distort = Distort()) -> None:
        self._set(render(payload, distort), payload)

    def show_image(self, data: bytes) -> None:
        import cv2
        import numpy as np

        gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise ValueError("body is not a PNG or JPEG image")
        self._set(fit(gray), "(image)")

    def blank(self) -> None:
        self._set(blank_scene(), None)

    def stall(self, seconds: float) -> None:
        with self._lock:
            self._stalled_until = time.monotonic() + seconds

    def script(self, steps: list[tuple[str | None, float, Distort]]) -> None:
        """Plays ``(payload or None for blank, seconds, distortion)`` steps in a thread of its own."""
        frames = [(p, s, blank_scene() if p is None else render(p, d, seed=i)) for i, (p, s, d) in enumerate(steps)]
        with self._lock:
            self._script_gen += 1
            gen = self._script_gen
        threading.Thread(target=self._play, args=(gen, frames), name="sim-mjpeg-script", daemon=True).start()

    def _play(self, gen: int, frames: list[tuple[str | None, float, np.ndarray]]) -> None:
        for payload, seconds, gray in frames:
            with self._lock:
                if self._script_gen != gen:
                    return
            self._set(gray, payload, cancel_script=False)
            if self._stop.wait(seconds):
                return

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"url": self.url, "showing": self._showing, "clients": self.clients,
                    "frames_sent": self.frames_sent,
                    "stalled_for_s": round(max(0.0, self._stalled_until - time.monotonic()), 3)}

    def _next_frame(self) -> bytes | None:
        with self._lock:
            if time.monotonic() < self._stalled_until:
                return None
            self.frames_sent += 1
            return self._jpeg


def _handler(cam: MjpegCamera) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "SimMjpegCamera/1"
        protocol_version = "HTTP/1.0"  # one request per connection; the stream ends at close

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the sim runs inside tests and the demo

        def do_GET(self) -> None:
            if self.path.split("?")[0] in ("/stream.mjpg", "/stream", "/mjpeg"):
                self._stream()
            elif self.path == "/status":
                self._reply(HTTPStatus.OK, cam.status())
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                if self.path == "/show-image":
                    cam.show_image(body)
                elif self.path == "/blank":
                    cam.blank()
                else:
                    self._post_json(json.loads(body or b"null"))
            except KeyError:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})
            except ValueError as e:  # bad JSON or a bad value: refused, the view stays as it was
                self._reply(HTTPStatus.BAD_REQUEST, {"error": str(e)})
            else:
                self._reply(HTTPStatus.OK, cam.status())

        def _post_json(self, doc: Any) -> None:
            if self.path == "/show":
                if not isinstance(doc, dict) or not isinstance(doc.get("payload"), str):
                    raise ValueError('expected {"payload": "...", "distort": {...}}')
                cam.show(doc["payload"], Distort.parse(doc.get("distort")))
            elif self.path == "/stall":
                seconds = doc.get("seconds") if isinstance(doc, dict) else None
                if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 3600:
                    raise ValueError('expected {"seconds": 0..3600}')
                cam.stall(float(seconds))
            elif self.path == "/script":
                if not isinstance(doc, list) or not all(isinstance(s, dict) for s in doc):
                    raise ValueError('expected [{"payload": "...", "seconds": N, "distort": {...}}, ...]')
                steps: list[tuple[str | None, float, Distort]] = []
                for i, step in enumerate(doc):
                    payload, seconds = step.get("payload"), step.get("seconds", 1.0)
                    if payload is not None and not isinstance(payload, str):
                        raise ValueError(f"[{i}].payload: must be a string or null")
                    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= 3600:
                        raise ValueError(f"[{i}].seconds: must be 0 < seconds <= 3600")
                    steps.append((payload, float(seconds), Distort.parse(step.get("distort"))))
                cam.script(steps)
            else:
                raise KeyError(self.path)

        def _reply(self, status: HTTPStatus, doc: dict[str, Any]) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Pragma", "no-cache")
            self.end_headers()
            stop = cam._stop  # this server run's: a restarted camera has a new one
            with cam._lock:
                cam.clients += 1
            try:
                while True:
                    jpeg = cam._next_frame()
                    if jpeg is not None:
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                        self.wfile.flush()
                    if stop.wait(cam.period):
                        return
            except (BrokenPipeError, ConnectionResetError):
                return  # the viewer went away: normal for a camera
            finally:
                with cam._lock:
                    cam.clients -= 1

    return Handler
