"""Label content, layout and PNG: real fonts, real QR encoder, our own scanner reads the result."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import codes, labels, messages
from edge.errors import LabelError
from edge.labels import Bar, Bitmap, Box, HazardousLabel, MedicalLabel, Qr, Text, raster

BAG = codes.encode(codes.Code("B", "H330100001", "B00010203", "I"))
CHEMICAL_BAG = codes.encode(codes.Code("B", "H330100001", "B00010204", "C"))
SHANGHAI = timezone(timedelta(hours=8))
USCC = "91350100M000100Y43"  # the GB 32100 example code (valid check character)


def medical(**kw: object) -> MedicalLabel:
    fields: dict[str, object] = {
        "org_name": "杭州市第一人民医院", "department": "心血管内科三病区", "weight_g": 1250,
        "produced_at": datetime(2025, 1, 2, 10, 30, tzinfo=SHANGHAI), "notes": "含少量药物性废物",
    }
    fields.update(kw)
    return MedicalLabel(str(fields.pop("code", BAG)), **fields)  # type: ignore[arg-type]


def hazardous(**kw: object) -> HazardousLabel:
    fields: dict[str, object] = {
        "waste_name": "废矿物油", "hw_class": "HW08", "waste_code": "900-249-08", "uscc": USCC,
        "produced_on": date(2025, 1, 2), "hazards": ("T", "I"), "form": "液态", "main_components": "矿物油、水",
        "harmful_components": "石油烃", "precautions": "远离火源，防止泄漏", "org_name": "某某机械制造有限公司",
        "contact": "张三", "phone": "13800000000", "weight_g": 12500, "seq": 7,
    }
    fields.update(kw)
    return HazardousLabel(str(fields.pop("code", BAG)), **fields)  # type: ignore[arg-type]


def decode_png(path: Path) -> list[str]:
    import cv2

    from edge.devices.scanner import Decoder

    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert gray is not None
    return Decoder()(gray)


# --- content ------------------------------------------------------------------------------------


def test_category_comes_from_the_bag_code() -> None:
    assert medical().category == "INFECTIOUS"
    assert medical(category="感染性").category == "INFECTIOUS"
    assert MedicalLabel("free text").category is None


def test_category_that_contradicts_the_bag_code_is_refused() -> None:
    with pytest.raises(LabelError, match="与袋码中的类别 感染性废物 不一致"):
        medical(category="SHARPS")


@pytest.mark.parametrize(("text", "enum"), [("INFECTIOUS", "INFECTIOUS"), ("sharps", "SHARPS"),
                                            ("病理性废物", "PATHOLOGICAL"), ("药物性", "PHARMACEUTICAL"),
                                            ("C", "CHEMICAL")])
def test_parse_category_accepts_enum_chinese_and_letter(text: str, enum: str) -> None:
    assert labels.parse_category(text) == enum


def test_unknown_category_names_the_known_ones() -> None:
    with pytest.raises(LabelError, match=r"未知废物类别 'X1' \(unknown category; one of INFECTIOUS"):
        labels.parse_category("X1")


def test_control_characters_are_refused_with_the_field_name() -> None:
    with pytest.raises(LabelError, match="科室 含有换行或控制字符"):
        medical(department="内科\n外科")


def test_negative_weight_and_empty_code_are_refused() -> None:
    with pytest.raises(LabelError, match="重量不能为负"):
        medical(weight_g=-1)
    with pytest.raises(LabelError, match="标签缺少袋码"):
        MedicalLabel("  ")


def test_weight_is_formatted_without_floats() -> None:
    assert labels.format_weight(1250) == "1.250 kg"
    assert labels.format_weight(5) == "0.005 kg"


@pytest.mark.parametrize("uscc", [USCC, "91440300708461136T", "91110108551385082Q"])
def test_uscc_check_character_of_real_codes(uscc: str) -> None:
    assert labels.check_uscc(uscc.lower()) == uscc


def test_uscc_with_a_wrong_check_character_is_refused() -> None:
    with pytest.raises(LabelError, match=r"校验位错误.*should be 3"):
        labels.check_uscc(USCC[:-1] + "4")
    with pytest.raises(LabelError, match="格式错误"):
        labels.check_uscc("91350100M000100YI3")  # I is not used


def test_digital_identification_code_is_37_characters_in_four_segments() -> None:
    digital = hazardous().digital_id
    assert len(digital) == 37
    assert (digital[:18], digital[18:26], digital[26:34], digital[34:]) == (USCC, "90024908", "20250102", "007")


@pytest.mark.parametrize(("change", "message"), [
    ({"hw_class": "HW8"}, "废物类别 'HW8' 格式错误"),
    ({"waste_code": "900-249-8"}, "废物代码 '900-249-8' 格式错误"),
    ({"waste_code": "900-041-49"}, "与废物类别 HW08 不一致"),
    ({"hazards": ("T", "X")}, "危险特性 T,X 不合法"),
    ({"hazards": ()}, "危险特性 （空） 不合法"),
    ({"seq": 1000}, "序号 1000 超出范围"),
    ({"waste_name": " "}, "缺少废物名称"),
])
def test_hj1276_fields_are_checked(change: dict[str, object], message: str) -> None:
    with pytest.raises(LabelError, match=message):
        hazardous(**change)


# --- wrapping and layout ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("感染性废物ABC xyz-0123456789，"), max_size=80),
       st.integers(min_value=48, max_value=400))
def test_wrap_keeps_every_character_and_every_line_fits(text: str, width: int) -> None:
    lines = labels.wrap(text, width, 24)
    assert all(labels.text_width(line, 24) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_text_width_plans_cjk_full_and_ascii_two_thirds() -> None:
    assert labels.text_width("感染", 24) == 48
    assert labels.text_width("HW01", 24) == 64


def ink(el: labels.Element) -> list[tuple[int, int, int, int]]:
    """Rectangles (x0, y0, x1, y1) where the element may put ink: a box is its four lines."""
    if isinstance(el, Text):
        return [(el.x, el.y, el.x + labels.text_width(el.text, el.height), el.y + el.height)]
    if isinstance(el, Qr):
        return [(el.x, el.y, el.x + el.side, el.y + el.side)]
    if isinstance(el, Box):
        x1, y1, t = el.x + el.width, el.y + el.height, el.thickness
        return [(el.x, el.y, x1, el.y + t), (el.x, y1 - t, x1, y1), (el.x, el.y, el.x + t, y1), (x1 - t, el.y, x1, y1)]
    if isinstance(el, Bar):
        return [(el.x, el.y, el.x + el.width, el.y + el.height)]
    assert isinstance(el, Bitmap)
    return [(el.x, el.y, el.x + el.bits.width, el.y + el.bits.height)]


LABELS = [pytest.param(medical(), id="medical"), pytest.param(hazardous(), id="hj1276"),
          pytest.param(MedicalLabel("hello world"), id="bare-payload"),
          pytest.param(medical(code=CHEMICAL_BAG, notes="", main_components="戊二醛、过氧乙酸"), id="chemical"),
          pytest.param(hazardous(hazards=("T", "C", "I", "R", "In")), id="five-hazards")]


@pytest.mark.parametrize("dpi", [203, 300])
@pytest.mark.parametrize("label", LABELS)
def test_layout_stays_on_the_label_and_keeps_the_qr_clear(label: labels.Label, dpi: int) -> None:
    lay = labels.layout(label, dpi)
    (qr,) = [e for e in lay.elements if isinstance(e, Qr)]
    assert qr.payload == label.code and labels.QR_MIN_MODULE <= qr.module <= labels.QR_MAX_MODULE
    quiet = labels.QR_QUIET * qr.module  # ISO/IEC 18004: four modules of white, on the label
    assert qr.x - quiet >= 0 and qr.x + qr.side + quiet <= lay.width
    assert qr.y - quiet >= 0 and qr.y + qr.side + quiet <= lay.height
    for el in lay.elements:
        for x0, y0, x1, y1 in ink(el):
            assert 0 <= x0 < x1 <= lay.width and 0 <= y0 < y1 <= lay.height, el
            if el is not qr:
                assert (x1 <= qr.x - quiet or x0 >= qr.x + qr.side + quiet or y1 <= qr.y - quiet
                        or y0 >= qr.y + qr.side + quiet), f"{el} is in the QR's quiet zone"


def test_layout_sizes_follow_the_kind_and_the_dpi() -> None:
    assert (labels.layout(medical()).width, labels.layout(medical()).height) == (800, 560)
    assert (labels.layout(hazardous(), 300).width, labels.layout(hazardous(), 300).height) == (1200, 1200)


def test_medical_label_says_what_hj421_and_decree_36_ask_for() -> None:
    texts = [e.text for e in labels.layout(medical()).elements if isinstance(e, Text)]
    for expected in ("医疗废物", "警告！", "感染性废物", "产生单位：杭州市第一人民医院", "科室：心血管内科三病区",
                     "类别：感染性废物 HW01 841-001-01", "重量：1.250 kg", "产生时间：2025-01-02 10:30 +08:00",
                     "备注：含少量药物性废物", BAG):
        assert expected in texts


def test_hj1276_label_carries_all_fields_and_the_digital_code() -> None:
    label = hazardous()
    texts = " ".join(e.text for e in labels.layout(label).elements if isinstance(e, Text))
    for caption in ("危险废物", "废物名称", "废物类别", "废物代码", "废物形态", "主要成分", "有害成分", "注意事项",
                    "产生/收集单位", "联系人和联系方式", "产生日期", "废物重量", "数字识别码", "备注", "危险特性"):
        assert caption in texts
    assert label.digital_id[:18] in texts and label.digital_id[18:] in texts


def test_too_much_text_is_a_clear_error() -> None:
    with pytest.raises(LabelError, match=r"标签内容太多，备注 放不下 \(the text does not fit on a 100×70 mm label"):
        labels.layout(medical(notes="很长的说明" * 60))


def test_the_start_up_check_lays_out_the_longest_label_of_this_cart() -> None:
    labels.check_fits("H330100001", "杭州市第一人民医院", 203, (100.0, 70.0))
    labels.check_fits("H330100001", "杭州市第一人民医院", 300, (100.0, 70.0), ["心血管内科", "检验科"])
    with pytest.raises(LabelError, match=r"标签内容太多，产生单位 放不下 \(the text does not fit on a 50×30 mm label "
                                         r"at 203 dpi: shorten org_name\)"):
        labels.check_fits("H330100001", "杭州市第一人民医院", 203, (50.0, 30.0))
    with pytest.raises(LabelError, match="二维码内容太长，标签上放不下"):  # the text fits, the signed bag code not
        labels.check_fits("H330100001", "杭州市第一人民医院", 203, (80.0, 60.0))
    with pytest.raises(LabelError, match="标签太小"):
        labels.check_fits("H330100001", "杭州市第一人民医院", 203, (40.0, 30.0))
    with pytest.raises(LabelError, match="分辨率 600 dpi 不支持"):
        labels.check_fits("H330100001", "杭州市第一人民医院", 600, (100.0, 70.0))


def test_a_label_error_is_a_message_key_with_parameters() -> None:
    """The kiosk and the CLI look the words up; each language takes its side of a category name."""
    with pytest.raises(LabelError) as info:
        medical(category="SHARPS")
    assert info.value.key == "label.category_mismatch"
    assert info.value.msg.text.en.startswith("category Sharps does not match the bag code's category Infectious")
    sources = "".join(p.read_text("utf-8") for p in Path(labels.__file__).parent.glob("*.py"))
    raised = set(re.findall(r'LabelError\("([a-z_.]+)"', sources))
    assert len(raised) >= 20 and raised <= messages.CATALOGUE.keys()
    assert "LabelError(f" not in sources  # no text in exceptions: a key and parameters


def test_a_payload_too_long_for_a_readable_qr_is_refused() -> None:
    with pytest.raises(LabelError, match="二维码内容太长，标签上放不下"):
        labels.layout(MedicalLabel("A" * 300))


def test_bad_dpi_and_size_are_refused() -> None:
    with pytest.raises(LabelError, match="分辨率 600 dpi 不支持"):
        labels.layout(medical(), 600)
    with pytest.raises(LabelError, match="标签尺寸"):
        labels.layout(medical(), 203, (10, 10))


# --- drawing ------------------------------------------------------------------------------------


def test_text_bits_are_one_line_of_black_dots() -> None:
    bits = labels.text_bits("感染性废物", 24)
    assert bits.height == 24 and 100 <= bits.width <= 130
    assert len(bits.data) == bits.row_bytes * 24
    black = sum(bin(b).count("1") for b in bits.data)
    assert 0.1 < black / (bits.width * bits.height) < 0.6


def test_bits_round_trip_through_an_image() -> None:
    from PIL import Image

    image = Image.new("L", (10, 2), 255)
    image.putpixel((0, 0), 0)
    image.putpixel((9, 1), 0)
    bits = labels.bits_from_image(image)
    assert bits.data == bytes([0x80, 0x00, 0x00, 0x40])  # MSB first, 1 = black, rows padded to bytes


def test_missing_font_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    labels.cjk_font.cache_clear()
    try:
        monkeypatch.setenv(labels.FONT_ENV, str(tmp_path / "none.ttf"))
        with pytest.raises(LabelError, match="中文字体文件不存在"):
            labels.cjk_font()
        monkeypatch.delenv(labels.FONT_ENV)
        monkeypatch.setattr(raster, "KNOWN_FONTS", ())
        monkeypatch.setenv("PATH", str(tmp_path))  # no fc-list either
        with pytest.raises(LabelError, match=r"找不到中文字体 \(no CJK font found: apt-get install fonts-wqy-microhei"):
            labels.cjk_font()
    finally:
        labels.cjk_font.cache_clear()


@pytest.mark.parametrize("dpi", [203, 300])
@pytest.mark.parametrize("label", LABELS)
def test_rendered_png_scans_back_to_exactly_the_payload(label: labels.Label, dpi: int, tmp_path: Path) -> None:
    path = labels.render_png(labels.layout(label, dpi), tmp_path / "label.png")
    assert decode_png(path) == [label.code]


def test_png_carries_its_dpi(tmp_path: Path) -> None:
    from PIL import Image

    path = labels.render_png(labels.layout(medical(), 300), tmp_path / "l.png")
    with Image.open(path) as image:
        assert image.size == (1200, 840)
        assert round(image.info["dpi"][0]) == 300


def test_unwritable_png_is_a_label_error(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="无法写入"):
        labels.render_png(labels.layout(medical()), tmp_path / "missing" / "l.png")
