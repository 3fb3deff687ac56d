"""Cameras behind one narrow interface, chosen by URL scheme from an explicit registry.

A camera yields grayscale frames (numpy uint8 arrays).  The registry :data:`CAMERAS`:

- ``file://DIR/`` — a folder the frames appear in (recorded sequences, the simulated camera, tests);
- ``http://…``, ``https://…`` — an MJPEG stream; ``rtsp://…`` — an IP camera; both through
  ``cv2.VideoCapture(url)`` with OpenCV's FFmpeg backend;
- ``v4l2:///dev/video0?width=640&height=480&fps=15`` — a USB camera through ``cv2.CAP_V4L2``.

Stream cameras have a watchdog (like Frigate's): no frame for ``stall_s`` and the capture is
reported ``stalled``, released and reopened with exponential backoff; a device that is gone or a
stream that refuses is ``disconnected`` until it comes back.  The state is on the camera object
(``camera.state``, ``camera.health()``), never a frozen cart and never a traceback.  The state
machine (:class:`Watchdog`) is pure with the time passed in; one capture thread (an
``edge.worker.Worker``: one pass is one open-read-release) owns the ``VideoCapture`` and hands the
newest frame over; OpenCV failures become :class:`CameraError` here.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from edge.errors import CameraError
from edge.worker import Worker

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
STALL_S = 5.0  # seconds without a frame before a stream counts as stalled: 50 frames at 10 fps
BACKOFF_FIRST_S = 0.5  # seconds before the first reopen: a camera that blipped is back at once
BACKOFF_MAX_S = 10.0  # seconds, the longest wait between reopens: an unplugged camera is found soon
OPEN_TIMEOUT_S = 5.0  # seconds FFmpeg may take to connect and see the first frame of a stream
HANDOVER_WAIT_S = 0.2  # seconds frames() waits for a frame before looking at its stop event again

T = TypeVar("T")


class Camera(Protocol):
    def frames(self, stop: threading.Event) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(frame name, grayscale image)`` until ``stop`` is set."""
        ...

    @property
    def state(self) -> State:
        """ok / stalled / disconnected / … for the kiosk and telemetry."""
        ...


@dataclass(frozen=True)
class Options:
    """How to run a camera; only stream cameras use the watchdog settings."""

    fps: float = 10.0  # frames/s: the folder camera's polling rate, a V4L2 camera's default mode
    stall_s: float = STALL_S
    backoff_first_s: float = BACKOFF_FIRST_S
    backoff_max_s: float = BACKOFF_MAX_S
    open_timeout_s: float = OPEN_TIMEOUT_S
    on_state: Callable[[State], None] | None = field(default=None, compare=False)  # called on every change


# --- the folder camera ------------------------------------------------------------------------


class FolderCamera:
    """Every image that appears in a folder is one frame, in name order, each read once.

    Like a live camera it sees only what is shown after it opened: frames already in the folder
    are history (a restarted cart must not re-scan the last round's badges and labels).
    """

    def __init__(self, folder: Path, fps: float) -> None:
        if not folder.is_dir():
            raise CameraError("camera.folder_missing", folder=str(folder))
        self.folder = folder
        self.interval = 1.0 / fps
        self.last = max((p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), default="")

    @property
    def state(self) -> State:
        return State.OK if self.folder.is_dir() else State.DISCONNECTED

    def health(self) -> dict[str, Any]:
        return {"url": f"file://{self.folder}/", "state": str(self.state)}

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


# --- stream URLs (pure) -----------------------------------------------------------------------


V4L2_QUERY = {"width": int, "height": int, "fps": float}
V4L2_LIMITS = {"width": (1, 10_000), "height": (1, 10_000), "fps": (0.1, 240.0)}  # sanity, not clamping


