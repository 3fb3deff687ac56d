"""Where everything goes on a label: its content placed in printer dots as a :class:`Layout`.

:func:`layout` turns a :class:`MedicalLabel` or :class:`HazardousLabel` into a short list of
elements (``edge.labels.elements``).  Widths are planned with the widest glyphs any of our printers
uses (CJK 1 × height, ASCII ⅔ × height: TSPL font "3" is 16×24), so a line that fits here fits on
all of them.  Text is HJ 1276's minimum 3 mm: 24 dots at 203 dpi, exactly the printers' resident
24×24 CJK font (TSPL TSS24.BF2, ESC/POS); titles are twice that.  At 300 dpi 3 mm is 36 dots,
which a resident font (whole multiples of 24) prints at 24 dots (2 mm) so that it still fits:
choose ``cjk="bitmap"`` there when the 3 mm matter (ZPL and bitmaps are exact).

The QR carries only the package code (waste-domain §3: no personal data in the QR), at error
correction ``QR_ECC``, its module the largest that fits with the ISO 4-module quiet zone clear of
other ink (at least ``QR_MIN_MODULE`` dots), and the code is printed as text under it.  Elements
are listed in reading order, which is the order a stream printer (ESC/POS) prints them in.  Text
that does not fit is a :class:`LabelError` naming the field, never a clipped label; the marks are
drawn once (``edge.labels.raster``) and placed as bitmaps.  A medical label's mark follows its
category (``catalogue.Category.mark``): HJ 421's biohazard diamond, or HJ 1276's toxic diamond on
pharmaceutical and chemical waste, which carry no pathogens.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone

from edge import catalogue, messages
from edge.errors import LabelError
from edge.labels.content import MAIN_COMPONENTS_MAX, HazardousLabel, Label, MedicalLabel, format_weight
from edge.labels.elements import Bar, Bitmap, Bits, Box, Element, Layout, Qr, Text
from edge.labels.raster import hazard_mark, qr_modules, warning_mark

DOTS_PER_MM = {203: 8, 300: 12}  # the printers' own rounding (TSPL: SIZE in mm × 8 or 12 dots)
CJK_BASE_DOTS = 24  # dots: height of the printers' resident CJK font; native text scales by whole multiples
MIN_TEXT_MM = 3.0  # mm: HJ 1276's smallest text on labels up to 100×100 mm; we use it for both kinds
ASCII_WIDTH = 2 / 3  # of the text height: the widest ASCII glyph among our printers (TSPL font "3", 16×24)
QR_MIN_MODULE = 4  # dots (0.5 mm at 203 dpi): below this phone and cart cameras start missing codes
QR_MAX_MODULE = 10  # dots: the most TSPL's QRCODE and ZPL's ^BQ accept
QR_QUIET = 4  # modules of white around the symbol (ISO/IEC 18004 quiet zone), kept inside the label
MEDICAL_MM = (100.0, 70.0)  # mm: the usual bag label
INDUSTRIAL_MM = (100.0, 100.0)  # mm: HJ 1276's minimum for containers up to 50 L


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
        raise LabelError("label.too_small", height=height)

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
            raise LabelError("label.bad_dpi", dpi=dpi, known=", ".join(map(str, DOTS_PER_MM)))
        w_mm, h_mm = size_mm
        if not (30 <= w_mm <= 300 and 30 <= h_mm <= 300):
            raise LabelError("label.bad_size", width=w_mm, height=h_mm)
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
            raise LabelError("label.qr_too_big", chars=len(payload), modules=modules, min_dots=QR_MIN_MODULE)
        side, quiet = module * modules, module * QR_QUIET
        if align == "end":
            x, y = x1 - quiet - side, y1 - quiet - side
        else:
            x, y = x0 + (x1 - x0 - side) // 2, y0 + (y1 - y0 - side) // 2
        return Qr(x, y, payload, module, modules)

    def fits(self, y: int, limit: int, caption: str, name: str) -> None:
        """Refuse a row that ends below ``limit``, naming the field (its caption, its attribute)."""
        if y > limit:
            w, h = self.size_mm
            raise LabelError("label.too_much", field=messages.Text(caption, name),
                             size=messages.Text("", f"{w:g}×{h:g} mm label at {self.dpi} dpi"))

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


def format_time(when: datetime) -> str:
    """``2026-12-07 21:40 +08:00``: an aware time carries its UTC offset (a label read in another zone,
    or on a host set to UTC, still says when); a naive one prints without."""
    text = f"{when:%Y-%m-%d %H:%M}"
    offset = when.utcoffset()
    if offset is None:
        return text
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{text} {sign}{hours:02d}:{minutes:02d}"


# The label's mark per ``catalogue.Category.mark``: HJ 421's biohazard diamond for waste that carries
# pathogens, HJ 1276's toxic diamond for drugs and chemicals (never the biohazard sign on those).
MARKS: dict[str, Callable[[int], Bits]] = {
    "biohazard": warning_mark,
    "toxic": lambda side: hazard_mark(side, "T"),
}


def medical_mark(category: str | None, side: int) -> Bits:
    """The mark a medical label of ``category`` carries (no category: the HJ 421 biohazard mark)."""
    return MARKS[catalogue.CATEGORY[category].mark if category else "biohazard"](side)


def _medical(label: MedicalLabel, page: _Page) -> None:
    """Left column: mark, warning panel, QR; right column: title and fields; code text at the bottom."""
    pad = page.mm(3)
    col = page.mm(22)
    mark = page.mm(20)
    page.add(Bitmap(pad + (col - mark) // 2, pad, medical_mark(label.category, mark)))
    # HJ 421 warning-text panel: 2:1, black border, "警告！" and the kind of waste.
    panel_y = pad + mark + page.mm(1)
    panel_h = col // 2
    page.add(Box(pad, panel_y, col, panel_h, max(2, page.mm(0.4))))
    name = catalogue.CATEGORY[label.category].zh if label.category else "医疗废物"
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
    components = bool(label.main_components)
    if label.category:
        c = catalogue.CATEGORY[label.category]
        category = f"{c.zh} HW01 {c.waste_code}"
        components = components or c.needs_components
    when = format_time(label.produced_at) if label.produced_at else ""
    weight = format_weight(label.weight_g) if label.weight_g is not None else ""
    limit = code_y - page.mm(1) if max(text_width(c, page.th) for c in code_lines) > col else page.height - pad
    rows = [("产生单位", "org_name", label.org_name), ("科室", "department", label.department),
            ("类别", "category", category)]
    if components:  # only where the category needs it, or when given
        rows.append(("主要成分", "main_components", label.main_components))
    rows += [("重量", "weight_g", weight), ("产生时间", "produced_at", when), ("备注", "notes", label.notes)]
    for caption, name, value in rows:
        y = page.row(x, y, width, caption, value)
        page.fits(y - (page.pitch - page.th), limit, caption, name)
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
    for caption, name, value in (
        ("废物名称", "waste_name", label.waste_name),
        ("废物类别", "hw_class", f"{label.hw_class}  废物代码：{label.waste_code}"),
        ("废物形态", "form", label.form), ("主要成分", "main_components", label.main_components),
        ("有害成分", "harmful_components", label.harmful_components),
        ("注意事项", "precautions", label.precautions), ("产生/收集单位", "org_name", label.org_name),
        ("联系人和联系方式", "contact", contact), ("产生日期", "produced_on", f"{label.produced_on:%Y-%m-%d}"),
        ("废物重量", "weight_g", weight),
        ("数字识别码", "digital_id", [digital[:18], digital[18:]]
         if text_width(f"数字识别码：{digital}", page.th) > width else digital),
        ("备注", "remarks", label.remarks),
    ):
        y = page.row(x, y, width, caption, value)
        page.fits(y - (page.pitch - page.th), limit, caption, name)
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
        raise LabelError("label.hazard_marks", count=n)
    for i, hazard in enumerate(hazards):
        row, colno = divmod(i, per_row)
        page.add(Bitmap(x + colno * side + (width - per_row * side) // 2, y + row * side,
                        hazard_mark(side, hazard)))


# The longest medical labels a cart prints, one per category: a signed bag code of its organisation
# with a 12-character bag id (mac and check characters are placeholders of the right length), five
# digits of grams, a full date and time with its offset, every note the category takes, and
# MAIN_COMPONENTS_MAX characters of components where it needs them.  Chinese characters are the
# widest glyphs, so the samples are Chinese.
SAMPLE_DEPARTMENT = "科" * 12  # without the roster's names: a long department name
SAMPLE_WHEN = datetime(2026, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=8)))
SAMPLE_COMPONENTS = "成" * MAIN_COMPONENTS_MAX


def longest_notes(category: str) -> str:
    """Every LABEL_NOTES text that applies to ``category``, joined as the workflow joins them."""
    return "；".join(n.zh for n in catalogue.LABEL_NOTES if not n.categories or category in n.categories)


def check_fits(org: str, org_name: str, dpi: int, size_mm: tuple[float, float],
               departments: Iterable[str] = ()) -> None:
    """Lay out the longest medical label of each category this cart will print, with ``org_name``
    and the longest of ``departments`` (the roster's department names; a 12-character name without).

    Run once at start-up by the composition root: a label size its text cannot fit would otherwise
    fail every print on the ward.  Raises the layout's own :class:`LabelError` (which field does
    not fit, or which size or dpi is refused).
    """
    department = max(departments, key=lambda d: text_width(d, CJK_BASE_DOTS), default=SAMPLE_DEPARTMENT)
    for c in catalogue.CATEGORIES:
        sample = MedicalLabel(code=f"WS1.B.{org}.P00000000000.{c.letter}.AAAAAA.00", org_name=org_name,
                              department=department, category=c.id, weight_g=59_999, produced_at=SAMPLE_WHEN,
                              notes=longest_notes(c.id),
                              main_components=SAMPLE_COMPONENTS if c.needs_components else "")
        layout(sample, dpi, size_mm)
