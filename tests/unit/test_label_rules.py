"""The medical label per category, read back from the layout: every line Decree 36 asks for with its
value, the mark HJ 421 (biohazard) or HJ 1276 (toxic) gives the category, 主要成分 on chemical waste,
the time with its offset, and the start-up check that the configured size holds the longest label."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from edge import catalogue, codes, labels, roster
from edge.errors import LabelError
from edge.labels import Bitmap, Layout, MedicalLabel, Text

ORG = "H330100001"
ORG_NAME = "杭州市第一人民医院"
DEPARTMENT = "心血管内科三病区"
COMPONENTS = "戊二醛、过氧乙酸"
WHEN = datetime(2026, 12, 7, 21, 40, tzinfo=ZoneInfo("Asia/Shanghai"))
CAPTIONS = ("产生单位", "科室", "类别", "主要成分", "重量", "产生时间", "备注")
BIOHAZARD = ("INFECTIOUS", "SHARPS", "PATHOLOGICAL")
TOXIC = ("PHARMACEUTICAL", "CHEMICAL")


def bag(category: str) -> str:
    return codes.encode(codes.Code("B", ORG, "B00010203", catalogue.CATEGORY[category].letter))


def notes_of(category: str) -> list[catalogue.Choice]:
    return [n for n in catalogue.LABEL_NOTES if not n.categories or category in n.categories]


def label_for(category: str, **kw: object) -> MedicalLabel:
    """A label as the cart makes it: names, every note the category takes, components where needed."""
    fields: dict[str, object] = {
        "org_name": ORG_NAME, "department": DEPARTMENT, "category": category, "weight_g": 1250,
        "produced_at": WHEN, "notes": "；".join(n.zh for n in notes_of(category)),
        "main_components": COMPONENTS if catalogue.CATEGORY[category].needs_components else "",
    }
    fields.update(kw)
    return MedicalLabel(bag(category), **fields)  # type: ignore[arg-type]


def rows(lay: Layout) -> dict[str, str]:
    """``caption -> value`` of the field rows, continuation lines (indented under the row) joined."""
    found: dict[str, str] = {}
    caption, x, y = "", 0, 0
    for el in lay.elements:
        if not isinstance(el, Text):
            continue
        head = re.match(rf"^({'|'.join(CAPTIONS)})：(.*)$", el.text)
        if head:
            assert head[1] not in found, f"{head[1]} twice"
            caption, x, y = head[1], el.x, el.y
            found[caption] = head[2]
        elif caption and el.x > x and el.y > y and el.y - y <= 2 * el.height:
            found[caption] += el.text
            y = el.y
        else:
            caption = ""
    return found


def texts(lay: Layout) -> list[str]:
    return [e.text for e in lay.elements if isinstance(e, Text)]


def squeeze(text: str) -> str:
    """Lines break at spaces between ASCII words, and the space goes: compare without spaces."""
    return "".join(text.split())


def the_mark(lay: Layout) -> Bitmap:
    marks = [e for e in lay.elements if isinstance(e, Bitmap)]
    assert len(marks) == 1
    return marks[0]


# --- every line, every category -----------------------------------------------------------------


@pytest.mark.parametrize("dpi", [203, 300])
@pytest.mark.parametrize("category", [c.id for c in catalogue.CATEGORIES])
def test_every_required_line_is_on_the_label_with_its_value(category: str, dpi: int) -> None:
    c = catalogue.CATEGORY[category]
    label = label_for(category)
    lay = labels.layout(label, dpi)
    found = rows(lay)
    expected = ["产生单位", "科室", "类别", *(["主要成分"] if c.needs_components else []), "重量", "产生时间", "备注"]
    assert list(found) == expected  # in this order, 主要成分 only where the category needs it
    assert found["产生单位"] == ORG_NAME
    assert found["科室"] == DEPARTMENT
    assert found["类别"] == f"{c.zh} HW01 {c.waste_code}"
    assert found["重量"] == "1.250 kg"
    assert found["产生时间"] == "2026-12-07 21:40 +08:00"
    words = [n.zh for n in notes_of(category)]
    assert squeeze(found["备注"]) == squeeze("；".join(words))
    for word in words:
        assert squeeze(word) in squeeze(found["备注"])
    if c.needs_components:
        assert found["主要成分"] == COMPONENTS
    # the title, the warning panel and the package code under the QR
    all_text = texts(lay)
    assert "医疗废物" in all_text and "警告！" in all_text and c.zh in all_text
    assert label.code in all_text


def test_the_notes_each_category_may_carry() -> None:
    """What the workflow offers per category (catalogue.LABEL_NOTES): the rows above use these."""
    assert [n.id for n in notes_of("INFECTIOUS")] == ["MIXED_DRUGS", "DOUBLE_BAG", "DISINFECTED"]
    assert [n.id for n in notes_of("PATHOLOGICAL")] == ["DOUBLE_BAG", "DISINFECTED"]
    for category in ("SHARPS", "PHARMACEUTICAL", "CHEMICAL"):
        assert notes_of(category) == []
        assert labels.longest_notes(category) == ""
    assert labels.longest_notes("INFECTIOUS") == "含少量药物性废物；传染病患者废物 双层包装；已就地消毒"


@pytest.mark.parametrize("category", BIOHAZARD + TOXIC)
def test_without_notes_the_remark_line_is_a_caption_to_fill_in(category: str) -> None:
    found = rows(labels.layout(label_for(category, notes="")))
    assert found["备注"] == ""


# --- the mark -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dpi", [203, 300])
@pytest.mark.parametrize("category", BIOHAZARD + TOXIC)
def test_the_mark_is_biohazard_for_infectious_waste_and_toxic_for_drugs_and_chemicals(category: str,
                                                                                       dpi: int) -> None:
    mark = the_mark(labels.layout(label_for(category), dpi))
    side = mark.bits.width
    assert mark.bits.height == side and side == labels.DOTS_PER_MM[dpi] * 20  # 20 mm, as before
    biohazard, toxic = labels.warning_mark(side), labels.hazard_mark(side, "T")
    assert biohazard.data != toxic.data  # the comparison below can tell them apart
    if category in BIOHAZARD:
        assert mark.bits == biohazard
    else:
        assert mark.bits == toxic  # never the biohazard sign on pharmaceutical or chemical waste
    assert labels.medical_mark(category, side) == mark.bits


def test_the_catalogue_says_which_categories_are_toxic() -> None:
    assert tuple(c.id for c in catalogue.CATEGORIES if c.mark == "toxic") == TOXIC
    assert tuple(c.id for c in catalogue.CATEGORIES if c.mark == "biohazard") == BIOHAZARD
    assert set(labels.MARKS) == {c.mark for c in catalogue.CATEGORIES}


def test_a_label_without_a_category_keeps_the_biohazard_mark() -> None:
    lay = labels.layout(MedicalLabel("hello world", org_name=ORG_NAME))
    mark = the_mark(lay)
    assert mark.bits == labels.warning_mark(mark.bits.width)
    assert "医疗废物" in texts(lay) and "主要成分" not in " ".join(texts(lay))


@pytest.mark.parametrize("category", TOXIC)
def test_the_warning_panel_of_a_toxic_label_names_the_category(category: str) -> None:
    all_text = texts(labels.layout(label_for(category)))
    assert all_text[:2] == ["警告！", catalogue.CATEGORY[category].zh]  # the panel under the mark


# --- 主要成分 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("components", ["", "   "])
def test_a_chemical_label_without_main_components_is_refused(components: str) -> None:
    with pytest.raises(LabelError, match=r"化学性废物标签须注明主要成分 \(main_components: a Chemical waste label "
                                         r"must state its main components\)") as info:
        label_for("CHEMICAL", main_components=components)
    assert info.value.key == "label.no_main_components"


def test_main_components_up_to_the_limit_and_no_more() -> None:
    most = "成" * labels.MAIN_COMPONENTS_MAX
    assert label_for("CHEMICAL", main_components=most).main_components == most
    with pytest.raises(LabelError, match=rf"主要成分太长（{labels.MAIN_COMPONENTS_MAX + 1} 个字，"
                                         rf"最多 {labels.MAIN_COMPONENTS_MAX} 个）") as info:
        label_for("CHEMICAL", main_components=most + "分")
    assert info.value.key == "label.main_components_too_long"
    with pytest.raises(LabelError, match="主要成分 含有换行或控制字符"):
        label_for("CHEMICAL", main_components="戊二醛\n过氧乙酸")


def test_main_components_given_on_another_category_are_printed() -> None:
    found = rows(labels.layout(label_for("PHARMACEUTICAL", main_components="头孢类抗生素")))
    assert found["主要成分"] == "头孢类抗生素"
    assert "主要成分" not in rows(labels.layout(label_for("PHARMACEUTICAL")))


# --- the time and its offset --------------------------------------------------------------------


@pytest.mark.parametrize(("when", "printed"), [
    (WHEN, "2026-12-07 21:40 +08:00"),
    (datetime(2026, 12, 7, 13, 40, tzinfo=UTC).astimezone(ZoneInfo("Asia/Shanghai")), "2026-12-07 21:40 +08:00"),
    (datetime(2026, 12, 7, 13, 40, tzinfo=UTC), "2026-12-07 13:40 +00:00"),
    (datetime(2026, 12, 7, 10, 10, tzinfo=timezone(-timedelta(hours=3, minutes=30))), "2026-12-07 10:10 -03:30"),
    (datetime(2026, 12, 7, 21, 40), "2026-12-07 21:40"),  # naive: no offset to print
])
def test_the_time_is_printed_with_its_utc_offset(when: datetime, printed: str) -> None:
    assert labels.format_time(when) == printed
    assert rows(labels.layout(label_for("INFECTIOUS", produced_at=when)))["产生时间"] == printed


# --- the start-up check -------------------------------------------------------------------------


def example_departments() -> list[str]:
    return [d.name for d in roster.example(ORG_NAME).departments.values()]


@pytest.mark.parametrize("dpi", [203, 300])
def test_the_default_size_holds_the_longest_labels(dpi: int) -> None:
    labels.check_fits(ORG, ORG_NAME, dpi, labels.MEDICAL_MM)
    labels.check_fits(ORG, ORG_NAME, dpi, labels.MEDICAL_MM, example_departments())
    # the longest names a roster takes (60 characters), every note, the most components
    labels.check_fits(ORG, "医" * 60, dpi, labels.MEDICAL_MM, ["科" * 60, "内科"])
    lay = labels.layout(label_for("CHEMICAL", org_name="医" * 60, department="科" * 60,
                                  main_components="成" * labels.MAIN_COMPONENTS_MAX), dpi)
    assert len(rows(lay)) == 7


@pytest.mark.parametrize("dpi", [203, 300])
def test_a_size_too_small_for_the_longest_label_is_refused_naming_the_field(dpi: int) -> None:
    with pytest.raises(LabelError, match=rf"标签内容太多，产生时间 放不下 \(the text does not fit on a 100×60 mm "
                                         rf"label at {dpi} dpi: shorten produced_at\)"):
        labels.check_fits(ORG, "医" * 60, dpi, (100.0, 60.0), ["科" * 60])
    with pytest.raises(LabelError, match=r"标签内容太多，产生单位 放不下.*shorten org_name"):
        labels.check_fits(ORG, ORG_NAME, dpi, (50.0, 30.0))


def test_the_check_lays_out_the_chemical_label_with_the_most_components() -> None:
    """A size that holds every category's label with short components, but not the longest one."""
    org_name, department, size = "医" * 60, "科" * 90, labels.MEDICAL_MM
    for c in catalogue.CATEGORIES:
        labels.layout(label_for(c.id, org_name=org_name, department=department), 203, size)
    with pytest.raises(LabelError, match=r"标签内容太多，备注 放不下"):
        labels.check_fits(ORG, org_name, 203, size, [department])


def test_the_check_takes_the_widest_department() -> None:
    """Width, not characters: 25 Chinese characters take two lines, 30 ASCII ones one."""
    org_name, size = "医" * 60, (100.0, 62.0)
    labels.check_fits(ORG, org_name, 203, size, ["D" * 30])
    with pytest.raises(LabelError, match="标签内容太多"):
        labels.check_fits(ORG, org_name, 203, size, ["D" * 30, "科" * 25])


def test_the_check_lays_out_every_note_a_category_takes() -> None:
    """Infectious waste takes all three notes: two lines of 备注, which this size cannot hold."""
    org_name, department, size = "医" * 60, "科" * 130, labels.MEDICAL_MM
    labels.layout(label_for("INFECTIOUS", org_name=org_name, department=department, notes="已就地消毒"), 203, size)
    with pytest.raises(LabelError, match=r"标签内容太多，备注 放不下.*shorten notes"):
        labels.check_fits(ORG, org_name, 203, size, [department])


def test_the_org_name_is_printed_as_given_never_the_org_code() -> None:
    found = rows(labels.layout(label_for("SHARPS", org_name="")))
    assert found["产生单位"] == ""  # a caption to fill in by hand, not "H330100001"
    assert all(ORG not in text for text in found.values())
