"""Waste labels: what they say (two dataclasses), one device-independent layout, PNG rendering.

- :class:`MedicalLabel` — the Chinese label of a medical-waste bag or box (Decree 36 content on an
  HJ 421 package: producing institution, department, category, weight, date and time, package code,
  special notes) with the HJ 421 warning mark (black-bordered diamond) and its warning text panel.
- :class:`HazardousLabel` — the HJ 1276-2022 hazardous-waste label (industrial waste): the full field
  set, hazard-characteristic diamonds and the 37-character digital identification code.

:func:`layout` turns either into a :class:`Layout`: a short list of elements in printer dots
(:class:`Text`, :class:`Qr`, :class:`Box`, :class:`Bar`, :class:`Bitmap`).  The same list is drawn
to PNG here (:func:`render`) and encoded for TSPL, ZPL and ESC/POS in ``edge.printer``, so the
screen preview and every printer show one label.  Widths are planned with the widest glyphs any
of those printers uses (CJK 1 × height, ASCII ⅔ × height: TSPL font "3" is 16×24), so a line that
fits here fits on all of them.  Text is HJ 1276's minimum 3 mm: 24 dots at 203 dpi, exactly the
printers' resident 24×24 CJK font (TSPL TSS24.BF2, ESC/POS); titles are twice that.  At 300 dpi
3 mm is 36 dots, which a resident font (whole multiples of 24) prints at 24 dots (2 mm) so that
it still fits: choose ``cjk="bitmap"`` there when the 3 mm matter (ZPL and bitmaps are exact).

The QR carries only the package code (waste-domain §3: no personal data in the QR), at error
correction Q, its module the largest that fits with the ISO 4-module quiet zone clear of other
ink (at least ``QR_MIN_MODULE`` dots), and the code is printed as text under it.  Elements are
listed in reading order, which is the order a stream printer (ESC/POS) prints them in.  Chinese
text is drawn with a CJK TrueType font found by :func:`cjk_font`; without one, :class:`LabelError`
names the Debian package to install.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from edge import codes, wire
from edge.errors import CodeError, LabelError

if TYPE_CHECKING:
    from PIL import Image, ImageFont

DOTS_PER_MM = {203: 8, 300: 12}  # the printers' own rounding (TSPL: SIZE in mm × 8 or 12 dots)
CJK_BASE_DOTS = 24  # dots: height of the printers' resident CJK font; native text scales by whole multiples
MIN_TEXT_MM = 3.0  # mm: HJ 1276's smallest text on labels up to 100×100 mm; we use it for both kinds
ASCII_WIDTH = 2 / 3  # of the text height: the widest ASCII glyph among our printers (TSPL font "3", 16×24)
QR_ECC = "Q"  # error correction: 25 % of the symbol may be dirty or creased and it still reads
QR_MIN_MODULE = 4  # dots (0.5 mm at 203 dpi): below this phone and cart cameras start missing codes
QR_MAX_MODULE = 10  # dots: the most TSPL's QRCODE and ZPL's ^BQ accept
QR_QUIET = 4  # modules of white around the symbol (ISO/IEC 18004 quiet zone), kept inside the label
MEDICAL_MM = (100.0, 70.0)  # mm: the usual bag label
INDUSTRIAL_MM = (100.0, 100.0)  # mm: HJ 1276's minimum for containers up to 50 L
FONT_PACKAGE = "fonts-wqy-microhei"  # the Debian package deploy/bootstrap.sh installs
KNOWN_FONTS = (  # tried in order before asking fontconfig: the same font on every cart
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
)
FONT_ENV = "WASTECART_CJK_FONT"  # a font file to use instead (a cart image with its own font)

# HJ 1276 hazard characteristics: letter -> Chinese name (waste-domain §2).
HAZARDS = {"T": "毒性", "C": "腐蚀性", "I": "易燃性", "R": "反应性", "In": "感染性"}
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
_USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]  # 1, 3, 9, 27, 19, 26, …
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- label content ------------------------------------------------------------------------------


def _clean(value: str, what: str) -> str:
    """Printer languages end commands at control characters, so a field may not hold any."""
    if _CONTROL.search(value):
        raise LabelError(f"{what} 含有换行或控制字符 (control characters are not allowed in a label field)")
    return value.strip()


def parse_category(text: str) -> str:
    """``INFECTIOUS`` / ``infectious`` / ``感染性废物`` / ``感染性`` / the bag-code letter ``I`` → the enum."""
    value = text.strip()
    with contextlib.suppress(ValueError):
        return codes.category_name(value.upper())
    for enum, (name, _code) in wire.CATEGORIES.items():
        if value in (name, name.removesuffix("废物")):
            return enum
    raise LabelError(f"未知废物类别 {text!r} (unknown category; one of {', '.join(wire.CATEGORIES)})")


def format_weight(weight_g: int) -> str:
    """Integer grams as kilograms with three decimals, without going through a float."""
    return f"{weight_g // 1000}.{weight_g % 1000:03d} kg"


@dataclass(frozen=True)
class MedicalLabel:
    """A medical-waste bag or box label.  Empty fields print their caption only (to fill in by hand).

    ``category`` is the wire enum (``INFECTIOUS`` …); with a bag code (``WC1.B…``) it may be left out
    and is taken from the code's category letter, and if both are given they must agree.
    """

    code: str  # the package code: the QR payload and the text under it
    org_name: str = ""  # 医疗废物产生单位
    department: str = ""  # 科室
    category: str | None = None
    weight_g: int | None = None
    produced_at: datetime | None = None  # 产生日期/时间
    notes: str = ""  # 特别说明: "含少量药物性废物", "传染病患者 双层包装" …

    def __post_init__(self) -> None:
        code = _clean(self.code, "二维码内容")
        if not code:
            raise LabelError("标签缺少袋码 (code: the package code is empty)")
        object.__setattr__(self, "code", code)
        for name, what in (("org_name", "产生单位"), ("department", "科室"), ("notes", "备注")):
            object.__setattr__(self, name, _clean(getattr(self, name), what))
        from_code = _bag_category(code)
        category = from_code if self.category is None else parse_category(self.category)
        if from_code is not None and category is not None and category != from_code:
            raise LabelError(f"类别 {wire.CATEGORIES[category][0]} 与袋码中的类别 {wire.CATEGORIES[from_code][0]} "
                             f"不一致 (category does not match the bag code's category letter)")
        object.__setattr__(self, "category", category)
        if self.weight_g is not None and self.weight_g < 0:
            raise LabelError(f"重量不能为负 (weight_g: {self.weight_g})")


def _bag_category(code: str) -> str | None:
    try:
        return codes.decode(code).category
    except CodeError:
        return None  # not one of our bag codes: a configured external or a free-form payload


def uscc_check_char(first17: str) -> str:
    """The 18th character of a unified social credit code (GB 32100-2015, weights 3^i mod 31)."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def check_uscc(uscc: str) -> str:
    value = uscc.strip().upper()
    if len(value) != 18 or not set(value) <= set(_USCC_CHARS):
        raise LabelError(f"统一社会信用代码 {uscc!r} 格式错误 (USCC: 18 of 0-9 and A-Y without I O S V Z)")
    if uscc_check_char(value[:17]) != value[17]:
        raise LabelError(f"统一社会信用代码 {uscc!r} 校验位错误 (USCC check character should be "
                         f"{uscc_check_char(value[:17])})")
    return value


