"""Drawing with Pillow: the CJK font, text and marks as 1-bit bitmaps, the QR symbol, and a whole
:class:`~edge.labels.elements.Layout` as one image or PNG.

Text is drawn without anti-aliasing (crisp on a thermal printer).  Chinese text needs a CJK
TrueType font found by :func:`cjk_font`; without one, :class:`LabelError` names the Debian package
to install.  Pillow and qrcode are imported inside the functions: a process that only lays out
or encodes labels for a printer with its own fonts never loads them.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import LabelError
from edge.labels.content import HAZARDS
from edge.labels.elements import Bar, Bits, Box, Layout, Qr, Text

if TYPE_CHECKING:
    from PIL import Image, ImageFont

FONT_PACKAGE = "fonts-wqy-microhei"  # the Debian package deploy/bootstrap.sh installs
KNOWN_FONTS = (  # tried in order before asking fontconfig: the same font on every cart
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
)
FONT_ENV = "WASTECART_CJK_FONT"  # a font file to use instead (a cart image with its own font)


@functools.cache
def cjk_font() -> Path:
    """A TrueType/OpenType font with Chinese glyphs: ``$WASTECART_CJK_FONT``, known paths, then fontconfig."""
    override = os.environ.get(FONT_ENV)
    if override:
        if not Path(override).is_file():
            raise LabelError("label.font_missing", env=FONT_ENV, path=override)
        return Path(override)
    for known in KNOWN_FONTS:
        if Path(known).is_file():
            return Path(known)
    fc_list = shutil.which("fc-list")
    if fc_list:
        try:
            out = subprocess.run([fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10,
                                 check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        for line in sorted(out.splitlines()):
            path = Path(line.split(":")[0].strip())
            if path.suffix.lower() in (".ttf", ".ttc", ".otf") and path.is_file():
                return path
    raise LabelError("label.no_font", package=FONT_PACKAGE, env=FONT_ENV)


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    path = cjk_font()
    try:
        return ImageFont.truetype(str(path), size=size)
    except OSError as exc:
        raise LabelError("label.font_unreadable", path=path, reason=exc) from exc


def bits_from_image(image: Image.Image) -> Bits:
    """A grayscale image → :class:`Bits` (dark below half-grey becomes a black dot)."""
    one = image.convert("L").point(lambda v: 255 if v < 128 else 0, mode="1")  # PIL "1": bit 1 = 255
    return Bits(one.width, one.height, one.tobytes())


def bits_mask(bits: Bits) -> Image.Image:
    """The black dots as a PIL mode "1" mask (255 where black)."""
    from PIL import Image

    return Image.frombytes("1", (bits.width, bits.height), bits.data)


@functools.lru_cache(maxsize=256)  # captions repeat on every label; values (weights, times) do not
def text_bits(text: str, height: int) -> Bits:
    """``text`` drawn with the CJK font in a ``height``-dot line, without anti-aliasing (crisp on a printer)."""
    from PIL import Image, ImageDraw

    font = _font(height)
    width = max(1, math.ceil(font.getlength(text)))
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"
    draw.text((0, height / 2), text, font=font, fill=0, anchor="lm")
    return bits_from_image(image)


def _diamond(side: int, border: int) -> Image.Image:
    """A white right-angle diamond with a black ``border`` (measured square to its edges)."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(image)
    c = (side - 1) / 2
    draw.polygon([(c, 0), (side - 1, c), (c, side - 1), (0, c)], fill=0)
    inner = c - border * math.sqrt(2)
    draw.polygon([(c, c - inner), (c + inner, c), (c, c + inner), (c - inner, c)], fill=255)
    return image


