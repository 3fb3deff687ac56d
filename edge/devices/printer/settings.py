"""The printer's settings (``[printer]`` of the cart's config): typed, frozen, checked when loaded.

Light on purpose: ``edge.config`` imports this, and the URL check needs only the pure URL
parsers of ``urls`` (no transport, no connection, no pyserial).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from edge.devices.printer.urls import parse_url
from edge.errors import PrinterError


class PrinterSettings(BaseModel):
    """The label printer (edge.devices.printer); no ``url``: the cart has none and prints nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(None, description="tcp://host:9100, usblp:///dev/usb/lp0 or "
                                              "serial:///dev/ttyUSB0?baud=9600; none = no printer")
    language: Literal["tspl", "zpl", "escpos"] = "tspl"
    dpi: Literal[203, 300] = 203
    cjk: Literal["font", "bitmap"] | None = None  # Chinese text: none = the language's default (edge.devices.printer)
    # Ask the printer before each job (paper out, head open); false for printers that never answer
    # (many usblp clones), which otherwise fail every job with "打印机无响应".
    status: bool = True
    timeout_s: float = Field(1.0, gt=0, le=10)  # s the printer gets to answer: they answer at once or never
    medical_mm: tuple[float, float] = (100.0, 70.0)  # medical-waste label, width × height (mm)
    industrial_mm: tuple[float, float] = (100.0, 100.0)  # HJ 1276 label: at least 100×100 mm up to 50 L containers

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_url(v)
            except PrinterError as exc:
                raise ValueError(str(exc)) from exc
        return v

    @field_validator("medical_mm", "industrial_mm")
    @classmethod
    def _size(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(30 <= side <= 300 for side in v):
            raise ValueError("label size: width and height in mm, each 30-300")
        return v

    @field_validator("industrial_mm")
    @classmethod
    def _hj1276(cls, v: tuple[float, float]) -> tuple[float, float]:
        if min(v) < 100:
            raise ValueError("HJ 1276 labels are at least 100×100 mm")
        return v