@dataclass(frozen=True)
class HazardousLabel:
    """An HJ 1276-2022 hazardous-waste label (industrial waste; medical waste uses :class:`MedicalLabel`)."""

    code: str  # the package code: QR payload and the text under it
    waste_name: str  # 废物名称
    hw_class: str  # 废物类别, "HW08"
    waste_code: str  # 废物代码, "900-249-08" (national list, 8 digits)
    uscc: str  # 统一社会信用代码 of the producing / collecting unit: first segment of the digital code
    produced_on: date  # 产生日期
    hazards: tuple[str, ...] = ("T",)  # 危险特性: letters of HAZARDS
    form: str = ""  # 废物形态: 固态 / 半固态 / 液态 / 气态
    main_components: str = ""  # 主要成分
    harmful_components: str = ""  # 有害成分
    precautions: str = ""  # 注意事项
    org_name: str = ""  # 产生/收集单位
    contact: str = ""  # 联系人
    phone: str = ""  # 联系方式
    weight_g: int | None = None  # 废物重量
    seq: int = 1  # the waste's sequence number that day: last segment of the digital code
    remarks: str = ""  # 备注

    def __post_init__(self) -> None:
        captions = {"code": "二维码内容", "waste_name": "废物名称", "form": "废物形态", "main_components": "主要成分",
                    "harmful_components": "有害成分", "precautions": "注意事项", "org_name": "产生/收集单位",
                    "contact": "联系人", "phone": "联系方式", "remarks": "备注"}
        for name, what in captions.items():
            object.__setattr__(self, name, _clean(getattr(self, name), what))
        if not self.code:
            raise LabelError("标签缺少袋码 (code: the package code is empty)")
        if not self.waste_name:
            raise LabelError("缺少废物名称 (waste_name: required on an HJ 1276 label)")
        hw_class = self.hw_class.strip().upper()
        if not re.fullmatch(r"HW\d{2}", hw_class):
            raise LabelError(f"废物类别 {self.hw_class!r} 格式错误 (hw_class: like HW08)")
        waste_code = self.waste_code.strip()
        if not re.fullmatch(r"\d{3}-\d{3}-\d{2}", waste_code):
            raise LabelError(f"废物代码 {self.waste_code!r} 格式错误 (waste_code: like 900-249-08)")
        if waste_code[-2:] != hw_class[2:]:
            raise LabelError(f"废物代码 {waste_code} 与废物类别 {hw_class} 不一致 (the code's last two digits are "
                             f"its HW class)")
        object.__setattr__(self, "hw_class", hw_class)
        object.__setattr__(self, "waste_code", waste_code)
        object.__setattr__(self, "uscc", check_uscc(self.uscc))
        unknown = [h for h in self.hazards if h not in HAZARDS]
        if unknown or not self.hazards or len(set(self.hazards)) != len(self.hazards):
            raise LabelError(f"危险特性 {','.join(self.hazards) or '（空）'} 不合法 (hazards: one or more of "
                             f"{', '.join(HAZARDS)}, each once)")
        if not 1 <= self.seq <= 999:
            raise LabelError(f"序号 {self.seq} 超出范围 (seq: 1-999, the digital code's last 3 digits)")
        if self.weight_g is not None and self.weight_g < 0:
            raise LabelError(f"重量不能为负 (weight_g: {self.weight_g})")

    @property
    def digital_id(self) -> str:
        """The 37-character digital identification code (数字识别码).

        HJ 1276 gives four segments totalling 37 characters: unit code, waste code, date, sequence.
        The breakdown used here — USCC (18) + waste code without hyphens (8) + ``YYYYMMDD`` (8) +
        sequence (3) — is an inference (waste-domain §4) to confirm against HJ 1276 Annex A.
        """
        return f"{self.uscc}{self.waste_code.replace('-', '')}{self.produced_on:%Y%m%d}{self.seq:03d}"