@functools.cache
def warning_mark(side: int) -> Bits:
    """HJ 421's medical-waste warning mark: a right-angle diamond with a black border and the biohazard sign."""
    from PIL import ImageDraw

    image = _diamond(side, max(2, side // 14))
    draw = ImageDraw.Draw(image)
    c = (side - 1) / 2
    u = side * 0.026  # one unit of the biohazard sign, which spans about 16 units

    def circle(cx: float, cy: float, r: float, fill: int) -> None:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)

    cy = c + u * 0.6  # the sign's centre sits a little low, like the printed mark
    dirs = [(math.cos(math.radians(a)), math.sin(math.radians(a))) for a in (-90, 30, 150)]
    for dx, dy in dirs:
        circle(c + dx * 3.6 * u, cy + dy * 3.6 * u, 4.6 * u, 0)  # the three lobes
    for dx, dy in dirs:
        circle(c + dx * 4.6 * u, cy + dy * 4.6 * u, 3.3 * u, 255)  # their hollows, open outwards
    draw.ellipse([c - 3.9 * u, cy - 3.9 * u, c + 3.9 * u, cy + 3.9 * u], outline=0, width=max(1, round(0.9 * u)))
    circle(c, cy, 1.5 * u, 255)  # the hub
    for dx, dy in dirs:  # the gaps between the lobes at the hub
        draw.line([(c, cy), (c + dx * 2.4 * u, cy + dy * 2.4 * u)], fill=255, width=max(1, round(0.7 * u)))
    return bits_from_image(image)


@functools.cache
def hazard_mark(side: int, hazard: str) -> Bits:
    """An HJ 1276 hazard-characteristic diamond: the letter large, its Chinese name under it."""
    from PIL import ImageDraw

    image = _diamond(side, max(2, side // 16))
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"
    c = side / 2
    draw.text((c, c - side * 0.04), hazard, font=_font(max(8, round(side * 0.26))), fill=0, anchor="ms")
    name = HAZARDS[hazard]
    size = max(8, min(round(side * 0.16), round(side * 0.5 / len(name))))
    draw.text((c, c + side * 0.05), name, font=_font(size), fill=0, anchor="mt")
    return bits_from_image(image)


@functools.cache
def qr_matrix(payload: str) -> tuple[tuple[bool, ...], ...]:
    """The QR symbol's modules (no quiet zone) at ``QR_ECC``, smallest version, as printers choose it."""
    import qrcode
    import qrcode.constants
    from qrcode.exceptions import DataOverflowError

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, border=0)
    try:
        qr.add_data(payload)
        qr.make(fit=True)
    except (DataOverflowError, ValueError) as exc:
        raise LabelError("label.qr_overflow", chars=len(payload), reason=exc) from exc
    return tuple(tuple(bool(m) for m in row) for row in qr.get_matrix())


def qr_modules(payload: str) -> int:
    return len(qr_matrix(payload))


def qr_bits(payload: str, module: int) -> Bits:
    """The symbol as a bitmap with ``module`` dots per module (for the PNG, and for printers without QR)."""
    from PIL import Image

    matrix = qr_matrix(payload)
    n = len(matrix)
    small = Image.frombytes("L", (n, n), bytes(0 if dark else 255 for row in matrix for dark in row))
    return bits_from_image(small.resize((n * module, n * module), Image.Resampling.NEAREST))


def render(lay: Layout) -> Image.Image:
    """The layout as a grayscale image, one pixel per printer dot: what a printer in bitmap mode prints."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (lay.width, lay.height), 255)
    draw = ImageDraw.Draw(image)
    for el in lay.elements:
        if isinstance(el, Text):
            image.paste(0, (el.x, el.y), bits_mask(text_bits(el.text, el.height)))
        elif isinstance(el, Qr):
            image.paste(0, (el.x, el.y), bits_mask(qr_bits(el.payload, el.module)))
        elif isinstance(el, Box):
            draw.rectangle([el.x, el.y, el.x + el.width - 1, el.y + el.height - 1], outline=0, width=el.thickness)
        elif isinstance(el, Bar):
            draw.rectangle([el.x, el.y, el.x + el.width - 1, el.y + el.height - 1], fill=0)
        else:
            image.paste(0, (el.x, el.y), bits_mask(el.bits))
    return image


def render_png(lay: Layout, path: Path) -> Path:
    """Write the layout as a PNG (with its dpi, so it prints at true size); ``LabelError`` names the file."""
    image = render(lay)
    try:
        image.save(path, format="PNG", dpi=(lay.dpi, lay.dpi))
    except OSError as exc:
        raise LabelError("label.png_unwritable", path=path, reason=exc.strerror or exc) from exc
    return path
