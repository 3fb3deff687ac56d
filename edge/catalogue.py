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
    # The label's warning mark: HJ 421's biohazard diamond for waste that carries pathogens; the
    # toxic diamond (HJ 1276 "T") for drugs and chemicals, which are not infectious (waste-domain §2).
    mark: str = "biohazard"   # biohazard | toxic
    needs_components: bool = False  # the label must state 主要成分 (chemical waste: waste-domain §2)


# In the order the kiosk shows them.
CATEGORIES: tuple[Category, ...] = (
    Category("INFECTIOUS", "感染性废物", "Infectious", "841-001-01", "I", "#f5d000"),
    Category("SHARPS", "损伤性废物", "Sharps", "841-002-01", "S", "#e67e22"),
    Category("PATHOLOGICAL", "病理性废物", "Pathological", "841-003-01", "P", "#8e44ad"),
    Category("PHARMACEUTICAL", "药物性废物", "Pharmaceutical", "841-005-01", "D", "#2e86c1", "toxic"),
    Category("CHEMICAL", "化学性废物", "Chemical", "841-004-01", "C", "#17a589", "toxic", needs_components=True),
)
CATEGORY: dict[str, Category] = {c.id: c for c in CATEGORIES}


@dataclass(frozen=True)
class Choice:
    """A fixed choice offered on the kiosk and written into records by ``id`` (names for people)."""

    id: str
    zh: str
    en: str
    categories: tuple[str, ...] = ()  # label notes: the categories it applies to (empty: all)


# Who may do what (waste-domain §8.1 ``person``): a roster entry holds one or more of these.
ROLES: tuple[Choice, ...] = (
    Choice("collector", "收集人员", "collector"),          # opens rounds, weighs, hands over to storage
    Choice("nurse", "科室护士", "ward nurse"),             # signs a handover for her department(s)
    Choice("keeper", "暂存间管理员", "storage keeper"),     # signs a storage check-in and its deviations
    Choice("transporter", "转运人员", "transporter"),      # the carrier's driver: signs a transfer
    Choice("supervisor", "主管", "supervisor"),            # confirms voids, lost bags and corrections
)
ROLE: dict[str, Choice] = {r.id: r for r in ROLES}

# Why a record or a bag is voided (a void also takes free text; OTHER needs it).
VOID_REASONS: tuple[Choice, ...] = (
    Choice("WRONG_WEIGHT", "称重错误", "wrong weight"),
    Choice("WRONG_CATEGORY", "类别选错", "wrong category"),
    Choice("WRONG_LABEL", "标签错误", "wrong label"),
    Choice("DUPLICATE", "重复登记", "registered twice"),
    Choice("WRONG_DEPARTMENT", "科室选错", "wrong department"),
    Choice("OTHER", "其他", "other"),
)
VOID_REASON: dict[str, Choice] = {r.id: r for r in VOID_REASONS}

# The 备注 / 特别说明 a collector may add to a bag's label (Decree 36; waste-domain §1.3, §3).
LABEL_NOTES: tuple[Choice, ...] = (
    Choice("MIXED_DRUGS", "含少量药物性废物", "contains a little pharmaceutical waste", ("INFECTIOUS",)),
    Choice("DOUBLE_BAG", "传染病患者废物 双层包装", "infectious patient: double bag", ("INFECTIOUS", "PATHOLOGICAL")),
    Choice("DISINFECTED", "已就地消毒", "disinfected at source", ("INFECTIOUS", "PATHOLOGICAL")),
)
LABEL_NOTE: dict[str, Choice] = {n.id: n for n in LABEL_NOTES}

# What an incident record reports (waste-domain §8.8; Regulations Art. 13/14: loss must be reported).
INCIDENT_TYPES: tuple[Choice, ...] = (
    Choice("LOST", "医废遗失", "waste lost"),
)
INCIDENT_TYPE: dict[str, Choice] = {i.id: i for i in INCIDENT_TYPES}

# The version of the record bodies the workflow writes now (``body_version``); a body without one is
# version 1 (written before people, dwell and disposal were recorded) and still validates and replays.
BODY_VERSION = 2


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
                        "color": c.color, "mark": c.mark} for c in CATEGORIES],
        "void_reasons": [{"id": r.id, "zh": r.zh, "en": r.en} for r in VOID_REASONS],
        "label_notes": [{"id": n.id, "zh": n.zh, "en": n.en, "categories": list(n.categories)} for n in LABEL_NOTES],
        "device_states": {s.id: {"level": s.level, "zh": s.zh, "en": s.en} for s in DEVICE_STATES},
        "devices": {name: list(states) for name, states in DEVICES.items()},
        "clock_synced": list(CLOCK_SYNCED),
        "line_statuses": dict(LINE_STATUSES),
    }
