"""Draws a :class:`Label` on a white Pillow canvas, one pixel per printer dot, as the paper would show it.

QR symbols are drawn by ``qrcode`` from the payload at the module size and error correction the job
asked for; the quiet zone is *not* cleared: if another element or the label edge cuts into it, the
job gets a warning, and a scanner reading the PNG has the same trouble a real one would have.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import threading
from typing import TYPE_CHECKING

from sim_devices.printer.model import QUIET_MODULES, Bitmap, Box, Label, Qr, Text, qr_ecc_constant

if TYPE_CHECKING:
    from PIL import Image, ImageFont

# Known CJK fonts, most likely first (Debian/Ubuntu packages fonts-wqy-microhei, -zenhei, -noto-cjk).
CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
)
FC_TIMEOUT_S = 5.0  # fc-list scans the font folders; seconds before we give up on it
MARGIN = 8  # dots: white border around the drawing when the job gave no label size
_lock = threading.Lock()  # FreeType faces are not thread-safe; connections render one at a time


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """A TrueType font with Chinese glyphs: the known paths, then fontconfig; None = none here."""
    for path in CJK_FONTS:
        if os.path.exists(path):
            return path
    if shutil.which("fc-list"):
        try:
            out = subprocess.run(["fc-list", ":lang=zh", "-f", "%{file}\n"], capture_output=True, text=True,
                                 timeout=FC_TIMEOUT_S, check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        for line in sorted(out.splitlines()):
            if line.lower().endswith((".ttf", ".ttc", ".otf")) and os.path.exists(line):
                return line
    return None


@functools.lru_cache(maxsize=64)
def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)  # no shaping needed for Han


def render(label: Label, font_path: str | None) -> tuple[Image.Image, list[str]]:
    """The label as a greyscale image (0 = black) and the warnings drawing it raised."""
    from PIL import Image, ImageDraw

    warnings: list[str] = []
    width, height = label.width, label.height
    if width <= 0 or height <= 0:
        right, bottom = _extent(label)
        width, height = right + MARGIN, bottom + MARGIN
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    if font_path is None and any(isinstance(e, Text) for e in label.elements):
        warnings.append("no CJK TrueType font found (install fonts-wqy-microhei): text drawn with Pillow's default")
    with _lock:
        for e in label.elements:
            if isinstance(e, Box):
                right, bottom = e.x + max(e.w, 1) - 1, e.y + max(e.h, 1) - 1
                if e.thickness is None:
                    draw.rectangle((e.x, e.y, right, bottom), fill=0)
                else:
                    draw.rectangle((e.x, e.y, right, bottom), outline=0, width=e.thickness)
            elif isinstance(e, Text):
                _text(canvas, e, font_path)
            elif isinstance(e, Qr):
                symbol = qr_symbol(e)
                if symbol is None:
                    warnings.append(f"QR {e.payload[:40]!r}: too much data for a QR symbol")
                    continue
                canvas.paste(symbol, (e.x, e.y))
            else:
                _bitmap(canvas, e)
    for e in label.elements:
        if isinstance(e, Qr):
            warnings += _check_quiet_zone(canvas, e)
    return canvas, warnings


def qr_symbol(qr: Qr) -> Image.Image | None:
    """The symbol without quiet zone, ``module`` dots per module; None when the data cannot fit."""
    import qrcode
    from PIL import Image
    from qrcode.exceptions import DataOverflowError

    code = qrcode.QRCode(error_correction=qr_ecc_constant(qr.ecc), border=0)
    code.add_data(qr.data)
    try:
        code.make(fit=True)
    except DataOverflowError:
        return None
    matrix = code.get_matrix()
    n = len(matrix)
    small = Image.new("L", (n, n), 255)
    small.putdata([0 if dark else 255 for row in matrix for dark in row])
    return small.resize((n * qr.module, n * qr.module), Image.Resampling.NEAREST)


def _text(canvas: Image.Image, e: Text, font_path: str | None) -> None:
    from PIL import Image, ImageDraw

    font = _font(font_path, max(1, e.height))
    text = "".join(c if c.isprintable() else " " for c in e.text)  # a printer prints no control codes
    if abs(e.stretch - 1.0) < 0.01:
        ImageDraw.Draw(canvas).text((e.x, e.y), text, fill=0, font=font)
        return
    _left, _top, right, bottom = font.getbbox(text)
    mask = Image.new("L", (max(1, int(right)), max(1, int(bottom))), 0)
    ImageDraw.Draw(mask).text((0, 0), text, fill=255, font=font)
    mask = mask.resize((max(1, round(mask.width * e.stretch)), mask.height), Image.Resampling.BILINEAR)
    canvas.paste(0, (e.x, e.y), mask)


def _bitmap(canvas: Image.Image, e: Bitmap) -> None:
    from PIL import Image, ImageOps

    # Pillow's raw "1" mode reads a 1 bit as 255: exactly the ink mask (Bitmap bits: 1 = black).
    ink = Image.frombytes("1", (e.width_bytes * 8, e.height), e.data)
    if e.scale_x != 1 or e.scale_y != 1:
        ink = ink.resize((ink.width * e.scale_x, ink.height * e.scale_y), Image.Resampling.NEAREST)
    if e.opaque:
        canvas.paste(ImageOps.invert(ink.convert("L")), (e.x, e.y))
    else:
        canvas.paste(0, (e.x, e.y), ink)


def _check_quiet_zone(canvas: Image.Image, e: Qr) -> list[str]:
    """Warnings when the label edge or other ink cuts into the symbol's 4-module quiet zone."""
    from PIL import Image

    symbol = qr_symbol(e)
    if symbol is None:
        return []
    q, side = QUIET_MODULES * e.module, symbol.width
    name = f"QR {e.payload[:40]!r}"
    if e.x < 0 or e.y < 0 or e.x + side > canvas.width or e.y + side > canvas.height:
        return [f"{name}: symbol extends beyond the label ({canvas.width}×{canvas.height} dots)"]
    warnings = []
    box = (e.x - q, e.y - q, e.x + side + q, e.y + side + q)
    if box[0] < 0 or box[1] < 0 or box[2] > canvas.width or box[3] > canvas.height:
        warnings.append(f"{name}: quiet zone ({QUIET_MODULES} modules) cut by the label edge")
    clipped = (max(0, box[0]), max(0, box[1]), min(canvas.width, box[2]), min(canvas.height, box[3]))
    zone = canvas.crop(clipped)
    zone.paste(Image.new("L", (side, side), 255), (e.x - clipped[0], e.y - clipped[1]))
    darkest = zone.getextrema()[0]
    if isinstance(darkest, int | float) and darkest < 128:
        warnings.append(f"{name}: other ink inside its quiet zone")
    return warnings


def _extent(label: Label) -> tuple[int, int]:
    """Right and bottom of the drawing, for a job that gave no label size."""
    right = bottom = 1
    for e in label.elements:
        if isinstance(e, Box):
            w, h = e.w, e.h
        elif isinstance(e, Text):
            w, h = round(len(e.text) * e.height * e.stretch), e.height
        elif isinstance(e, Qr):
            side = (qr_modules_or_zero(e) + 2 * QUIET_MODULES) * e.module
            w = h = side
        else:
            w, h = e.width_bytes * 8 * e.scale_x, e.height * e.scale_y
        right, bottom = max(right, e.x + w), max(bottom, e.y + h)
    return right, bottom


def qr_modules_or_zero(e: Qr) -> int:
    from sim_devices.printer.model import qr_modules

    return qr_modules(e.data, e.ecc) or 0