def redact(url: str) -> str:
    """The URL with any password replaced, for logs, errors and health (RTSP URLs carry them)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class CaptureSpec:
    """What to hand ``cv2.VideoCapture``: ``source`` for ``backend`` (``ffmpeg`` or ``v4l2``)."""

    url: str  # redacted: safe to show
    source: str
    backend: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None


def parse_stream_url(url: str) -> CaptureSpec:
    """``http(s)://`` / ``rtsp://`` / ``v4l2://`` URL → :class:`CaptureSpec`; ``CameraError`` names the URL."""
    shown = redact(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as e:
        raise CameraError("camera.url_bad", url=shown, reason=str(e)) from e
    if parts.scheme in ("http", "https", "rtsp"):
        if not parts.hostname:
            raise CameraError("camera.no_host", url=shown)
        return CaptureSpec(shown, url, "ffmpeg")  # the query belongs to the camera, passed as is
    if parts.scheme != "v4l2":
        raise CameraError("camera.not_stream", url=shown)
    if parts.netloc:
        raise CameraError("camera.v4l2_host", url=shown, host=parts.netloc)
    path = unquote(parts.path)
    if not path.startswith("/dev/"):
        raise CameraError("camera.v4l2_path", url=shown)
    values: dict[str, Any] = {}
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as e:
        raise CameraError("camera.url_bad", url=shown, reason=str(e)) from e
    for key, raw in query:
        if key not in V4L2_QUERY:
            raise CameraError("camera.option_unknown", url=shown, option=key, known=", ".join(V4L2_QUERY))
        if key in values:
            raise CameraError("camera.option_twice", url=shown, option=key)
        try:
            value = V4L2_QUERY[key](raw)
        except ValueError as e:
            raise CameraError("camera.option_type", url=shown, option=key, value=raw,
                              type=V4L2_QUERY[key].__name__) from e
        low, high = V4L2_LIMITS[key]
        if not low <= value <= high:
            raise CameraError("camera.option_range", url=shown, option=key, value=raw, low=low, high=high)
        values[key] = value
    return CaptureSpec(shown, path, "v4l2", **values)


# --- the watchdog (pure) ----------------------------------------------------------------------


class State(StrEnum):
    CONNECTING = "connecting"  # first open, no frame yet
    OK = "ok"  # frames arrive
    STALLED = "stalled"  # open, but no frame for stall_s
    DISCONNECTED = "disconnected"  # refused, unplugged or the stream ended; waiting to retry
    RECONNECTING = "reconnecting"  # reopening after a stall or a disconnect, no frame yet
    STOPPED = "stopped"  # nobody is reading frames


class Watchdog:
    """Capture events in, with the time they happened; state and the next wait out.  No I/O."""

    def __init__(self, stall_s: float, backoff_first_s: float = BACKOFF_FIRST_S,
                 backoff_max_s: float = BACKOFF_MAX_S) -> None:
        if stall_s <= 0 or backoff_first_s <= 0 or backoff_max_s < backoff_first_s:
            raise CameraError("camera.watchdog", stall_s=stall_s, first=backoff_first_s, most=backoff_max_s)
        self.stall_s = stall_s
        self.backoff_first_s = backoff_first_s
        self.backoff_max_s = backoff_max_s
        self.state = State.STOPPED
        self.since = 0.0  # when the state was entered
        self.last_frame: float | None = None
        self.waiting_since = 0.0  # last open or frame: what "no frame for stall_s" counts from
        self.frames = 0
        self.reconnects = 0
        self.stalls = 0
        self.last_error = ""
        self._delay = backoff_first_s

    def _enter(self, state: State, now: float) -> None:
        if state != self.state:
            self.state, self.since = state, now

    def opening(self, now: float) -> None:
        if self.state == State.STOPPED and self.frames == 0:
            self._enter(State.CONNECTING, now)
        elif self.state != State.CONNECTING:
            self.reconnects += 1
            self._enter(State.RECONNECTING, now)

    def opened(self, now: float) -> None:
        self.waiting_since = now

    def frame(self, now: float) -> None:
        self.frames += 1
        self.last_frame = self.waiting_since = now
        self._delay = self.backoff_first_s
        self._enter(State.OK, now)

    def read_failed(self, now: float, reason: str) -> float:
        """The capture gave no frame: a stall if nothing came for ``stall_s``, else the stream ended.

        Returns the seconds to wait before reopening.
        """
        if now - self.waiting_since >= self.stall_s:
            self.stalls += 1
            self.last_error = f"no frame for {now - self.waiting_since:.1f} s"
            self._enter(State.STALLED, now)
        else:
            self.last_error = reason
            self._enter(State.DISCONNECTED, now)
        return self._next_delay()

    def open_failed(self, now: float, reason: str) -> float:
        self.last_error = reason
        self._enter(State.DISCONNECTED, now)
        return self._next_delay()

    def stopped(self, now: float) -> None:
        self._enter(State.STOPPED, now)

    def _next_delay(self) -> float:
        delay = self._delay
        self._delay = min(self._delay * 2, self.backoff_max_s)
        return delay

    def state_at(self, now: float) -> State:
        """The state as seen from outside: a read blocked past ``stall_s`` already counts as stalled."""
        if self.state in (State.OK, State.CONNECTING, State.RECONNECTING) and now - self.waiting_since >= self.stall_s:
            return State.STALLED
        return self.state


# --- the stream camera (imperative shell) -----------------------------------------------------


def _to_gray(image: np.ndarray) -> np.ndarray:
    import cv2
    import numpy as np

    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image)
    return image


