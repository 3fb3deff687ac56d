"""Why a scanned QR payload was refused, or a code or key cannot be made (edge.codes): shown on the
kiosk, spoken, and printed by ``wastecart scan`` / ``wastecart qr make``.

Each side names every parameter (a test checks), so the English side says which value was wrong
too; a value quoted with ``repr`` arrives quoted (``kind='X'``).
"""

from __future__ import annotations

# key -> (zh, en); {fields} are filled by edge.messages.t().
ENTRIES: dict[str, tuple[str, str]] = {
    # the verdicts of CodeBook.decode, in the order they are checked
    "code.not_ours": ("不是本系统或已登记格式的二维码", "not a wastecart code nor a configured format"),
    "code.damaged": ("二维码已损坏或被涂改，请重新打印", "check characters do not match: damaged or altered"),
    "code.bad_field": ("二维码格式错误", "unknown kind or bad field"),
    "code.other_org": ("其他机构的二维码 ({org})，不能使用", "code of another organisation: {org}"),
    "code.no_mac": ("缺少防伪码，本机构只接受带防伪码的二维码，请重新打印",
                    "no MAC; this organisation requires signed codes"),
    "code.forged": ("防伪校验失败：二维码不是本机构签发的", "forged or issued with another key"),
    "code.no_category": ("袋标签缺少废物类别", "bag label without a valid category letter"),
    # configured external formats
    "code.external_ident": ("{format}的编号 {ident} 不能用作记录编号",
                            "{format}: ident {ident} must be 1-32 of A-Z 0-9 _ -"),
    "code.external_category": ("{format}的废物类别 {category} 无法识别", "{format}: unknown category {category}"),
    # making codes
    "code.unknown_kind": ("类型 {kind} 未知，应为 {kinds} 之一", "kind {kind} must be one of {kinds}"),
    "code.bad_value": ("字段 {field} 不合法", "field {field} must be 1-32 of A-Z 0-9 _ -"),
    "code.require_mac_without_key": ("require_mac 需要 MAC 密钥", "require_mac needs a MAC key"),
    # the organisation's key file (edge.codes.load_mac_key)
    "code.key_unreadable": ("MAC 密钥文件 {path} 无法读取（{reason}）", "MAC key file {path}: cannot read ({reason})"),
    "code.key_short": ("MAC 密钥文件 {path} 中的密钥太短（{size} 字节，至少 {min} 字节；"
                       "用 `openssl rand -hex 32 > {path}` 生成）",
                       "MAC key file {path}: key too short ({size} bytes, need at least {min}; "
                       "make one with `openssl rand -hex 32 > {path}`)"),
}