Label = MedicalLabel | HazardousLabel


# --- the layout ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bits:
    """A 1-bit image: rows of ``row_bytes`` bytes, most significant bit first, **1 = black**."""

    width: int
    height: int
    data: bytes

    @property
    def row_bytes(self) -> int:
        return (self.width + 7) // 8

    def __post_init__(self) -> None:
        if len(self.data) != self.row_bytes * self.height:
            raise LabelError(f"bitmap {self.width}×{self.height}: {len(self.data)} bytes, expected "
                             f"{self.row_bytes * self.height}")


@dataclass(frozen=True)
class Text:
    """One line of text; ``(x, y)`` is the top-left of its ``height``-dot line box."""

    x: int
    y: int
    text: str
    height: int


@dataclass(frozen=True)
class Qr:
    """A QR symbol at error correction ``QR_ECC``; ``(x, y)`` is the top-left of the symbol (quiet zone outside)."""

    x: int
    y: int
    payload: str
    module: int  # dots per module
    modules: int  # modules per side (from the version our encoder chose: the printers choose the same)

    @property
    def side(self) -> int:
        return self.module * self.modules


@dataclass(frozen=True)
class Box:
    """A rectangle outline; the lines lie inside ``width`` × ``height``."""

    x: int
    y: int
    width: int
    height: int
    thickness: int