class StreamCamera:
    """An HTTP/RTSP/V4L2 camera: one capture thread owns the ``VideoCapture`` while ``frames()`` runs."""

    def __init__(self, spec: CaptureSpec, options: Options = Options(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.options = options
        self.clock = clock
        self._errors_before = 0  # bugs caught by the guard of earlier capture workers
        self._worker: Worker | None = None
        self._dog = Watchdog(options.stall_s, options.backoff_first_s, options.backoff_max_s)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.spec.url

    @property
    def errors(self) -> int:
        """Unexpected exceptions caught by the capture worker's guard (expected failures are states)."""
        return self._errors_before + (self._worker.errors if self._worker else 0)

    @property
    def state(self) -> State:
        with self._lock:
            return self._dog.state_at(self.clock())

    def health(self) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            d = self._dog
            return {"url": self.spec.url, "state": str(d.state_at(now)), "for_s": round(now - d.since, 3),
                    "frames": d.frames, "stalls": d.stalls, "reconnects": d.reconnects,
                    "last_frame_age_s": None if d.last_frame is None else round(now - d.last_frame, 3),
                    "last_error": d.last_error, "errors": self.errors}

    def _event(self, apply: Callable[[Watchdog, float], T]) -> T:
        with self._lock:
            before = self._dog.state
            result = apply(self._dog, self.clock())
            after = self._dog.state
        if after != before:
            level = logging.INFO if after in (State.OK, State.CONNECTING, State.STOPPED) else logging.WARNING
            log.log(level, "camera %s: %s%s", self.spec.url, after,
                    f" ({self._dog.last_error})" if after in (State.STALLED, State.DISCONNECTED) else "")
            if self.options.on_state is not None:
                self.options.on_state(after)
        return result

    def frames(self, stop: threading.Event) -> Iterator[tuple[str, np.ndarray]]:
        handover: queue.Queue[tuple[str, np.ndarray]] = queue.Queue(maxsize=1)
        counter = itertools.count(1)
        # A blocked read ends within stall_s (FFmpeg's read timeout), an open within open_timeout_s.
        worker = Worker(f"camera-{self.spec.backend}", lambda: self._capture(worker, handover, counter),
                        join_s=self.options.stall_s + self.options.open_timeout_s,
                        retry_s=self.options.backoff_max_s)
        self._worker = worker
        worker.start()
        try:
            while not stop.is_set():
                try:
                    item = handover.get(timeout=HANDOVER_WAIT_S)
                except queue.Empty:
                    continue
                yield item
        finally:
            worker.stop()
            self._errors_before, self._worker = self.errors, None
            self._event(lambda d, now: d.stopped(now))

    def _capture(self, worker: Worker, handover: queue.Queue[tuple[str, np.ndarray]],
                 counter: Iterator[int]) -> float | None:
        """One pass of the capture worker: open, read frames until the stream fails, release.

        Returns the back-off before the next open (None when stopping).  Expected failures (refused,
        unplugged, a read error) are watchdog states; a bug is left to the worker's guard.
        """
        self._event(lambda d, now: d.opening(now))
        try:
            cap = self._open()
        except CameraError as e:
            return self._event(functools.partial(_open_failed, reason=str(e)))
        self._event(lambda d, now: d.opened(now))
        reason = "the stream ended"
        try:
            while not worker.stopping:
                try:
                    image = self._read(cap)
                except CameraError as e:
                    reason = str(e)
                    break
                if image is None:
                    break
                self._event(lambda d, now: d.frame(now))
                _offer(handover, (f"{self.spec.backend}-{next(counter):06d}", _to_gray(image)))
        finally:
            cap.release()
        if worker.stopping:
            return None
        return self._event(functools.partial(_read_failed, reason=reason))

    def _open(self) -> Any:
        import cv2

        o = self.options
        try:
            if self.spec.backend == "v4l2":
                cap = cv2.VideoCapture(self.spec.source, cv2.CAP_V4L2)
                if cap.isOpened():
                    for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.spec.width),
                                        (cv2.CAP_PROP_FRAME_HEIGHT, self.spec.height),
                                        (cv2.CAP_PROP_FPS, self.spec.fps or o.fps)):
                        if value is not None:
                            cap.set(prop, float(value))
            else:
                cap = cv2.VideoCapture(self.spec.source, cv2.CAP_FFMPEG, [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(o.open_timeout_s * 1000),
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(o.stall_s * 1000),  # a stalled read returns after stall_s
                ])
        except cv2.error as e:
            raise CameraError("camera.opencv_open", url=self.spec.url, reason=str(e)) from e
        if not cap.isOpened():
            cap.release()
            raise CameraError("camera.cannot_open", url=self.spec.url)
        return cap

    def _read(self, cap: Any) -> np.ndarray | None:
        import cv2

        try:
            ok, image = cap.read()
        except cv2.error as e:
            raise CameraError("camera.read_failed", url=self.spec.url, reason=str(e)) from e
        return image if ok and image is not None and image.size else None


