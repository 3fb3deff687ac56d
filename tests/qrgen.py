"""Deterministic synthetic QR frames: camera-like 640×480 scenes with and without a code.

``generate(out, n=…, seed=…)`` writes ``<name>.png`` and ``<name>.txt`` (the expected text, UTF-8,
no trailing newline) like ``../shared/datasets/qr-real``; an EMPTY frame (no code at all) gets an
empty ``.txt``.  The same seed gives the same files.  Codes are rendered with ``qrcode`` at error
correction Q, 2–7 px per module, then placed on a cluttered background and distorted: rotation,
perspective, blur, glare, sensor noise, low contrast, small size — several at once, as a hand-held
label in front of a cart camera looks.

Run alone: ``python -m tests.qrgen OUT_DIR [N]``
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from edge import codes

W, H = 640, 480  # px: the cart camera's frame
EMPTY_EVERY = 6  # one frame in six has no code: the camera mostly looks at nothing
OTHER_PAYLOADS = (  # not ours: a hospital badge, a platform URL, mixed case, digits, Chinese
    "https://platform.example.cn/trace?b=B00010203&h=H330100001",
    "EMP-0042137",
    "Hello, cart 7",
    "0123456789012345",
    "医疗废物 感染性 H330100001",
    "wastecart test label / 测试",
)


@dataclass(frozen=True)
class Frame:
    name: str
    expected: str  # "" for an empty frame


def _payload(rng: np.random.Generator, i: int) -> str:
    if i % 3 == 2:
        return OTHER_PAYLOADS[int(rng.integers(len(OTHER_PAYLOADS)))]
    kind = "SDBRV"[int(rng.integers(5))]
    extra = "ISPDC"[int(rng.integers(5))] if kind == "B" else ""
    ident = f"{kind}{int(rng.integers(10**8)):08d}"
    return codes.encode(codes.Code(kind, f"H{int(rng.integers(330100000, 330199999))}", ident, extra))


def _symbol(text: str, module_px: int) -> np.ndarray:
    import qrcode

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, box_size=module_px, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    img = qr.make_image().convert("L")
    return np.asarray(img, dtype=np.uint8)


def _background(rng: np.random.Generator) -> np.ndarray:
    import cv2

    base = float(rng.uniform(60, 200))
    gx = np.linspace(-1, 1, W, dtype=np.float32)[None, :] * float(rng.uniform(-40, 40))
    gy = np.linspace(-1, 1, H, dtype=np.float32)[:, None] * float(rng.uniform(-40, 40))
    bg = np.full((H, W), base, np.float32) + gx + gy
    for _ in range(int(rng.integers(3, 12))):  # clutter: boxes, bars, lines (cart, bins, labels)
        x, y = int(rng.integers(0, W)), int(rng.integers(0, H))
        w, h = int(rng.integers(10, 200)), int(rng.integers(10, 150))
        shade = float(rng.uniform(0, 255))
        if rng.random() < 0.6:
            cv2.rectangle(bg, (x, y), (x + w, y + h), shade, -1)
        else:
            cv2.line(bg, (x, y), (x + w, y + h), shade, int(rng.integers(1, 6)))
    return np.asarray(bg, np.float32)


def _place(bg: np.ndarray, sym: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Warp the symbol (rotation + perspective) onto the background at a random position."""
    import cv2

    s = sym.shape[0]
    scale = 1.0
    if s > 0.9 * H:
        scale = 0.9 * H / s
    side = s * scale
    cx = float(rng.uniform(side / 2 + 5, W - side / 2 - 5)) if side < W - 10 else W / 2
    cy = float(rng.uniform(side / 2 + 5, H - side / 2 - 5)) if side < H - 10 else H / 2
    angle = float(rng.uniform(0, 2 * np.pi))
    tilt = float(rng.uniform(0.0, 0.25))  # fraction of the side: how far the corners move in perspective
    src = np.array([[0, 0], [s, 0], [s, s], [0, s]], np.float32)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float32) * side / 2
    corners += rng.uniform(-tilt, tilt, size=(4, 2)).astype(np.float32) * side / 2
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    dst = (corners @ rot.T + np.array([cx, cy], np.float32)).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(sym.astype(np.float32), m, (W, H), flags=cv2.INTER_LINEAR, borderValue=-1.0)
    mask = cv2.warpPerspective(np.ones_like(sym, np.float32), m, (W, H), flags=cv2.INTER_LINEAR)
    paper = float(rng.uniform(170, 255))  # the label's white; ink is never pure black on a photo
    ink = float(rng.uniform(0, 70))
    label = ink + (paper - ink) * np.clip(warped, 0, 255) / 255.0
    return bg * (1 - mask) + label * mask