@dataclass(frozen=True)
class Bar:
    """A filled black rectangle."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Bitmap:
    x: int
    y: int
    bits: Bits


Element = Text | Qr | Box | Bar | Bitmap


@dataclass(frozen=True)
class Layout:
    """A label in printer dots: what every renderer and encoder draws.

    ``elements`` are in reading order (mark, title, fields, QR, code): a stream printer without
    x/y (ESC/POS) prints them in this order, one under the other.
    """

    width: int
    height: int
    dpi: int
    width_mm: float
    height_mm: float
    elements: tuple[Element, ...]


def text_width(text: str, height: int) -> int:
    """Planned width in dots: CJK (anything not ASCII) 1 × height, ASCII ⅔ × height (module docstring)."""
    ascii_w = math.ceil(height * ASCII_WIDTH)
    return sum(ascii_w if c.isascii() else height for c in text)


def wrap(text: str, width: int, height: int, first: int | None = None) -> list[str]:
    """Greedy line breaking: between CJK characters anywhere, ASCII words at spaces (or split if too long).

    ``first`` is the first line's width when it differs (a caption before it).
    """
    lines: list[str] = []
    line = ""

    def room() -> int:
        return first if first is not None and not lines else width

    if min(width, width if first is None else first) < text_width("国", height):
        raise LabelError(f"标签太小，放不下 {height} 点高的文字 (label too small: no room for a line of text "
                         f"{height} dots high; use a larger label size)")

    for token in re.findall(r"[!-~]+| |.", text):
        if text_width(line + token, height) <= room():
            line += token
            continue
        if line.strip() or (first is not None and not lines):
            lines.append(line.rstrip())
        line = "" if token == " " else token
        while text_width(line, height) > room():  # a word longer than the line: split it
            cut = 1
            while cut < len(line) and text_width(line[:cut + 1], height) <= room():
                cut += 1
            lines.append(line[:cut])
            line = line[cut:]
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


class _Page:
    """mm → dots, text rows with captions and hanging indents, and the overflow check."""

    def __init__(self, size_mm: tuple[float, float], dpi: int) -> None:
        if dpi not in DOTS_PER_MM:
            raise LabelError(f"分辨率 {dpi} dpi 不支持 (dpi: one of {', '.join(map(str, DOTS_PER_MM))})")
        w_mm, h_mm = size_mm
        if not (30 <= w_mm <= 300 and 30 <= h_mm <= 300):
            raise LabelError(f"标签尺寸 {w_mm}×{h_mm} mm 不合理 (label size: 30-300 mm each side)")
        self.size_mm = size_mm
        self.dpi = dpi
        self.dpm = DOTS_PER_MM[dpi]
        self.width, self.height = round(w_mm * self.dpm), round(h_mm * self.dpm)
        self.th = max(CJK_BASE_DOTS, round(MIN_TEXT_MM * self.dpm))  # text height, dots (module docstring)
        self.pitch = self.th * 7 // 6  # dots from one text row to the next (24 → 28: 3.5 mm at 203 dpi)
        self.elements: list[Element] = []

    def mm(self, value: float) -> int:
        return round(value * self.dpm)

    def add(self, element: Element) -> None:
        self.elements.append(element)

    def text(self, x: int, y: int, text: str, height: int | None = None) -> None:
        if text:
            self.add(Text(x, y, text, height or self.th))

    def row(self, x: int, y: int, width: int, caption: str, value: str | Sequence[str]) -> int:
        """``caption：value`` wrapped into ``width``; returns the next row's y.

        Continuation lines hang under the value, unless the caption is long (over a third of the
        width): then they start under the caption, so a long caption does not squeeze the value.
        """
        head = f"{caption}："
        head_w = text_width(head, self.th)
        indent = head_w if head_w <= width // 3 else 0
        lines: list[str] = []
        for part in [value] if isinstance(value, str) else value:
            lines += wrap(part, width - indent, self.th, None if lines else width - head_w)
        for i, line in enumerate(lines or [""]):
            if i == 0:
                self.text(x, y, head + line)
            else:
                self.text(x + indent, y, line)
            y += self.pitch
        return y

    def place_qr(self, payload: str, x0: int, y0: int, x1: int, y1: int, align: str = "center") -> Qr:
        """The largest-module symbol whose quiet zone fits the ink-free area ``[x0, x1) × [y0, y1)``.

        Centred in the area, or with ``align="end"`` in its bottom-right corner.
        """
        modules = qr_modules(payload)
        span = modules + 2 * QR_QUIET
        module = min(QR_MAX_MODULE, (x1 - x0) // span, (y1 - y0) // span)
        if module < QR_MIN_MODULE:
            raise LabelError(f"二维码内容太长，标签上放不下 (QR payload of {len(payload)} characters needs "
                             f"{modules}×{modules} modules: less than {QR_MIN_MODULE} dots each on this label)")
        side, quiet = module * modules, module * QR_QUIET
        if align == "end":
            x, y = x1 - quiet - side, y1 - quiet - side
        else:
            x, y = x0 + (x1 - x0 - side) // 2, y0 + (y1 - y0 - side) // 2
        return Qr(x, y, payload, module, modules)

    def fits(self, y: int, limit: int, what: str) -> None:
        if y > limit:
            w, h = self.size_mm
            raise LabelError(f"标签内容太多，{what} 放不下 (the text does not fit on a {w:g}×{h:g} mm label "
                             f"at {self.dpi} dpi: shorten it)")

    def done(self) -> Layout:
        return Layout(self.width, self.height, self.dpi, self.size_mm[0], self.size_mm[1], tuple(self.elements))


def layout(label: Label, dpi: int = 203, size_mm: tuple[float, float] | None = None) -> Layout:
    """Place ``label``'s content on a label of ``size_mm`` (the kind's default) at ``dpi``."""
    if isinstance(label, MedicalLabel):
        page = _Page(size_mm or MEDICAL_MM, dpi)
        _medical(label, page)
    else:
        page = _Page(size_mm or INDUSTRIAL_MM, dpi)
        _industrial(label, page)
    return page.done()


def _code_lines(page: _Page, code: str, width: int) -> list[str]:
    return wrap(code, width, page.th)


def _medical(label: MedicalLabel, page: _Page) -> None:
    """Left column: warning mark, warning panel, QR; right column: title and fields; code text at the bottom."""
    pad = page.mm(3)
    col = page.mm(22)
    mark = page.mm(20)
    page.add(Bitmap(pad + (col - mark) // 2, pad, warning_mark(mark)))
    # HJ 421 warning-text panel: 2:1, black border, "警告！" and the kind of waste.
    panel_y = pad + mark + page.mm(1)
    panel_h = col // 2
    page.add(Box(pad, panel_y, col, panel_h, max(2, page.mm(0.4))))
    name = wire.CATEGORIES[label.category][0] if label.category else "医疗废物"
    gap = (panel_h - 2 * page.th) // 3
    for i, line in enumerate(("警告！", name)):
        page.text(pad + (col - text_width(line, page.th)) // 2, panel_y + gap + i * (page.th + gap), line)
    # The package code as text along the bottom, under the QR (left-aligned with it).
    code_lines = _code_lines(page, label.code, page.width - 2 * pad)
    code_y = page.height - pad - len(code_lines) * page.pitch + (page.pitch - page.th)
    right = pad + col + page.mm(3)  # where the right column's ink starts
    # Right column: title and the Decree 36 fields.
    x = right
    width = page.width - pad - x
    page.text(x, pad, "医疗废物", 2 * page.th)
    y = pad + 2 * page.th + page.mm(1.5)
    category = ""
    if label.category:
        cname, hw = wire.CATEGORIES[label.category]
        category = f"{cname} HW01 {hw}"
    when = f"{label.produced_at:%Y-%m-%d %H:%M}" if label.produced_at else ""
    weight = format_weight(label.weight_g) if label.weight_g is not None else ""
    limit = code_y - page.mm(1) if max(text_width(c, page.th) for c in code_lines) > col else page.height - pad
    for caption, value in (("产生单位", label.org_name), ("科室", label.department), ("类别", category),
                           ("重量", weight), ("产生时间", when), ("备注", label.notes)):
        y = page.row(x, y, width, caption, value)
        page.fits(y - (page.pitch - page.th), limit, caption)
    page.add(page.place_qr(label.code, 0, panel_y + panel_h, right, code_y))
    for i, line in enumerate(code_lines):
        w = text_width(line, page.th)
        page.text(pad + (col - w) // 2 if w <= col else pad, code_y + i * page.pitch, line)


def _industrial(label: HazardousLabel, page: _Page) -> None:
    """HJ 1276: border, title, fields on the left; hazard diamonds and the QR on the right; code text under the QR."""
    edge, line = page.mm(1), page.mm(1)
    page.add(Box(edge, edge, page.width - 2 * edge, page.height - 2 * edge, line))  # HJ 1276: ≥ 1 mm border
    pad = edge + line + page.mm(3)  # HJ 1276: ≥ 3 mm inside the border
    title = "危险废物"
    page.text((page.width - text_width(title, 2 * page.th)) // 2, pad, title, 2 * page.th)
    y = pad + 2 * page.th + page.mm(1)
    page.add(Bar(pad, y, page.width - 2 * pad, max(2, page.mm(0.5))))
    top = y + page.mm(1.5)
    col = page.mm(24)  # right column: hazard diamonds, then the QR
    gutter = page.mm(2)  # between the fields and the right column
    rx = page.width - pad - col
    code_lines = _code_lines(page, label.code, page.width - 2 * pad)
    code_y = page.height - pad - len(code_lines) * page.pitch + (page.pitch - page.th)
    # Left column: the HJ 1276 fields.
    x, width = pad, rx - gutter - pad
    weight = format_weight(label.weight_g) if label.weight_g is not None else ""
    contact = " ".join(p for p in (label.contact, label.phone) if p)
    digital = label.digital_id
    limit = code_y - page.mm(1) if text_width(code_lines[0], page.th) > col else page.height - pad
    y = top
    for caption, value in (
        ("废物名称", label.waste_name), ("废物类别", f"{label.hw_class}  废物代码：{label.waste_code}"),
        ("废物形态", label.form), ("主要成分", label.main_components), ("有害成分", label.harmful_components),
        ("注意事项", label.precautions), ("产生/收集单位", label.org_name), ("联系人和联系方式", contact),
        ("产生日期", f"{label.produced_on:%Y-%m-%d}"), ("废物重量", weight),
        ("数字识别码", [digital[:18], digital[18:]] if text_width(f"数字识别码：{digital}", page.th) > width
         else digital),
        ("备注", label.remarks),
    ):
        y = page.row(x, y, width, caption, value)
        page.fits(y - (page.pitch - page.th), limit, caption)
    # Right column, then the code text under the QR (right-aligned with it).
    qr = page.place_qr(label.code, rx - gutter, top + page.pitch, page.width - edge - line, code_y, "end")
    page.text(rx, top, "危险特性")
    _hazard_marks(page, label.hazards, rx, top + page.pitch, col, qr.y - qr.module * QR_QUIET)
    page.add(qr)
    for i, text in enumerate(code_lines):
        page.text(page.width - pad - text_width(text, page.th), code_y + i * page.pitch, text)


def _hazard_marks(page: _Page, hazards: Sequence[str], x: int, y: int, width: int, bottom: int) -> None:
    """One diamond per hazard characteristic, as large as the space allows (one or two per row)."""
    n = len(hazards)
    best = max((min(width // k, (bottom - y) // math.ceil(n / k)), k) for k in (1, 2))
    side, per_row = best
    if side < page.mm(8):
        raise LabelError(f"危险特性标志放不下 ({n} hazard marks do not fit: use a larger label)")
    for i, hazard in enumerate(hazards):
        row, colno = divmod(i, per_row)
        page.add(Bitmap(x + colno * side + (width - per_row * side) // 2, y + row * side,
                        hazard_mark(side, hazard)))


# --- fonts and drawing --------------------------------------------------------------------------


@functools.cache
def cjk_font() -> Path:
    """A TrueType/OpenType font with Chinese glyphs: ``$WASTECART_CJK_FONT``, known paths, then fontconfig."""
    override = os.environ.get(FONT_ENV)
    if override:
        if not Path(override).is_file():
            raise LabelError(f"中文字体文件不存在 ({FONT_ENV}={override}: no such file)")
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
    raise LabelError(f"找不到中文字体 (no CJK font found: apt-get install {FONT_PACKAGE}, or set {FONT_ENV})")


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    path = cjk_font()
    try:
        return ImageFont.truetype(str(path), size=size)
    except OSError as exc:
        raise LabelError(f"中文字体无法读取 ({path}: {exc})") from exc


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
        raise LabelError(f"二维码内容太长 (QR payload of {len(payload)} characters: {exc})") from exc
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
        raise LabelError(f"无法写入 {path} (cannot write the PNG: {exc.strerror or exc})") from exc
    return path
