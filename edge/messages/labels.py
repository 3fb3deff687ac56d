"""Why a label cannot be made, laid out or drawn (edge.labels): the CLI, the print error on the
kiosk, and the start-up check of the configured label size show these.

Each side names every parameter (a test checks), so the English side says which value was wrong
too; a value quoted with ``repr`` arrives quoted.  A ``field`` parameter is a ``Text``: the
caption printed on the label in Chinese, the attribute name in English.
"""

from __future__ import annotations

from edge import catalogue

# The categories a label accepts, in the national list's order (HW01 841-001 … 841-005).
_CATEGORY_IDS = ", ".join(c.id for c in sorted(catalogue.CATEGORIES, key=lambda c: c.waste_code))

# key -> (zh, en); {fields} are filled by edge.messages.t().
ENTRIES: dict[str, tuple[str, str]] = {
    # content: the fields of MedicalLabel and HazardousLabel (edge.labels.content)
    "label.control_chars": ("{field} 含有换行或控制字符",
                            "{field}: control characters are not allowed in a label field"),
    "label.no_code": ("标签缺少袋码", "code: the package code is empty"),
    "label.unknown_category": ("未知废物类别 {text}", f"unknown category; one of {_CATEGORY_IDS}, not {{text}}"),
    "label.category_mismatch": ("类别 {category} 与袋码中的类别 {code_category} 不一致",
                                "category {category} does not match the bag code's category {code_category}"),
    "label.no_main_components": ("{category}标签须注明主要成分",
                                 "main_components: a {category} waste label must state its main components"),
    "label.main_components_too_long": ("主要成分太长（{chars} 个字，最多 {most} 个）",
                                       "main_components: {chars} characters, at most {most} fit on a label"),
    "label.negative_weight": ("重量不能为负（{grams} 克）", "weight_g: {grams}"),
    "label.uscc_format": ("统一社会信用代码 {uscc} 格式错误", "USCC {uscc}: 18 of 0-9 and A-Y without I O S V Z"),
    "label.uscc_check": ("统一社会信用代码 {uscc} 校验位错误，应为 {expected}",
                         "USCC {uscc}: check character should be {expected}"),
    "label.no_waste_name": ("缺少废物名称", "waste_name: required on an HJ 1276 label"),
    "label.hw_class_format": ("废物类别 {value} 格式错误", "hw_class {value}: like HW08"),
    "label.waste_code_format": ("废物代码 {value} 格式错误", "waste_code {value}: like 900-249-08"),
    "label.waste_code_class": ("废物代码 {waste_code} 与废物类别 {hw_class} 不一致",
                               "waste code {waste_code} is not of {hw_class}: its last two digits are its HW class"),
    "label.bad_hazards": ("危险特性 {hazards} 不合法，应为 {known} 中的一个或多个，各一次",
                          "hazards {hazards}: one or more of {known}, each once"),
    "label.bad_seq": ("序号 {seq} 超出范围", "seq {seq}: 1-999, the digital code's last 3 digits"),
    # layout (edge.labels.layout, edge.labels.elements)
    "label.bad_dpi": ("分辨率 {dpi} dpi 不支持，应为 {known} 之一", "dpi {dpi}: one of {known}"),
    "label.bad_size": ("标签尺寸 {width}×{height} mm 不合理", "label size {width}×{height} mm: 30-300 mm each side"),
    "label.too_small": ("标签太小，放不下 {height} 点高的文字",
                        "label too small: no room for a line of text {height} dots high; use a larger label size"),
    # {size} ("100×70 mm label at 203 dpi") has an empty Chinese side: the ward is told what to shorten,
    # the maintainer also which label size and dpi (the start-up check prefixes its config keys)
    "label.too_much": ("标签内容太多，{field} 放不下{size}", "the text does not fit on a {size}: shorten {field}"),
    "label.qr_too_big": ("二维码内容太长，标签上放不下（{chars} 个字符需要 {modules}×{modules} 个模块，"
                         "每个不足 {min_dots} 点）",
                         "QR payload of {chars} characters needs {modules}×{modules} modules: less than {min_dots} "
                         "dots each on this label"),
    "label.hazard_marks": ("危险特性标志放不下（{count} 个），请用更大的标签",
                           "{count} hazard marks do not fit: use a larger label"),
    "label.bitmap_size": ("位图 {width}×{height} 的数据为 {size} 字节，应为 {expected} 字节",
                          "bitmap {width}×{height}: {size} bytes, expected {expected}"),
    # drawing (edge.labels.raster)
    "label.font_missing": ("中文字体文件不存在：{env}={path}", "{env}={path}: no such file"),
    "label.no_font": ("未安装 {package}，也未设置 {env}：找不到中文字体",
                      "no CJK font found: apt-get install {package}, or set {env}"),
    "label.font_unreadable": ("中文字体无法读取：{path}（{reason}）", "{path}: {reason}"),
    "label.qr_overflow": ("二维码内容太长（{chars} 个字符）：{reason}", "QR payload of {chars} characters: {reason}"),
    "label.png_unwritable": ("无法写入 {path}（{reason}）", "cannot write the PNG {path}: {reason}"),
}
