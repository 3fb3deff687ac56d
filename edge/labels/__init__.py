"""Waste labels: what they say, where it goes, how it is drawn.

- ``content``  — :class:`MedicalLabel` (HJ 421 / Decree 36, bags and boxes of medical waste) and
  :class:`HazardousLabel` (HJ 1276-2022, industrial hazardous waste): fields checked when made,
  category names from ``edge.catalogue``, the 37-character digital identification code.
- ``elements`` — the device-independent drawing: :class:`Layout` of :class:`Text`, :class:`Qr`,
  :class:`Box`, :class:`Bar`, :class:`Bitmap` in printer dots; pure data.
- ``layout``   — :func:`layout` places a label's content on a label size at a dpi;
  :func:`check_fits` is the start-up check that the configured size holds the longest label;
  :func:`medical_mark` is the mark per category (biohazard, or the toxic diamond).
- ``raster``   — Pillow: the CJK font, text and marks as 1-bit :class:`Bits`, the QR symbol, PNG.

One layout is drawn to PNG here and encoded for TSPL, ZPL and ESC/POS in ``edge.devices.printer``,
so the screen preview and every printer show one label.  Imports flow content, elements →
raster → layout; this package re-exports the names the rest of the code uses.
"""

from __future__ import annotations

from edge.labels.content import (
    HAZARDS,
    MAIN_COMPONENTS_MAX,
    HazardousLabel,
    Label,
    MedicalLabel,
    check_uscc,
    format_weight,
    parse_category,
    uscc_check_char,
)
from edge.labels.elements import QR_ECC, Bar, Bitmap, Bits, Box, Element, Layout, Qr, Text
from edge.labels.layout import (
    ASCII_WIDTH,
    CJK_BASE_DOTS,
    DOTS_PER_MM,
    INDUSTRIAL_MM,
    MARKS,
    MEDICAL_MM,
    MIN_TEXT_MM,
    QR_MAX_MODULE,
    QR_MIN_MODULE,
    QR_QUIET,
    check_fits,
    format_time,
    layout,
    longest_notes,
    medical_mark,
    text_width,
    wrap,
)
from edge.labels.raster import (
    FONT_ENV,
    FONT_PACKAGE,
    KNOWN_FONTS,
    bits_from_image,
    bits_mask,
    cjk_font,
    hazard_mark,
    qr_bits,
    qr_matrix,
    qr_modules,
    render,
    render_png,
    text_bits,
    warning_mark,
)

__all__ = [
    "ASCII_WIDTH", "CJK_BASE_DOTS", "DOTS_PER_MM", "FONT_ENV", "FONT_PACKAGE", "HAZARDS", "INDUSTRIAL_MM",
    "KNOWN_FONTS", "MAIN_COMPONENTS_MAX", "MARKS", "MEDICAL_MM", "MIN_TEXT_MM", "QR_ECC", "QR_MAX_MODULE",
    "QR_MIN_MODULE", "QR_QUIET", "Bar", "Bitmap", "Bits", "Box", "Element", "HazardousLabel", "Label", "Layout",
    "MedicalLabel", "Qr", "Text", "bits_from_image", "bits_mask", "check_fits", "check_uscc", "cjk_font",
    "format_time", "format_weight", "hazard_mark", "layout", "longest_notes", "medical_mark", "parse_category",
    "qr_bits", "qr_matrix", "qr_modules", "render", "render_png", "text_bits", "text_width", "uscc_check_char",
    "warning_mark", "wrap",
]