def _degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import cv2

    if rng.random() < 0.5:  # defocus / motion
        k = int(rng.choice([3, 5, 7]))
        img = cv2.GaussianBlur(img, (k, k), 0)
    if rng.random() < 0.3:  # glare: a bright blob from the ward lights
        gx, gy = float(rng.uniform(0, W)), float(rng.uniform(0, H))
        r = float(rng.uniform(30, 120))
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        img = img + float(rng.uniform(80, 220)) * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * r * r))
    if rng.random() < 0.35:  # low contrast (dim corridor, grey print)
        mid = float(img.mean())
        img = mid + (img - mid) * float(rng.uniform(0.25, 0.5))
    img = img + rng.normal(0, float(rng.uniform(2, 12)), img.shape).astype(np.float32)  # sensor noise
    return np.asarray(np.clip(img, 0, 255), np.uint8)


def frame(i: int, seed: int) -> tuple[np.ndarray, str]:
    """Frame ``i`` of the set: the grayscale image and its expected text ("" = no code)."""
    rng = np.random.default_rng([seed, i])
    bg = _background(rng)
    if i % EMPTY_EVERY == EMPTY_EVERY - 1:
        return _degrade(bg, rng), ""
    text = _payload(rng, i)
    module_px = int(rng.choice([2, 2, 3, 3, 4, 5, 7]))  # 2 px: a small/far code
    return _degrade(_place(bg, _symbol(text, module_px), rng), rng), text


def generate(out: Path, n: int = 240, seed: int = 5) -> list[Frame]:
    """Write ``n`` frames (one in ``EMPTY_EVERY`` empty) into ``out``; return what was written."""
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(n):
        img, text = frame(i, seed)
        name = f"{'empty' if not text else 'code'}-{i:04d}"
        cv2.imwrite(str(out / f"{name}.png"), img)
        (out / f"{name}.txt").write_text(text, "utf-8")
        written.append(Frame(name, text))
    return written


# -- reading a set back (the synthetic one, or ../shared/datasets/qr-real) and judging a result --

# Images holding a second, different code on purpose: qrcode-2/16.png is a "double QR" (an inner
# symbol inside the outer one); its .txt names the outer one, the inner one is no misread.
SECOND_CODE_OK = {"qrcode-2/16.png": "[内側QRコード]\n\n*ダブルQR*\nhttp://d-qr.net/ex/"}


@dataclass(frozen=True)
class Sample:
    key: str  # "<folder>/<file>", e.g. "qrcode-2/16.png"
    gray: np.ndarray
    expected: str  # "" = no code in the image


def real_dataset_dir() -> Path:
    """``$WASTECART_SHARED/datasets/qr-real/zxing-blackbox``, else ``../shared/…`` next to the repo."""
    shared = os.environ.get("WASTECART_SHARED") or Path(__file__).resolve().parents[2] / "shared"
    return Path(shared) / "datasets" / "qr-real" / "zxing-blackbox"


def load(folders: Iterable[Path]) -> list[Sample]:
    """Every ``*.png`` with its ``.txt`` in the folders, as grayscale arrays."""
    import cv2

    out = []
    for folder in folders:
        for png in sorted(folder.glob("*.png")):
            gray = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
            if gray is None:
                raise OSError(f"{png}: not a readable image")
            out.append(Sample(f"{folder.name}/{png.name}", gray, png.with_suffix(".txt").read_text("utf-8")))
    return out


def judge(codes_read: list[str], sample: Sample) -> Literal["read", "none", "wrong"]:
    """"read" if the expected text is among the codes and nothing else is, "none" if no code.

    The dataset's ``.txt`` files store line breaks as LF where some symbols hold CR LF, so CR LF is
    compared as LF; otherwise the text must match exactly, non-ASCII included (the 14 Shift_JIS /
    Chinese / control-character payloads of qrcode-2 are decoded exactly by zxing-cpp in plain text
    mode; a decoder that guesses the charset differently produces mojibake, and that is a misread).
    """
    if not codes_read:
        return "none"
    got = {c.replace("\r\n", "\n") for c in codes_read}
    allowed = {sample.expected} | ({SECOND_CODE_OK[sample.key]} if sample.key in SECOND_CODE_OK else set())
    return "read" if sample.expected and sample.expected in got and got <= allowed else "wrong"


if __name__ == "__main__":
    frames = generate(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 240)
    print(f"{len(frames)} frames in {sys.argv[1]}")
