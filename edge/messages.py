"""Every word the cart says to a person, as a Chinese/English pair.

One catalogue so that wording is reviewed in one place and each prompt exists in both languages
(Chinese is primary: collectors and nurses read it; English is for maintainers and auditors).
Texts are short and concrete: they are read by a gloved collector on a noisy ward, and spoken.
Pure data plus ``t(key, **fields)``; no I/O.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    """A bilingual text.  Empty (both parts "") means "nothing to show"; ``in`` looks in both
    languages so callers can test for a phrase without caring which one they know."""

    zh: str = ""
    en: str = ""

    def __bool__(self) -> bool:
        return bool(self.zh or self.en)

    def __contains__(self, part: str) -> bool:
        return part in self.zh or part in self.en

    def __str__(self) -> str:
        return self.zh or self.en

    def as_json(self) -> dict[str, str] | None:
        return {"zh": self.zh, "en": self.en} if self else None


NONE = Text()

# Medical-waste categories (waste-domain §2): enum -> (Chinese, English, button colour).  The
# colours only tell buttons apart at a glance; INFECTIOUS is the yellow of the bags themselves.
CATEGORY_NAMES: dict[str, tuple[str, str, str]] = {
    "INFECTIOUS": ("感染性废物", "Infectious", "#f5d000"),
    "SHARPS": ("损伤性废物", "Sharps", "#e67e22"),
    "PATHOLOGICAL": ("病理性废物", "Pathological", "#8e44ad"),
    "PHARMACEUTICAL": ("药物性废物", "Pharmaceutical", "#2e86c1"),
    "CHEMICAL": ("化学性废物", "Chemical", "#17a589"),
}


def category_name(category: str) -> Text:
    zh, en, _ = CATEGORY_NAMES.get(category, (category, category, ""))
    return Text(zh, en)


# key -> (zh, en); {fields} are filled by t().  Keep both sides' fields identical (a test checks).
CATALOGUE: dict[str, tuple[str, str]] = {
    # titles
    "title.idle": ("医废收集车", "Waste cart"),
    "title.round": ("收集中", "Collection round"),
    "title.stop": ("科室交接", "Department handover"),
    "title.confirm": ("护士确认", "Nurse confirmation"),
    "title.saving": ("正在保存", "Saving"),
    "title.storage": ("暂存间入库", "Storage check-in"),
    "title.transfer": ("转运交接", "Hand-over to transporter"),
    "title.void": ("作废", "Void"),
    # prompts
    "prompt.idle": ("请扫描收集人员工牌", "Scan the collector's badge"),
    "prompt.round": ("请扫描科室交接码；到暂存间请扫描暂存间码",
                     "Scan the department code; at the storage room scan the room code"),
    "prompt.place_bag": ("请放置医废袋称重", "Put a bag on the scale"),
    "prompt.wait_stable": ("等待重量稳定…", "Waiting for a stable weight…"),
    "prompt.label_or_choose": ("请扫描袋标签，或选择类别打印标签",
                               "Scan the bag label, or choose a category to print one"),
    "prompt.choose": ("请选择废物类别", "Choose the waste category"),
    "prompt.print_or_scan": ("请打印标签，或扫描已有袋标签", "Print a label, or scan the bag's label"),
    "prompt.printing": ("正在打印标签…", "Printing the label…"),
    "prompt.edit": ("请选择新的类别", "Choose the new category"),
    "prompt.next_bag": ("请取下此袋，放置下一袋；完成后请护士确认",
                        "Take the bag off and put the next one on; then the nurse confirms"),
    "prompt.confirm": ("请护士扫描工牌或输入PIN确认", "Nurse: scan your badge or enter your PIN"),
    "prompt.saving": ("正在保存…", "Saving…"),
    "prompt.storage": ("逐袋放秤并扫描袋标签复核，或整批称重；完成后点“完成入库”",
                       "Re-weigh each bag and scan its label, or weigh the batch; then tap Finish"),
    "prompt.storage_done": ("已全部复核，请点“完成入库”", "All bags re-weighed: tap Finish"),
    "prompt.transfer": ("请输入转移联单号，核对合计后点“完成交接”",
                        "Enter the manifest number, check the totals, then tap Finish"),
    "prompt.transfer_ready": ("请核对合计后点“完成交接”", "Check the totals, then tap Finish"),
    "prompt.void": ("请扫描要作废的袋标签", "Scan the label of the bag to void"),
    # buttons
    "action.end_round": ("结束本轮", "End round"),
    "action.print_label": ("打印标签", "Print label"),
    "action.remove_last": ("删除最后一袋", "Remove last bag"),
    "action.undo_reweigh": ("撤销最后复核", "Undo last re-weigh"),
    "action.edit": ("修改 {code} 类别", "Change category of {code}"),
    "action.confirm": ("护士确认", "Nurse confirms"),
    "action.confirm_pin": ("输入PIN确认", "Confirm with PIN"),
    "action.back": ("返回", "Back"),
    "action.cancel_bag": ("取消此袋", "Cancel this bag"),
    "action.cancel_edit": ("取消修改", "Cancel change"),
    "action.leave_stop": ("离开科室", "Leave department"),
    "action.cancel": ("取消", "Cancel"),
    "action.batch_weight": ("整批称重", "Weigh as one batch"),
    "action.finish_storage": ("完成入库", "Finish check-in"),
    "action.manifest": ("输入联单号", "Enter manifest number"),
    "action.finish_transfer": ("完成交接", "Finish hand-over"),
    "action.void_bag": ("作废一袋", "Void a bag"),
    "action.void_record": ("作废上一条记录 #{seq}", "Void last record #{seq}"),
    "action.start_storage": ("暂存间入库", "Storage check-in"),
    "action.start_transfer": ("转运交接", "Hand over to transporter"),
    "action.scale_out": ("伸出秤盘", "Slide scale out"),
    "action.scale_in": ("收回秤盘", "Slide scale in"),
    # confirmations (green) and spoken step changes
    "ok.round_started": ("收集人员 {person}，开始收集", "Collector {person}: round started"),
    "ok.round_ended": ("本轮收集已结束", "Round ended"),
    "ok.round_ended_carrying": ("本轮已结束，车上还有 {count} 袋待入库",
                                "Round ended; {count} bag(s) on the cart still to be stored"),
    "ok.department": ("科室 {department}", "Department {department}"),
    "ok.left_stop": ("已离开科室", "Left the department"),
    "ok.bag_added": ("已登记 {code} {category} {grams} 克", "Added {code} {category_en} {grams} g"),
    "ok.bag_removed": ("已删除 {code}", "Removed {code}"),
    "ok.bag_cancelled": ("已取消此袋", "Bag cancelled"),
    "ok.label_scanned": ("袋标签无类别，请选择", "Label has no category: choose one"),
    "ok.category_chosen": ("已选 {category}，请打印或扫描标签", "{category_en} chosen: print or scan a label"),
    "ok.category_changed": ("{code} 改为 {category}", "{code} changed to {category_en}"),
    "ok.confirm": ("请护士确认", "Nurse, please confirm"),
    "ok.saved_handover": ("已保存交接记录 #{seq}", "Handover record #{seq} saved"),
    "ok.saved_storage": ("已保存入库记录 #{seq}", "Storage check-in #{seq} saved"),
    "ok.saved_transfer": ("已保存转运交接记录 #{seq}", "Transfer record #{seq} saved"),
    "ok.saved_void": ("已保存作废记录 #{seq}", "Void record #{seq} saved"),
    "ok.storage": ("暂存间 {room}，共 {count} 袋待入库", "Storage room {room}: {count} bag(s) to check in"),
    "ok.reweighed": ("{code} 复核 {grams} 克", "{code} re-weighed: {grams} g"),
    "ok.reweigh_undone": ("已撤销 {code} 的复核", "Re-weigh of {code} undone"),
    "ok.batch": ("整批 {count} 袋共 {grams} 克", "Batch of {count} bag(s): {grams} g"),
    "ok.keeper": ("暂存间管理员 {person}", "Storage keeper {person}"),
    "ok.transfer": ("车辆 {vehicle}，共 {count} 袋", "Vehicle {vehicle}: {count} bag(s)"),
    "ok.manifest": ("联单号 {number}", "Manifest {number}"),
    "ok.void_scan": ("请扫描要作废的袋标签", "Scan the bag to void"),
    "ok.cancelled": ("已取消", "Cancelled"),
    "ok.scale_moving": ("秤盘移动中", "Scale platform moving"),
    # refusals (red) and warnings
    "err.badge_first": ("请先扫描收集人员工牌", "Scan the collector's badge first"),
    "err.foreign_org": ("其他机构的二维码（{org}），不能使用", "Code of another organisation ({org}): refused"),
    "err.department_first": ("请先扫描科室交接码", "Scan the department code first"),
    "err.badge_no_department": ("此工牌未关联科室，请扫描科室交接码",
                                "This badge names no department: scan the department code"),
    "err.unconfirmed": ("本科室还有未确认的交接，请护士先确认",
                        "Bags here are not confirmed yet: the nurse must confirm first"),
    "err.collector_cannot_confirm": ("交接须由科室护士确认，不能由收集人员确认",
                                     "The nurse must confirm, not the collector"),
    "err.no_lines": ("请先称重并登记医废袋", "Weigh and add a bag first"),
    "err.saving": ("正在保存，请稍候", "Saving, please wait"),
    "err.code_not_here": ("此二维码在当前步骤无效", "This code is not used at this step"),
    "err.finish_or_cancel": ("请先完成或取消当前操作", "Finish or cancel the current step first"),
    "err.not_available": ("此操作当前不可用", "Not available now"),
    "err.dup_stop": ("袋 {code} 已登记，不能重复", "Bag {code} is already on this list"),
    "err.dup_carried": ("袋 {code} 已交接过，不能重复", "Bag {code} was already handed over"),
    "err.dup_stored": ("袋 {code} 已入库，不能重复", "Bag {code} is already in storage"),
    "err.no_reading": ("秤无读数，请检查秤", "No reading from the scale: check it"),
    "err.scale": ("秤报错：{reason}", "Scale error: {reason_en}"),
    "err.unstable": ("重量未稳定，请稍候", "Weight not stable yet, please wait"),
    "err.negative": ("重量为负，请清空秤盘并归零", "Negative weight: empty the platform and zero the scale"),
    "err.empty": ("秤上无重量，请先放置医废袋", "Nothing on the scale: put the bag on first"),
    "err.overload": ("超过最大称量 {kg} 公斤，请分装", "Over the {kg} kg maximum: split the load"),
    "err.not_armed": ("请先取下上一袋再放置新袋", "Take the previous bag off first"),
    "err.actuator": ("秤盘未伸出，请稍候", "Scale platform not out yet, please wait"),
    "err.actuator_fault": ("秤盘伸缩故障，请检查", "Scale slide-out fault: check it"),
    "err.actuator_fault_why": ("秤盘伸缩故障：{reason}，请检查", "Scale slide-out fault: {reason_en}; check it"),
    "err.category_mismatch": ("所选类别（{chosen}）与袋标签（{label}）不符",
                              "Chosen category ({chosen_en}) does not match the label ({label_en})"),
    "err.pending": ("请先完成或取消当前这一袋", "Finish or cancel the current bag first"),
    "err.printing": ("正在打印标签，请稍候", "Printing the label, please wait"),
    "err.print_failed": ("标签打印失败：{reason}，请重试或扫描已有标签",
                         "Label not printed: {reason_en}; retry or scan a label"),
    "err.commit_failed": ("保存失败，请重试：{reason}", "Could not save, try again: {reason_en}"),
    "err.round_overdue": ("本轮已超过 {hours} 小时，请尽快入库并结束",
                          "Round open over {hours} h: store the bags and end it"),
    "err.not_carried": ("袋 {code} 不在本车待入库清单中", "Bag {code} is not on this cart's list"),
    "err.reweighed": ("袋 {code} 已复核，不能重复", "Bag {code} was already re-weighed"),
    "err.nothing_to_store": ("车上没有待入库的医废袋", "No bags on the cart to check in"),
    "err.reweigh_first": ("请先复核称重", "Re-weigh the bags first"),
    "err.nothing_to_transfer": ("没有待转运的医废袋", "No stored bags to hand over"),
    "err.manifest_needed": ("请先输入转移联单号", "Enter the manifest number first"),
    "err.manifest_bad": ("联单号格式不正确", "Manifest number not valid"),
    "err.reason_needed": ("请填写作废原因", "Give a reason for the void"),
    "err.not_on_cart": ("袋 {code} 不在本车记录中", "Bag {code} is not in this cart's records"),
    "err.place_bad": ("编号格式不正确，请扫描二维码", "Code not valid: scan the QR code"),
    "err.bad_person": ("人员编号无效", "Not a valid staff id"),
    "err.package_id": ("无法生成袋编号，请重试", "Could not make a new package code, try again"),
    "err.pin_unchecked": ("PIN须由系统核验", "The PIN must be checked by the cart"),
    "err.confirming": ("正在等待护士确认，请先返回", "Waiting for the nurse: tap Back first"),
}

_FIELDS = re.compile(r"\{(\w+)\}")


def t(key: str, **fields: object) -> Text:
    """The catalogue entry ``key`` with its ``{fields}`` filled in (missing fields stay visible)."""
    zh, en = CATALOGUE[key]
    values = _Defaulting({k: str(v) for k, v in fields.items()})
    return Text(string.Formatter().vformat(zh, (), values), string.Formatter().vformat(en, (), values))


class _Defaulting(dict[str, str]):
    """``{x_en}`` falls back to ``{x}``; an absent field shows as ``{x}`` instead of raising."""

    def __missing__(self, key: str) -> str:
        if key.endswith("_en") and key[:-3] in self:
            return self[key[:-3]]
        return "{" + key + "}"


def fields_of(text: str) -> set[str]:
    return set(_FIELDS.findall(text))


_BILINGUAL = re.compile(r"^(?P<zh>.*\S)\s*[（(](?P<en>[^（()）]*[A-Za-z][^（()）]*)[)）]\s*$", re.S)


def split(text: str) -> Text:
    """A shell message written as ``中文 (English)`` (codes and scale errors) as a Text."""
    m = _BILINGUAL.match(text.strip())
    if m is None:
        return Text(text, text)
    return Text(m["zh"].strip(), m["en"].strip())
