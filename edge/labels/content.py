"""What a waste label says: the two kinds of label, their field checks, category names, and the
HJ 1276 37-character digital identification code.

- :class:`MedicalLabel` — the Chinese label of a medical-waste bag or box (Decree 36 content on an
  HJ 421 package: producing institution, department, category, main components of chemical waste,
  weight, date and time with its UTC offset, package code, special notes).
- :class:`HazardousLabel` — the HJ 1276-2022 hazardous-waste label (industrial waste): the full field
  set, hazard characteristics and the digital identification code.

Fields are checked when a label is made, so a label that exists can be laid out and encoded
without re-checking; a bad field is a :class:`LabelError` naming it.  Category names and HW codes
are ``edge.catalogue``'s.  No layout, no drawing: ``edge.labels.layout`` places this content.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import date, datetime

from edge import catalogue, codes, messages
from edge.errors import CodeError, LabelError

# HJ 1276 hazard characteristics: letter -> Chinese name (waste-domain §2).
HAZARDS = {"T": "毒性", "C": "腐蚀性", "I": "易燃性", "R": "反应性", "In": "感染性"}
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
_USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]  # 1, 3, 9, 27, 19, 26, …
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters of 主要成分 on a medical label: three lines of the default 100×70 mm label, so the longest
# label (60-character organisation and department names, every note) still fits; ``check_fits`` lays it out.
MAIN_COMPONENTS_MAX = 40


def _clean(value: str, name: str, caption: str) -> str:
    """Printer languages end commands at control characters, so a field may not hold any."""
    if _CONTROL.search(value):
        raise LabelError("label.control_chars", field=messages.Text(caption, name))
    return value.strip()


def _check_weight(weight_g: int | None) -> None:
    if weight_g is not None and weight_g < 0:
        raise LabelError("label.negative_weight", grams=weight_g)


def parse_category(text: str) -> str:
    """``INFECTIOUS`` / ``infectious`` / ``感染性废物`` / ``感染性`` / the bag-code letter ``I`` → the enum."""
    value = text.strip()
    with contextlib.suppress(ValueError):
        return codes.category_name(value.upper())
    for c in catalogue.CATEGORIES:
        if value in (c.zh, c.zh.removesuffix("废物")):
            return c.id
    raise LabelError("label.unknown_category", text=repr(text))


def format_weight(weight_g: int) -> str:
    """Integer grams as kilograms with three decimals, without going through a float."""
    return f"{weight_g // 1000}.{weight_g % 1000:03d} kg"


@dataclass(frozen=True)
class MedicalLabel:
    """A medical-waste bag or box label.  Empty fields print their caption only (to fill in by hand).

    ``category`` is the wire enum (``INFECTIOUS`` …); with a bag code (``WC1.B…``) it may be left out
    and is taken from the code's category letter, and if both are given they must agree.  A category
    that ``needs_components`` (chemical waste) is refused without ``main_components``: a disposer
    must know what is in the container.  ``org_name`` is printed as given (the cart passes the
    roster's name; nothing falls back to a code here).
    """

    code: str  # the package code: the QR payload and the text under it
    org_name: str = ""  # 医疗废物产生单位
    department: str = ""  # 科室
    category: str | None = None
    weight_g: int | None = None
    produced_at: datetime | None = None  # 产生日期/时间; an aware datetime prints its UTC offset
    notes: str = ""  # 备注 / 特别说明: the chosen LABEL_NOTES' words joined with "；"
    main_components: str = ""  # 主要成分: required where the category needs it (chemical waste)

    def __post_init__(self) -> None:
        code = _clean(self.code, "code", "二维码内容")
        if not code:
            raise LabelError("label.no_code")
        object.__setattr__(self, "code", code)
        for name, what in (("org_name", "产生单位"), ("department", "科室"), ("notes", "备注"),
                           ("main_components", "主要成分")):
            object.__setattr__(self, name, _clean(getattr(self, name), name, what))
        from_code = _bag_category(code)
        category = from_code if self.category is None else parse_category(self.category)
        if from_code is not None and category is not None and category != from_code:
            raise LabelError("label.category_mismatch", category=messages.category_name(category),
                             code_category=messages.category_name(from_code))
        object.__setattr__(self, "category", category)
        if category is not None and catalogue.CATEGORY[category].needs_components and not self.main_components:
            raise LabelError("label.no_main_components", category=messages.category_name(category))
        if len(self.main_components) > MAIN_COMPONENTS_MAX:
            raise LabelError("label.main_components_too_long", chars=len(self.main_components),
                             most=MAIN_COMPONENTS_MAX)
        _check_weight(self.weight_g)


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
        raise LabelError("label.uscc_format", uscc=repr(uscc))
    if uscc_check_char(value[:17]) != value[17]:
        raise LabelError("label.uscc_check", uscc=repr(uscc), expected=uscc_check_char(value[:17]))
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
            object.__setattr__(self, name, _clean(getattr(self, name), name, what))
        if not self.code:
            raise LabelError("label.no_code")
        if not self.waste_name:
            raise LabelError("label.no_waste_name")
        hw_class = self.hw_class.strip().upper()
        if not re.fullmatch(r"HW\d{2}", hw_class):
            raise LabelError("label.hw_class_format", value=repr(self.hw_class))
        waste_code = self.waste_code.strip()
        if not re.fullmatch(r"\d{3}-\d{3}-\d{2}", waste_code):
            raise LabelError("label.waste_code_format", value=repr(self.waste_code))
        if waste_code[-2:] != hw_class[2:]:
            raise LabelError("label.waste_code_class", waste_code=waste_code, hw_class=hw_class)
        object.__setattr__(self, "hw_class", hw_class)
        object.__setattr__(self, "waste_code", waste_code)
        object.__setattr__(self, "uscc", check_uscc(self.uscc))
        unknown = [h for h in self.hazards if h not in HAZARDS]
        if unknown or not self.hazards or len(set(self.hazards)) != len(self.hazards):
            given = ",".join(self.hazards)
            raise LabelError("label.bad_hazards", hazards=messages.Text(given or "（空）", given or "none"),
                             known=", ".join(HAZARDS))
        if not 1 <= self.seq <= 999:
            raise LabelError("label.bad_seq", seq=self.seq)
        _check_weight(self.weight_g)

    @property
    def digital_id(self) -> str:
        """The 37-character digital identification code (数字识别码).

        HJ 1276 gives four segments totalling 37 characters: unit code, waste code, date, sequence.
        The breakdown used here — USCC (18) + waste code without hyphens (8) + ``YYYYMMDD`` (8) +
        sequence (3) — is an inference (waste-domain §4) to confirm against HJ 1276 Annex A.
        """
        return f"{self.uscc}{self.waste_code.replace('-', '')}{self.produced_on:%Y%m%d}{self.seq:03d}"


Label = MedicalLabel | HazardousLabel

