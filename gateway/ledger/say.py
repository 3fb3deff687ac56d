"""The words a record page is written in (zh, en) and the ways it shows values: the parts
``words`` (version 1 bodies and the dispatch) and ``words_v2`` (version 2 bodies) share.

``Say`` is one language: ``say(key)`` a label, ``say.kg``, ``say.time`` (in the ledger's zone),
``say.person`` (``name (ID)`` when the body names the person, the ID alone otherwise), ``say.choice``
(a catalogue id -> its words).  Everything returns a plain string; "-" for a missing or odd value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge.catalogue import CATEGORY, ROLE, Choice

LABELS: dict[str, tuple[str, str]] = {
    "handover": ("交接记录", "Handover"), "storage_in": ("入库记录", "Storage check-in"),
    "storage_out": ("出库记录", "Storage check-out"), "transfer": ("转运交接", "Transfer to carrier"),
    "void": ("作废记录", "Void"), "correction": ("更正记录", "Correction"), "incident": ("异常记录", "Incident"),
    "department": ("科室", "Department"), "handover_at": ("交接时间", "Handed over at"),
    "nurse": ("交出人（科室）", "Handed over by (department)"), "collector": ("收集人", "Collector"),
    "cart": ("收集车", "Cart"), "round_id": ("收集轮次", "Round"), "destination": ("去向", "Destination"),
    "notes": ("备注", "Notes"), "total": ("合计", "Total"), "org": ("机构", "Organisation"),
    "facility": ("暂存间", "Storage room"), "moved_at": ("入库时间", "Checked in at"),
    "keeper": ("库管员", "Storage keeper"), "result": ("结果", "Result"), "tolerance": ("允许偏差", "Tolerance"),
    "overdue_after": ("超时阈值", "Overdue after"), "expected": ("应到", "Expected"),
    "present": ("实到", "Present"), "missing": ("缺失", "Missing"), "deviation": ("偏差", "Deviations"),
    "overdue": ("超时", "Overdue"), "reweighed": ("复称", "Re-weighed"), "delta": ("差值", "Difference"),
    "batch": ("整批复称", "Weighed as a batch"), "handed_over_at": ("交接时间", "Handed over at"),
    "from_party": ("交出人", "Handed over by"), "vehicle": ("运输车辆", "Vehicle"),
    "carrier_org": ("承运单位", "Carrier"), "driver": ("驾驶员", "Driver"), "manifest": ("联单", "Manifest"),
    "disposal_method": ("处置方法", "Disposal method"), "final_destination": ("最终去向", "Final destination"),
    "voided_at": ("作废时间", "Voided at"), "voided_record": ("作废对象", "Voids"),
    "package_code": ("包装编码", "Package code"), "reason": ("原因", "Reason"), "by": ("操作人", "By"),
    "whole_record": ("整条记录", "the whole record"), "category": ("类别", "Category"),
    "waste_code": ("废物代码", "Waste code"), "weight": ("重量 (kg)", "Weight (kg)"), "bags": ("袋数", "Bags"),
    "status": ("状态", "Status"), "expected_kg": ("应有 (kg)", "Expected (kg)"),
    "reweigh_kg": ("复称 (kg)", "Re-weighed (kg)"), "delta_kg": ("差值 (kg)", "Difference (kg)"),
    "bags_table": ("包装明细", "Bags"), "totals_table": ("按类别合计", "Totals by category"),
    "yes": ("是", "yes"), "no": ("否", "no"), "hours": ("{n} 小时", "{n} h"), "fields": ("字段", "Fields"),
    "bag_count": ("{n} 袋", "{n} bag(s)"),
    "card": ("刷卡", "card"), "face": ("人脸", "face"), "pin": ("PIN 码", "PIN"), "signature": ("签名", "signature"),
    "OK": ("正常", "OK"), "DEVIATION": ("偏差超限", "deviation"), "MISSING": ("缺失", "missing"),
    "IN_BATCH": ("整批称重", "in the batch"), "ACCEPTED": ("接收", "accepted"),
    "ACCEPTED_WITH_NOTE": ("接收（有异常）", "accepted with a note"), "REJECTED": ("拒收", "rejected"),
    "national": ("全国电子联单", "national e-manifest"), "local": ("地方联单", "local manifest"),
    "paper": ("纸质联单", "paper manifest"),
    "sentence_handover": ("{dept} 的 {nurse} 将 {n} 袋医疗废物（{kg} kg）交给收集人 {collector}（{cart}）。",
                          "{nurse} of {dept} handed {n} bag(s) of medical waste ({kg} kg) to collector {collector}"
                          " ({cart})."),
    "sentence_storage_in": ("{collector} 将 {n} 袋送入暂存间 {room}，库管员 {keeper}；结果：{result}。",
                            "{collector} checked {n} bag(s) into storage room {room}, keeper {keeper}; result: "
                            "{result}."),
    "sentence_transfer": ("{n} 袋（{kg} kg）由车辆 {vehicle} 运走，联单 {manifest}。",
                          "{n} bag(s) ({kg} kg) left on vehicle {vehicle} under manifest {manifest}."),
    "sentence_void": ("{by} 作废了 {what}，原因：{reason}。", "{by} voided {what}: {reason}."),
}

LABELS.update({  # version 2 bodies: names, dwell, disposal, incidents, corrections
    "org_name": ("机构", "Organisation"), "roster": ("名册版本", "Roster version"),
    "role": ("角色", "Role"), "department_name": ("科室", "Department"),
    "destination_room": ("去向（暂存间）", "Destination (storage room)"),
    "label_notes": ("备注", "Notes"), "main_components": ("主要成分", "Main components"),
    "dwell": ("停留 (小时)", "Dwell (h)"), "flag": ("时限", "Time limit"),
    "flag_overdue": ("超时", "OVERDUE"), "flag_warn": ("接近时限", "near the limit"), "flag_ok": ("正常", "OK"),
    "warn_count": ("接近时限", "Near the limit"),
    "ward_limit": ("科室→暂存时限", "Ward to storage limit"),
    "storage_limit": ("暂存时限", "Storage limit"),
    "limit_text": ("{h} 小时（{pct}% 时提醒）", "{h} h (warned at {pct} %)"),
    "rejected_note": ("拒收：本次未入库，包装仍在收集车上",
                      "rejected: nothing was checked in, the bags stay on the cart"),
    "incidents": ("遗失报告", "Loss reports"),
    "plate": ("车牌", "Plate"), "licence": ("许可证号", "Licence"),
    "receiver": ("接收单位（处置）", "Receiver (disposer)"),
    "uscc": ("统一社会信用代码", "USCC"), "address": ("地址", "Address"),
    "stored_at": ("入库时间", "Checked in at"),
    "reason_code": ("原因类别", "Reason (listed)"), "approved_by": ("批准人", "Approved by"),
    "incident_type": ("异常类型", "Incident type"), "occurred_at": ("发生时间", "Occurred at"),
    "reported_by": ("报告人", "Reported by"), "confirmed_by": ("确认人（主管）", "Confirmed by (supervisor)"),
    "description": ("情况说明", "Description"), "lost_table": ("遗失的包装", "Bags lost"),
    "corrected_at": ("更正时间", "Corrected at"), "corrected_record": ("更正对象", "Corrects"),
    "change_manifest": ("联单（原 → 新）", "Manifest (was → now)"),
    "sentence_handover_v2": ("{dept} 的 {nurse} 将 {n} 袋医疗废物（{kg} kg）交给收集人 {collector}（{cart}），"
                             "去向 {dest}。",
                             "{nurse} of {dept} handed {n} bag(s) of medical waste ({kg} kg) to collector {collector}"
                             " ({cart}), bound for {dest}."),
    "sentence_transfer_v2": ("{n} 袋（{kg} kg）由 {carrier} 的车辆 {plate}（驾驶员 {driver}）运往 {receiver}，"
                             "联单 {manifest}。",
                             "{n} bag(s) ({kg} kg) left with {carrier} on vehicle {plate} (driver {driver}) for "
                             "{receiver} under manifest {manifest}."),
    "sentence_void_v2": ("{by} 作废了 {what}，原因：{reason}；批准人 {approved}。",
                         "{by} voided {what}: {reason}; approved by {approved}."),
    "sentence_incident": ("{n} 袋医疗废物（{kg} kg）遗失：{reported} 报告，{confirmed} 确认。",
                          "{n} bag(s) of medical waste ({kg} kg) lost: reported by {reported}, confirmed by "
                          "{confirmed}."),
    "sentence_correction": ("{by} 更正了转运记录的联单：{was} → {now}，原因：{reason}；批准人 {approved}。",
                            "{by} corrected a transfer's manifest: {was} → {now}: {reason}; approved by {approved}."),
})

NONE = "-"


@dataclass(frozen=True)
class Table:
    caption: str
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Words:
    title: str
    sentence: str
    fields: list[tuple[str, str]]
    tables: list[Table] = field(default_factory=list)


class Say:
    """Words in one language, and the ways values are shown (kg with 3 decimals, times in the ledger's zone)."""

    def __init__(self, lang: str, tz: ZoneInfo | None) -> None:
        self.i = 0 if lang == "zh" else 1
        self.tz = tz

    def __call__(self, key: str) -> str:
        pair = LABELS.get(key)
        return pair[self.i] if pair else key

    def kg(self, grams: Any) -> str:
        return f"{grams / 1000:.3f}" if is_int(grams) else NONE

    def time(self, text: Any) -> str:
        if not isinstance(text, str):
            return NONE
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            return text
        if at.tzinfo is not None and self.tz is not None:
            at = at.astimezone(self.tz)
        shown = at.strftime("%Y-%m-%d %H:%M:%S %z")
        return shown[:-2] + ":" + shown[-2:] if at.tzinfo else shown

    def category(self, cid: Any) -> str:
        cat = CATEGORY.get(cid) if isinstance(cid, str) else None
        return (cat.zh if self.i == 0 else cat.en) if cat else text(cid)

    def person(self, party: Any, with_auth: bool = False) -> str:
        """``name (ID)`` when the body names the person (version 2), the ID alone otherwise; ``with_auth``
        adds how they signed (and a v2 signer's role): ``李护士 (NUR-01) · 科室护士 · 刷卡``."""
        if not isinstance(party, Mapping) or not isinstance(party.get("person_id"), str):
            return NONE
        out = self.named(party.get("name"), party["person_id"])
        if not with_auth:
            return out
        role = self.choice(ROLE, party.get("role")) if isinstance(party.get("role"), str) else None
        auth = self(party["auth_method"]) if isinstance(party.get("auth_method"), str) else None
        if role is not None:  # a v2 signer
            return " · ".join(x for x in (out, role, auth) if x)
        return f"{out} ({auth})" if auth else out

    def named(self, name: Any, code: Any) -> str:
        """``name (CODE)``; the code alone when there is no name."""
        if isinstance(name, str) and name:
            return f"{name} ({text(code)})" if code not in (None, "") else name
        return text(code)

    def choice(self, choices: Mapping[str, Choice], cid: Any) -> str:
        """A catalogue id in words (a role, a void reason, a label note, an incident type); the id if unknown."""
        found = choices.get(cid) if isinstance(cid, str) else None
        return (found.zh if self.i == 0 else found.en) if found else text(cid)

    def hours(self, seconds: Any) -> str:
        return self("hours").format(n=round(seconds / 3600, 1)) if is_int(seconds) else NONE

    def word(self, value: Any) -> str:
        return self(value) if isinstance(value, str) else text(value)


def bags_table(say: Say, lines: list[Mapping[str, Any]]) -> Table:
    return Table(say("bags_table"), [say("package_code"), say("category"), say("waste_code"), say("weight")],
                 [[text(x.get("package_code")), say.category(x.get("category")), text(x.get("waste_code")),
                   say.kg(x.get("weight_g"))] for x in lines])


def void_head(say: Say, body: Mapping[str, Any]) -> tuple[list[tuple[str, str]], str, Mapping[str, Any]]:
    """What a void of either body version says first: when, which record, which bag (or the whole
    record); with the words for the sentence and who voided it."""
    code = body.get("package_code")
    target = f"{say.word(body.get('voided_type')) if body.get('voided_type') else NONE} " \
             f"{text(body.get('voided_record_id'))}"
    bag = code if isinstance(code, str) and code else None
    fields = [(say("voided_at"), say.time(body.get("voided_at"))), (say("voided_record"), target),
              (say("package_code"), bag or say("whole_record"))]
    return fields, f"{say('package_code')} {bag}" if bag else say("whole_record"), obj(body.get("by"))


def totals_table(say: Say, totals: Any) -> Table:
    return Table(say("totals_table"), [say("category"), say("bags"), say("weight")],
                 [[say.category(t.get("category")), text(t.get("count")), say.kg(t.get("weight_g"))]
                  for t in items(totals)])


def optional(say: Say, body: Mapping[str, Any], keys: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(say(k), text(body[k])) for k in keys if body.get(k) not in (None, "")]


def label(say: Say, key: str) -> str:
    """A field's label: ours where we have one, else its name in words; grams are shown as kg."""
    if key.endswith("_g"):
        base = key[:-2]
        return say("weight") if base == "weight" else f"{label(say, base)} (kg)"
    if key in LABELS:
        return say(key)
    return key.replace("_", " ").capitalize()


def scalar(say: Say, key: str, value: Any) -> str:
    if isinstance(value, bool):
        return say("yes") if value else say("no")
    if key.endswith("_at"):
        return say.time(value)
    if key.endswith("_g"):
        return say.kg(value)
    if key == "category":
        return say.category(value)
    return text(value)


def obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def items(value: Any) -> list[Mapping[str, Any]]:
    return [x for x in value if isinstance(x, Mapping)] if isinstance(value, list) else []


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def signed_kg(grams: Any) -> str:
    return f"{grams / 1000:+.3f}" if is_int(grams) else NONE


def text(value: Any) -> str:
    return NONE if value is None or value == "" else str(value)
