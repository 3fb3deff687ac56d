"""QR decoding: frames in, payload texts out, in its own thread so the workflow never waits.

The pipeline (``Decoder``), chosen by measurement (``tests/bench/bench_qr.py``, figures in the QR
issue's note; real photos of ``../shared/datasets/qr-real`` and the synthetic set of ``tests/qrgen.py``):

1. zxing-cpp on the whole grayscale frame with ``return_errors=True``: the same single pass (no
   slower than without) also reports symbols it *located* but could not decode.
2. A frame where zxing-cpp located a symbol but read none (≈ 3–6 % of frames): zxing-cpp once more
   on that region, cropped and enlarged 2× (0.3–0.8 ms).  It reads small codes with 2–3 px modules
   (4 of 7 such synthetic frames, 2 of 10 real).  pyzbar on the same crop read nothing more on
   either set at 15–20× the retry's cost, so it is not tried there.
3. A frame where zxing-cpp located nothing at all: pyzbar on a half-resolution copy, but only
   within a budget of pixels (``Policy.pyzbar_share``, 1 % of the pixels of all frames seen, banked
   up to ``PYZBAR_BURST`` runs).  pyzbar takes 6–13× zxing-cpp's time on a frame and reads little that
   zxing-cpp misses (real photos: 2 of the 3 codes zxing-cpp did not even locate; synthetic: none),
   so it runs on a small share of frames, never on every empty one — a camera looking at nothing
   pays almost nothing, and a code held up stays in view long enough for a turn.  Running it on
   every unread frame instead costs up to 1.6× zxing-cpp's time (the ``ours_*`` variants in the bench).

Never a wrong payload: zxing-cpp returns only symbols whose Reed–Solomon check passed, decoded as
plain text (control characters kept, not replaced by ``<SOH>`` names); pyzbar's text is accepted
only when it is ASCII, because zbar guesses the character set of byte-mode data and turns UTF-8
Chinese into Shift_JIS mojibake (measured: 4 of 4 such synthetic codes, 10 real photos).

The same code seen again within ``repeat_s`` is reported once, so a label held in front of the
camera is one scan, not thirty.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edge.devices.camera import Camera
from edge.worker import Worker

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

CROP_PAD = 0.25  # fraction of the located symbol's side added around it: quiet zone + position error
CROP_MARGIN_PX = 8  # px added on top, so a tiny symbol still gets a quiet zone
CROP_SCALE = 2.0  # enlargement of the crop: small modules (2–3 px) become readable
CROP_MAX_PX = 640  # px: cap on the enlarged crop's longer side, so a large symbol costs no more than a frame
PYZBAR_BURST = 2  # pyzbar runs: the most pixel credit saved up, so a long empty stretch is no slow burst
STOP_JOIN_S = 5.0  # s stop() waits for the scanner thread (the camera's own stop is bounded by its stall_s)
RETRY_S = 1.0  # s before the scanner starts reading frames again after a pass failed


@dataclass(frozen=True)
class Policy:
    """When the slower passes run; the defaults are the measured choice (module docstring)."""

    retry_located: bool = True  # zxing-cpp again on the enlarged crop, when a symbol was located but not read
    pyzbar_share: float = 0.01  # pixels pyzbar may decode, as a fraction of all frames' pixels (0 = never)
    pyzbar_scale: float = 0.5  # linear scale of the frame given to pyzbar (0.5: a quarter of the pixels)

    def __post_init__(self) -> None:
        if not 0.0 <= self.pyzbar_share <= 1.0:
            raise ValueError(f"pyzbar_share: {self.pyzbar_share} is not within 0…1")
        if not 0.0 < self.pyzbar_scale <= 1.0:
            raise ValueError(f"pyzbar_scale: {self.pyzbar_scale} is not within (0, 1]")


@dataclass
class DecoderStats:
    frames: int = 0
    located_unread: int = 0  # frames where zxing-cpp located a symbol but decoded none
    retry_reads: int = 0  # frames read by the zxing-cpp retry
    pyzbar_runs: int = 0
    pyzbar_reads: int = 0
    pyzbar_rejected: int = 0  # non-ASCII pyzbar texts refused (charset guess not trusted)


@dataclass
class Decoder:
    """Grayscale frame in, decoded payload texts out.

    No I/O; only ``stats`` and the pyzbar pixel credit change from frame to frame (the credit is
    counted in pixels, not seconds, so the same frames always get the same result).
    """

    policy: Policy = field(default_factory=Policy)
    stats: DecoderStats = field(default_factory=DecoderStats)
    credit: float | None = None  # pixels pyzbar may still decode; None: start with a full burst
    _cap: float = 0.0  # pixels: the most credit banked

    def __call__(self, gray: np.ndarray) -> list[str]:
        gray = _as_gray(gray)
        self.stats.frames += 1
        if gray.size == 0:
            return []
        run_px = gray.size * self.policy.pyzbar_scale ** 2  # pixels one pyzbar run decodes
        self._cap = max(self._cap, PYZBAR_BURST * run_px)  # the largest frame so far sets the bank's size
        self.credit = min(self._cap, self._cap if self.credit is None
                          else self.credit + self.policy.pyzbar_share * gray.size)
        found = _zxing(gray, return_errors=True)
        texts = _unique(b.text for b in found if b.valid)
        if texts:
            return texts
        located = [b for b in found if not b.valid]
        if located:
            self.stats.located_unread += 1
        crop = _crop(gray, located) if located else None
        if crop is not None and self.policy.retry_located:
            texts = _unique(b.text for b in _zxing(crop, try_downscale=False, try_invert=False, try_rotate=False)
                            if b.valid)
            if texts:
                self.stats.retry_reads += 1
            return texts  # pyzbar on a located but damaged symbol read nothing more (bench_qr)
        if located or self.policy.pyzbar_share <= 0 or self.credit < run_px:
            return []
        self.credit -= run_px
        self.stats.pyzbar_runs += 1
        texts = self._pyzbar(_scaled(gray, self.policy.pyzbar_scale))
        self.stats.pyzbar_reads += bool(texts)
        return texts

    def _pyzbar(self, gray: np.ndarray) -> list[str]:
        from pyzbar import pyzbar

        out = []
        for symbol in pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.QRCODE]):
            data: bytes = symbol.data
            if data.isascii():
                out.append(data.decode("ascii"))
            else:
                self.stats.pyzbar_rejected += 1
        return _unique(out)


def _scaled(gray: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    if scale >= 1.0:
        return gray
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _as_gray(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2 and img.dtype.char == "B" and img.flags.c_contiguous:
        return img  # what a camera or cv2.imread(…, GRAYSCALE) gives: nothing to do
    import cv2
    import numpy as np

    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY if img.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    if img.ndim != 2:
        raise ValueError(f"expected a grayscale or BGR image, got shape {img.shape}")
    return np.ascontiguousarray(img, dtype=np.uint8)


@functools.cache
def _zxing_args() -> tuple[Any, dict[str, Any]]:
    """zxing-cpp's reader and its fixed options, built once: on a 240 px frame zxing-cpp takes
    ~0.15 ms, so rebuilding the format set per call was a measurable share of our overhead."""
    import zxingcpp

    return zxingcpp.read_barcodes, {"formats": zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode),
                                    "text_mode": zxingcpp.TextMode.Plain}


def _zxing(gray: np.ndarray, **options: Any) -> list[Any]:
    read, fixed = _zxing_args()
    found: list[Any] = read(gray, **fixed, **options)
    return found


def _crop(gray: np.ndarray, located: list[Any]) -> np.ndarray | None:
    """The region around the located symbols, padded and enlarged; None if it is degenerate."""
    import cv2

    xs, ys = [], []
    for b in located:
        pos = b.position
        for p in (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left):
            xs.append(p.x)
            ys.append(p.y)
    side = max(max(xs) - min(xs), max(ys) - min(ys))
    pad = int(CROP_PAD * side) + CROP_MARGIN_PX
    h, w = gray.shape
    x0, x1 = max(0, min(xs) - pad), min(w, max(xs) + pad)
    y0, y1 = max(0, min(ys) - pad), min(h, max(ys) + pad)
    if x1 - x0 < 21 or y1 - y0 < 21:  # px: smaller than a version-1 symbol at one pixel per module
        return None
    region = gray[y0:y1, x0:x1]
    scale = min(CROP_SCALE, CROP_MAX_PX / max(region.shape))
    if scale <= 1.0:
        return region
    return cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def _unique(texts: Any) -> list[str]:
    return list(dict.fromkeys(texts))


def load_libraries() -> None:
    """Import the decoders now, so the first frame's time is decoding, not loading libzbar and zxing-cpp."""
    import pyzbar.pyzbar
    import zxingcpp

    del pyzbar, zxingcpp


