"""The kiosk screen model (view) and the bilingual message catalogue."""

from __future__ import annotations

import json

import pytest

from edge import messages, workflow
from edge.messages import Text
from edge.workflow import Committed, Step
from tests.unit.test_workflow import Cart, uuid

SPEC_KEYS = {"step", "title", "prompt", "error", "message", "saved_seq", "collector", "department", "place",
             "round_started_at", "round_overdue", "collector_name", "department_name", "place_name", "signer",
             "dwell", "weight", "lines", "totals", "pending", "actions", "categories",
             "voice"}


def test_view_has_exactly_the_contract_keys_and_is_json() -> None:
    c = Cart()
    v = workflow.view(c.s, c.now)
    assert set(v) == SPEC_KEYS
    assert v["step"] == "idle" and v["title"] == {"zh": "医废收集车", "en": "Waste cart"}
    assert v["prompt"] == {"zh": "请扫描收集人员工牌", "en": "Scan the collector's badge"}
    assert v["error"] is None and v["message"] is None and v["voice"] is None and v["weight"] is None
    c.start_stop()
    c.weigh(700)
    v = workflow.view(c.s, c.now)
    json.dumps(v)
    assert v["weight"] == {"net_g": 700, "stable": True, "error": None}
    assert [cat["id"] for cat in v["categories"]] == ["INFECTIOUS", "SHARPS", "PATHOLOGICAL", "PHARMACEUTICAL",
                                                      "CHEMICAL"]
    assert v["categories"][0] == {"id": "INFECTIOUS", "name": {"zh": "感染性废物", "en": "Infectious"},
                                  "color": "#f5d000"}
    assert {a["id"] for a in v["actions"]} >= {f"choose:{cat['id']}" for cat in v["categories"]}
    for a in v["actions"]:
        assert set(a) == {"id", "label", "style", "needs"}
        assert a["style"] in ("primary", "danger", "normal") and a["needs"] in (None, "pin", "text", "reason")
        assert workflow.action_known(a["id"])


def test_lines_totals_and_pending_in_the_view() -> None:
    c = Cart()
    c.start_stop()
    c.bag("B1", 1200, "I")
    c.weigh(300)
    c.act("choose:SHARPS")
    v = workflow.view(c.s, c.now)
    assert v["lines"] == [{"package_code": "B1", "category": "INFECTIOUS",
                           "category_name": {"zh": "感染性废物", "en": "Infectious"}, "weight_g": 1200,
                           "editable": False, "status": None}]
    assert v["totals"] == [{"category": "INFECTIOUS", "count": 1, "weight_g": 1200,
                            "category_name": {"zh": "感染性废物", "en": "Infectious"}}]
    assert v["pending"] == {"package_code": None, "category": "SHARPS",
                            "category_name": {"zh": "损伤性废物", "en": "Sharps"}, "weight_g": 300,
                            "printing": False, "editing": False, "notes": [], "components": ""}
    assert [a["id"] for a in v["actions"] if not a["id"].startswith("choose:")] == ["print_label", "cancel"]
    c.act("print_label")
    v = workflow.view(c.s, c.now)
    assert v["pending"] is not None
    assert v["pending"]["printing"] is True and v["pending"]["package_code"] == "P0001"
    assert v["categories"] == [] and v["prompt"]["zh"] == "正在打印标签…"


def test_saved_seq_appears_only_after_committed() -> None:
    c = Cart()
    c.start_stop()
    c.bag("B1", 500)
    c.scan("S", "NUR-1")
    assert workflow.view(c.s, c.now)["saved_seq"] is None
    assert workflow.view(c.s, c.now)["step"] == "saving"
    c.send(Committed(12, uuid(), c.now))
    v = workflow.view(c.s, c.now)
    assert v["saved_seq"] == 12 and v["message"] == {"zh": "已保存交接记录 #12", "en": "Handover record #12 saved"}
    c.scan("D", "D02")
    c.bag("B2", 500)
    c.scan("S", "NUR-2")
    assert workflow.view(c.s, c.now)["saved_seq"] is None   # no stale tick while the next one is saving


def test_voice_speaks_once_per_main_step_not_per_reading() -> None:
    c = Cart()
    ids = []

    def voice() -> int | None:
        v = workflow.view(c.s, c.now)["voice"]
        return None if v is None else int(v["id"])

    c.scan("S", "COL-1")
    ids.append(voice())
    c.weigh(500, stable=False)
    c.weigh(500)
    assert voice() == ids[-1]                   # readings never speak
    c.scan("D", "D01")
    ids.append(voice())
    c.scan("B", "B1", "I")
    ids.append(voice())
    c.scan("B", "B1", "I")                      # an error speaks
    ids.append(voice())
    assert said(c) == "袋 B1 已登记，不能重复"
    c.weigh(0)
    c.scan("S", "NUR-1")
    c.send(Committed(1, uuid(), c.now))
    ids.append(voice())
    assert said(c) == "已保存交接记录 #1"
    assert all(a is not None for a in ids) and ids == sorted(set(ids))  # type: ignore[type-var]


def said(c: Cart) -> str | None:
    """What the page would speak now (Chinese)."""
    voice = workflow.view(c.s, c.now)["voice"]
    return voice["zh"] if voice else None


@pytest.mark.parametrize("step", list(Step))
def test_every_step_has_a_title_and_a_prompt_in_both_languages(step: Step) -> None:
    c = Cart()
    v = workflow.view(workflow.State(org="H1", cart="C1", step=step, round=workflow.Round("COL-1", "R1", c.now)), c.now)
    assert v["title"]["zh"] and v["title"]["en"] and v["prompt"]["zh"] and v["prompt"]["en"]


def test_catalogue_entries_have_both_languages_with_the_same_fields() -> None:
    for key, (zh, en) in messages.CATALOGUE.items():
        assert zh.strip() and en.strip(), key
        assert messages.fields_of(zh) == {f.removesuffix("_en") for f in messages.fields_of(en)}, key
        assert any("\u4e00" <= ch <= "\u9fff" for ch in zh), f"{key}: Chinese text expected"


def test_t_fills_fields_each_language_from_its_side() -> None:
    assert messages.t("ok.bag_added", code="B1", grams=5, category=Text("感染性废物", "Infectious")) == Text(
        "已登记 B1 感染性废物 5 克", "Added B1 Infectious 5 g")
    assert messages.t("err.scale", reason="超载") == Text("秤报错：超载", "Scale error: 超载")
    assert messages.t("ok.department") == Text("科室 {department}", "Department {department}")


def test_text_is_falsy_when_empty_and_searches_both_languages() -> None:
    assert not messages.NONE and messages.NONE.as_json() is None
    text = Text("重量未稳定", "not stable")
    assert "稳定" in text and "stable" in text and "x" not in text
    assert str(text) == "重量未稳定"