def _open_failed(dog: Watchdog, now: float, reason: str) -> float:
    return dog.open_failed(now, reason)


def _read_failed(dog: Watchdog, now: float, reason: str) -> float:
    return dog.read_failed(now, reason)


def _offer(handover: queue.Queue[tuple[str, np.ndarray]], item: tuple[str, np.ndarray]) -> None:
    """Newest frame wins: a slow reader sees what the camera sees now, not a backlog."""
    with contextlib.suppress(queue.Empty):
        handover.get_nowait()
    with contextlib.suppress(queue.Full):  # only this thread puts: cannot happen, one lost frame would not matter
        handover.put_nowait(item)


# --- the registry -----------------------------------------------------------------------------


def _folder(url: str, options: Options) -> Camera:
    return FolderCamera(Path(unquote(urlsplit(url).path)), options.fps)


def _stream(url: str, options: Options) -> Camera:
    return StreamCamera(parse_stream_url(url), options)


CAMERAS: dict[str, Callable[[str, Options], Camera]] = {
    "file": _folder,
    "http": _stream,
    "https": _stream,
    "rtsp": _stream,
    "v4l2": _stream,
}


def open_camera(url: str, fps: float = 10.0, *, stall_s: float = STALL_S, backoff_first_s: float = BACKOFF_FIRST_S,
                backoff_max_s: float = BACKOFF_MAX_S, open_timeout_s: float = OPEN_TIMEOUT_S,
                on_state: Callable[[State], None] | None = None) -> Camera:
    """The camera for ``url``; nothing is connected until ``frames()`` runs.  ``CameraError`` names the URL."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError as e:
        raise CameraError("camera.url_bad", url=url, reason=str(e)) from e
    if scheme not in CAMERAS:
        raise CameraError("camera.scheme", url=redact(url), schemes=str(sorted(CAMERAS)))
    if fps <= 0 or stall_s <= 0 or open_timeout_s <= 0:
        raise CameraError("camera.settings", url=redact(url))
    options = Options(fps=fps, stall_s=stall_s, backoff_first_s=backoff_first_s, backoff_max_s=backoff_max_s,
                      open_timeout_s=open_timeout_s, on_state=on_state)
    return CAMERAS[scheme](url, options)
