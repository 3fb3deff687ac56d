"""Screen models written by hand to the kiosk contract (``edge/kiosk/contract.py``; each one checked
against the workflow's ``ScreenModel`` and the catalogue by ``tests/unit/test_kiosk_contract.py``), and a
source that serves them: the page is tested against the real server without the cart agent behind it.

``ScriptedSource`` behaves like the agent where the page can tell: it refuses an action id that the
current screen does not offer (``KioskError`` → 400), records what was posted, and bumps a version
on every change so the event stream pushes it.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from edge.kiosk.contract import Changes, KioskError

Model = dict[str, Any]


def zh_en(zh: str, en: str) -> dict[str, str]:
    return {"zh": zh, "en": en}


CATEGORIES: list[Model] = [
    {"id": "INFECTIOUS", "name": zh_en("感染性废物", "Infectious"), "color": "#f5d000"},
    {"id": "SHARPS", "name": zh_en("损伤性废物", "Sharps"), "color": "#e67e22"},
    {"id": "PATHOLOGICAL", "name": zh_en("病理性废物", "Pathological"), "color": "#8e44ad"},
    {"id": "PHARMACEUTICAL", "name": zh_en("药物性废物", "Pharmaceutical"), "color": "#2e86c1"},
    {"id": "CHEMICAL", "name": zh_en("化学性废物", "Chemical"), "color": "#17a589"},
]
NAMES = {c["id"]: c["name"] for c in CATEGORIES}

DEVICE_OK: Model = {"online": True, "unsent": 0, "scale": "connected", "camera": "ok", "printer": "ok",
                    "actuator": "retracted", "clock": "ntp"}


def line(code: str, category: str, grams: int, editable: bool = False, status: str | None = None) -> Model:
    return {"package_code": code, "category": category, "category_name": NAMES[category], "weight_g": grams,
            "editable": editable, "status": status}


def totals(lines: list[Model]) -> list[Model]:
    out: dict[str, Model] = {}
    for ln in lines:
        t = out.setdefault(ln["category"], {"category": ln["category"], "category_name": NAMES[ln["category"]],
                                            "count": 0, "weight_g": 0})
        t["count"] += 1
        t["weight_g"] += ln["weight_g"]
    return list(out.values())


def action(id: str, zh: str, en: str, style: str = "normal", needs: str | None = None,
           reasons: list[Model] | None = None) -> Model:
    a: Model = {"id": id, "label": zh_en(zh, en), "style": style, "needs": needs}
    if reasons is not None:
        a["reasons"] = reasons
    return a


# As edge.catalogue.VOID_REASONS (the contract test checks it): what a "needs: reason" action lists.
REASONS: list[Model] = [
    {"id": "WRONG_WEIGHT", "zh": "称重错误", "en": "wrong weight"},
    {"id": "WRONG_CATEGORY", "zh": "类别选错", "en": "wrong category"},
    {"id": "WRONG_LABEL", "zh": "标签错误", "en": "wrong label"},
    {"id": "DUPLICATE", "zh": "重复登记", "en": "registered twice"},
    {"id": "WRONG_DEPARTMENT", "zh": "科室选错", "en": "wrong department"},
    {"id": "OTHER", "zh": "其他", "en": "other"},
]


def pending(grams: int | None, category: str | None = None, code: str | None = None, notes: list[Model] | None = None,
            components: str = "", printing: bool = False, editing: bool = False) -> Model:
    return {"package_code": code, "category": category, "category_name": NAMES[category] if category else None,
            "weight_g": grams, "printing": printing, "editing": editing, "notes": notes or [],
            "components": components}


def screen(**fields: Any) -> Model:
    """A complete model: every contract key present, the given ones replaced."""
    base: Model = {
        "step": "idle", "title": zh_en("待机", "Ready"),
        "prompt": zh_en("请扫描收集人员工牌", "Scan the collector's badge"),
        "error": None, "message": None, "saved_seq": None, "collector": None, "collector_name": None,
        "department": None, "department_name": None, "place": None, "place_name": None, "signer": None, "dwell": [],
        "round_started_at": None, "round_overdue": False, "weight": {"net_g": 0, "stable": True, "error": None},
        "lines": [], "totals": [], "pending": None, "actions": [], "categories": [], "voice": None,
        "device": dict(DEVICE_OK),
    }
    unknown = set(fields) - set(base)
    assert not unknown, f"not in the contract: {unknown}"
    base.update(fields)
    return base


LINES = [line("B000101", "INFECTIOUS", 1240), line("B000102", "SHARPS", 560), line("B000103", "INFECTIOUS", 2310)]

IDLE = screen(voice={"id": 1, "zh": "请扫描收集人员工牌", "en": "Please scan the collector's badge"})

STOP = screen(
    step="stop", title=zh_en("科室交接", "Department handover"),
    prompt=zh_en("请放置医废袋称重并扫描袋标签", "Put a bag on the scale and scan its label"),
    error=zh_en("二维码已损坏或被涂改，请重新打印", "Damaged code: print the label again"),
    collector="COL-01", collector_name="张伟", department="D01", department_name="心内科三病区",
    round_started_at="2025-03-01T08:30:00+08:00",
    weight={"net_g": 1234, "stable": False, "error": None}, lines=LINES, totals=totals(LINES),
    actions=[action("remove_last", "删除最后一袋", "Remove last bag", "danger"),
             action("manifest", "填写联单号", "Manifest number", needs="text"),
             action("void_last", "作废上一条记录", "Void last record", "danger", needs="reason", reasons=REASONS),
             action("finish_stop", "交接确认", "Confirm handover", "primary")],
    voice={"id": 3, "zh": "请放置医废袋", "en": "Put a bag on the scale"})

CONFIRM = screen(
    step="confirm", title=zh_en("护士确认", "Nurse confirmation"),
    prompt=zh_en("请护士扫描工牌或输入 PIN", "Nurse: scan your badge or enter your PIN"),
    collector="COL-01", collector_name="张伟", department="D01", department_name="心内科三病区",
    weight={"net_g": 0, "stable": True, "error": None},
    lines=LINES, totals=totals(LINES),
    actions=[action("nurse_pin", "输入护士 PIN", "Nurse PIN", "primary", needs="pin"),
             action("back", "返回", "Back")],
    voice={"id": 4, "zh": "请护士确认", "en": "Nurse, please confirm"})

# As edge.workflow.view() asks for a category: one "choose:<id>" action per category (drawn as the
# category buttons, not twice), the editable line's "edit:<code>" (drawn on the line).
CATEGORY = screen(
    step="stop", title=zh_en("科室交接", "Department handover"),
    prompt=zh_en("请选择废物类别", "Choose the waste category"), collector="COL-01", collector_name="张伟",
    department="D01", department_name="心内科三病区", weight={"net_g": 2150, "stable": True, "error": None},
    pending=pending(2150),
    lines=[line("B000101", "INFECTIOUS", 1240, editable=True)], totals=totals(LINES[:1]), categories=CATEGORIES,
    actions=[*(action(f"choose:{c['id']}", c["name"]["zh"], c["name"]["en"]) for c in CATEGORIES),
             action("edit:B000101", "修改 B000101", "Edit B000101"),
             action("cancel", "取消这一袋", "Cancel this bag", "danger")],
    voice={"id": 5, "zh": "请选择废物类别", "en": "Choose the category"})

# Categories without matching actions: a tap posts {"id": "choose", "value": <category>}.
CATEGORY_BARE = screen(
    step="stop", title=zh_en("科室交接", "Department handover"),
    prompt=zh_en("请选择废物类别", "Choose the waste category"), weight={"net_g": 800, "stable": True, "error": None},
    categories=CATEGORIES, actions=[action("cancel", "取消这一袋", "Cancel this bag", "danger")])

STORAGE_LINES = [line("B000101", "INFECTIOUS", 1250, status="ok"), line("B000102", "SHARPS", 910, status="deviation"),
                 line("B000103", "INFECTIOUS", 2310, status="waiting")]
STORAGE = screen(
    step="storage", title=zh_en("暂存入库", "Storage check-in"),
    prompt=zh_en("请逐袋复称并扫描袋标签", "Re-weigh each bag and scan its label"), collector="COL-01",
    collector_name="张伟", place="ROOM1", place_name="一号暂存间", signer="孙库管",
    weight={"net_g": 2305, "stable": True, "error": None},
    error=zh_en("B000102 复称偏差 350 g，超出允许范围", "B000102 re-weighed 350 g off, beyond the tolerance"),
    lines=STORAGE_LINES, totals=totals(STORAGE_LINES),
    actions=[action("batch_weight", "整批称重", "Weigh as a batch"),
             action("finish", "完成入库", "Finish check-in", "primary"),
             action("remove_last", "撤销上次复称", "Undo last re-weigh", "danger")],
    voice={"id": 9, "zh": "请逐袋复称", "en": "Re-weigh each bag"})

SAVED = screen(
    step="round", title=zh_en("收集中", "Collecting"),
    prompt=zh_en("请扫描下一个科室交接码", "Scan the next department's code"),
    message=zh_en("已保存交接记录 #12", "Handover record #12 saved"), saved_seq=12, collector="COL-01",
    collector_name="张伟",
    device={**DEVICE_OK, "unsent": 1}, voice={"id": 6, "zh": "已保存", "en": "Saved"})

OFFLINE = screen(
    step="round", title=zh_en("收集中", "Collecting"),
    prompt=zh_en("请扫描下一个科室交接码", "Scan the next department's code"), collector="COL-01",
    collector_name="张伟", round_started_at="2025-03-01T06:00:00+08:00", round_overdue=True,
    weight={"net_g": None, "stable": False, "error": zh_en("超载", "Overload")},
    device={"online": False, "unsent": 37, "scale": "connected", "camera": "stalled", "printer": "none",
            "actuator": "fault", "clock": "unsynced"})


# A bag being taken with its category chosen (edge.workflow.view at a stop): the label notes that apply
# to it are toggles ("chosen" = on), the pending bag lists the notes that are on.
NOTES = screen(
    step="stop", title=zh_en("科室交接", "Department handover"),
    prompt=zh_en("请扫描袋标签，或打印标签", "Scan the bag's label, or print one"), collector="COL-01",
    collector_name="张伟", department="D01", department_name="心内科三病区",
    weight={"net_g": 1800, "stable": True, "error": None},
    pending=pending(1800, "INFECTIOUS", notes=[zh_en("含少量药物性废物", "contains a little pharmaceutical waste")]),
    categories=CATEGORIES,
    actions=[*(action(f"choose:{c['id']}", c["name"]["zh"], c["name"]["en"]) for c in CATEGORIES),
             action("note:MIXED_DRUGS", "备注：含少量药物性废物", "Note: contains a little pharmaceutical waste",
                    "chosen"),
             action("note:DOUBLE_BAG", "备注：传染病患者废物 双层包装", "Note: infectious patient: double bag"),
             action("print_label", "打印标签", "Print label", "primary"),
             action("cancel", "取消这一袋", "Cancel this bag", "danger")],
    voice={"id": 11, "zh": "已选择感染性废物", "en": "Infectious chosen"})

# Chemical waste: the label must state its main components (主要成分), typed before printing.
CHEMICAL = screen(
    step="stop", title=zh_en("科室交接", "Department handover"),
    prompt=zh_en("化学性废物：请填写主要成分", "Chemical waste: enter the main components"), collector="COL-01",
    collector_name="张伟", department="D01", department_name="心内科三病区",
    weight={"net_g": 900, "stable": True, "error": None}, pending=pending(900, "CHEMICAL", components="乙醇、甲醛"),
    categories=CATEGORIES,
    actions=[*(action(f"choose:{c['id']}", c["name"]["zh"], c["name"]["en"]) for c in CATEGORIES),
             action("components", "填写主要成分", "Main components", needs="text"),
             action("print_label", "打印标签", "Print label", "primary"),
             action("cancel", "取消这一袋", "Cancel this bag", "danger")])

# Bags near and past their limits: one in storage nearly at 48 h, two on the cart, one over 24 h.
DWELL = screen(
    step="round", title=zh_en("收集中", "Collecting"),
    prompt=zh_en("请扫描下一个科室交接码", "Scan the next department's code"), collector="COL-01",
    collector_name="张伟",
    dwell=[{"package_code": "B000201", "where": "storage", "hours": 40.5, "limit_h": 48.0, "level": "warn"},
           {"package_code": "B000101", "where": "cart", "hours": 20.2, "limit_h": 24.0, "level": "warn"},
           {"package_code": "B000102", "where": "cart", "hours": 26.5, "limit_h": 24.0, "level": "over"}],
    actions=[action("void_bag", "作废医废袋", "Void a bag", "danger", needs="reason", reasons=REASONS),
             action("end_round", "结束收集", "End round")])

# At the storage room with a bag missing: the loss is typed (needs text), rejecting takes no words.
MISSING = screen(
    step="storage", title=zh_en("暂存入库", "Storage check-in"),
    prompt=zh_en("请逐袋复称并扫描袋标签", "Re-weigh each bag and scan its label"), collector="COL-01",
    collector_name="张伟", place="ROOM1", place_name="医疗废物暂存间",
    lines=[STORAGE_LINES[0], line("B000104", "SHARPS", 400, status="waiting")],
    totals=totals([STORAGE_LINES[0], line("B000104", "SHARPS", 400)]),
    actions=[action("report_lost", "报告遗失", "Report lost", "danger", needs="text"),
             action("reject_storage", "拒收入库（有缺失）", "Reject check-in (bags missing)", "danger"),
             action("confirm_pin", "输入 PIN", "Enter PIN", needs="pin")])


class ScriptedSource:
    """A ``KioskSource`` holding one screen model at a time; records every action and scan."""

    def __init__(self, model: Model = IDLE) -> None:
        self._lock = threading.Condition()
        self._model = copy.deepcopy(model)
        self.changes = Changes()
        self.acts: list[tuple[str, str | None]] = []
        self.scans: list[str] = []

    def show(self, model: Model) -> None:
        """Replace the screen (the page gets it over the event stream)."""
        with self._lock:
            self._model = copy.deepcopy(model)
        self.changes.bump()

    def update(self, **fields: Any) -> None:
        with self._lock:
            self._model.update(copy.deepcopy(fields))
        self.changes.bump()

    def quietly(self, **fields: Any) -> None:
        """Change the model without a new version: the cart moved on and the page has not heard yet."""
        with self._lock:
            self._model.update(copy.deepcopy(fields))

    # KioskSource -------------------------------------------------------------------------------

    def snapshot(self) -> Model:
        with self._lock:
            return copy.deepcopy(self._model)

    def act(self, id: str, value: str | None) -> None:
        with self._lock:
            offered = {a["id"] for a in self._model["actions"]} | ({"choose"} if self._model["categories"] else set())
            if id not in offered:
                raise KioskError(f"这一步没有操作 {id!r} (no action {id!r} on this screen)")
            self.acts.append((id, value))
            self._lock.notify_all()

    def scan(self, text: str) -> None:
        with self._lock:
            self.scans.append(text)
            self._lock.notify_all()

    def wait_changed(self, version: int, timeout: float) -> int:
        return self.changes.wait_changed(version, timeout)

    # for tests ---------------------------------------------------------------------------------

    def wait_acts(self, n: int = 1, timeout: float = 5.0) -> list[tuple[str, str | None]]:
        with self._lock:
            assert self._lock.wait_for(lambda: len(self.acts) >= n, timeout), f"no action posted: {self.acts}"
            return list(self.acts)

    def wait_scans(self, n: int = 1, timeout: float = 5.0) -> list[str]:
        with self._lock:
            assert self._lock.wait_for(lambda: len(self.scans) >= n, timeout), f"no scan posted: {self.scans}"
            return list(self.scans)