def decode(gray: np.ndarray) -> list[str]:
    """Decode one frame with the default policy (``Decoder`` keeps counters across frames)."""
    return Decoder()(gray)


class Debouncer:
    """Drops a code seen again within ``repeat_s`` seconds (pure; the caller passes the time)."""

    def __init__(self, repeat_s: float) -> None:
        self.repeat_s = repeat_s
        self.seen: dict[str, float] = {}

    def fresh(self, code: str, now: float) -> bool:
        last = self.seen.get(code)
        self.seen[code] = now
        return last is None or now - last > self.repeat_s


class Scanner:
    """One thread (a ``Worker``) owning the camera: decode each frame, hand new codes to ``on_code``."""

    def __init__(self, camera: Camera, on_code: Callable[[str], None], repeat_s: float = 2.0,
                 decoder: Decoder | None = None) -> None:
        self.camera = camera
        self.on_code = on_code
        self.debounce = Debouncer(repeat_s)
        self.decoder = decoder or Decoder()
        self.frames = 0
        self._stop = threading.Event()  # the camera's frames() ends when this is set
        self._worker = Worker("scanner", self._pass, join_s=STOP_JOIN_S, retry_s=RETRY_S, on_stop=self._stop.set)

    @property
    def errors(self) -> int:
        """Passes that failed (logged with the traceback by the worker's guard, then restarted)."""
        return self._worker.errors

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

    def _pass(self) -> None:
        """Decode frames until the camera's ``frames()`` ends (it ends when the scanner stops)."""
        for _name, gray in self.camera.frames(self._stop):
            self.frames += 1
            for text in self.decoder(gray):
                if self.debounce.fresh(text, time.monotonic()):
                    self.on_code(text)
