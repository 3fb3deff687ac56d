"""The domain catalogue: every fixed fact about waste and devices, once.

Python (the wire contract, QR codes, labels, the workflow), the JSON Schema (checked by
``tests/unit/test_catalogue.py``) and the kiosk page (served at ``GET /api/catalogue``) all take
these from here, so a category or a device state cannot exist in one place and not another.
Pure data, stdlib only: ``edge.wire`` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Category:
    """A medical-waste category (waste-domain §2; 医疗废物分类目录 2021)."""

    id: str           # the wire enum
    zh: str
    en: str
    waste_code: str   # HW01 code of the 2021 national list
    letter: str       # the category letter on our bag labels (edge.codes)
    color: str        # the kiosk button: tells buttons apart at a glance; INFECTIOUS is the bags' yellow


# In the order the kiosk shows them.
CATEGORIES: tuple[Category, ...] = (
    Category("INFECTIOUS", "感染性废物", "Infectious", "841-001-01", "I", "#f5d000"),
    Category("SHARPS", "损伤性废物", "Sharps", "841-002-01", "S", "#e67e22"),
    Category("PATHOLOGICAL", "病理性废物", "Pathological", "841-003-01", "P", "#8e44ad"),
    Category("PHARMACEUTICAL", "药物性废物", "Pharmaceutical", "841-005-01", "D", "#2e86c1"),
    Category("CHEMICAL", "化学性废物", "Chemical", "841-004-01", "C", "#17a589"),
)
CATEGORY: dict[str, Category] = {c.id: c for c in CATEGORIES}


@dataclass(frozen=True)
class DeviceState:
    """A state a device reports (telemetry, the kiosk's status bar): how alarming it is, in words."""

    id: str
    level: str        # ok | busy | off | warn | bad: the status bar's colour
    zh: str
    en: str


# Every state any of the cart's devices reports.  Which device reports which: DEVICES below.
DEVICE_STATES: tuple[DeviceState, ...] = (
    DeviceState("ok", "ok", "正常", "OK"),
    DeviceState("connected", "ok", "正常", "OK"),
    DeviceState("retracted", "ok", "已收回", "in"),
    DeviceState("extended", "ok", "已伸出", "out"),
    DeviceState("connecting", "busy", "连接中", "connecting"),
    DeviceState("reconnecting", "busy", "重连中", "reconnecting"),
    DeviceState("extending", "busy", "伸出中", "moving out"),
    DeviceState("retracting", "busy", "收回中", "moving in"),
    DeviceState("none", "off", "未接入", "not fitted"),
    DeviceState("stopped", "off", "已停止", "stopped"),
    DeviceState("no_frames", "bad", "无数据", "no data"),
    DeviceState("stalled", "bad", "无画面", "no picture"),
    DeviceState("disconnected", "bad", "断开", "disconnected"),
    DeviceState("fault", "bad", "故障", "fault"),
    DeviceState("error", "bad", "错误", "error"),
    DeviceState("unknown", "warn", "未知", "unknown"),
)
DEVICE_STATE: dict[str, DeviceState] = {s.id: s for s in DEVICE_STATES}

# Which states each device reports (telemetry and the kiosk's status bar carry these words only).
DEVICES: dict[str, tuple[str, ...]] = {
    "scale": ("none", "connecting", "connected", "no_frames", "disconnected"),
    "camera": ("none", "connecting", "ok", "stalled", "disconnected", "reconnecting", "stopped"),
    "printer": ("none", "ok", "error"),
    # "unknown": fitted, but neither end stop closed (start-up); treated like retracted: it must extend.
    "actuator": ("none", "unknown", "retracted", "extending", "extended", "retracting", "fault"),
}
ACTUATOR_STATES = DEVICES["actuator"]

# How the cart knew the wall time (the envelope's ``clock.source``); all but "unsynced" are trusted.
CLOCK_SOURCES: tuple[str, ...] = ("ntp", "gateway", "rtc", "unsynced")
CLOCK_SYNCED: tuple[str, ...] = ("ntp", "gateway", "rtc")

# A bag's line at the storage re-weigh, and the status bar level it shows with.
LINE_STATUSES: dict[str, str] = {"waiting": "off", "ok": "ok", "deviation": "bad", "batch": "busy"}


def as_json() -> dict[str, Any]:
    """The catalogue as the kiosk page takes it (``GET /api/catalogue``)."""
    return {
        "categories": [{"id": c.id, "zh": c.zh, "en": c.en, "waste_code": c.waste_code, "letter": c.letter,
                        "color": c.color} for c in CATEGORIES],
        "device_states": {s.id: {"level": s.level, "zh": s.zh, "en": s.en} for s in DEVICE_STATES},
        "devices": {name: list(states) for name, states in DEVICES.items()},
        "clock_synced": list(CLOCK_SYNCED),
        "line_statuses": dict(LINE_STATUSES),
    }
