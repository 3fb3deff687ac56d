"""A record's body in words (zh and en): who, where, what, how much — what an inspector reads, not JSON.

``describe(envelope, lang, tz)`` -> ``Words``: a title, one sentence, (label, value) pairs and tables
of bags, all plain strings (the page escapes them).  One function per record type of
``edge.workflow.records`` (waste-domain §8.4–8.6 and voids); any other type (a correction, an
incident) gets its scalar fields listed with readable labels.  Bodies passed the record schema
when stored, but are read defensively: a missing or odd field shows as "-", never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge.catalogue import CATEGORY

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
    "disposal_method": ("处置方式", "Disposal method"), "final_destination": ("最终去向", "Final destination"),
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


class _Say:
    """Words in one language, and the ways values are shown (kg with 3 decimals, times in the ledger's zone)."""

    def __init__(self, lang: str, tz: ZoneInfo | None) -> None:
        self.i = 0 if lang == "zh" else 1
        self.tz = tz

    def __call__(self, key: str) -> str:
        pair = LABELS.get(key)
        return pair[self.i] if pair else key

    def kg(self, grams: Any) -> str:
        return f"{grams / 1000:.3f}" if _int(grams) else NONE

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
        return (cat.zh if self.i == 0 else cat.en) if cat else _text(cid)

    def person(self, party: Any, with_auth: bool = False) -> str:
        if not isinstance(party, Mapping) or not isinstance(party.get("person_id"), str):
            return NONE
        out = str(party["person_id"])
        if with_auth and isinstance(party.get("auth_method"), str):
            out += f" ({self(party['auth_method'])})"
        return out

    def word(self, value: Any) -> str:
        return self(value) if isinstance(value, str) else _text(value)


def describe(envelope: Mapping[str, Any], lang: str = "zh", tz: ZoneInfo | None = None) -> Words:
    """The record in words; ``tz``: the zone its times are shown in (as written when None)."""
    say = _Say(lang, tz)
    body = envelope.get("body")
    rtype = str(envelope.get("type", ""))
    return _BY_TYPE.get(rtype, _generic)(say, rtype, _obj(body), envelope)


def _handover(say: _Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    lines = _items(body.get("lines"))
    grams = sum(x["weight_g"] for x in lines if _int(x.get("weight_g")))
    to = _obj(body.get("to_party"))
    cart = _text(to.get("device_id") or env.get("cart"))
    dept, nurse, collector = _text(body.get("department")), say.person(body.get("from_party")), say.person(to)
    return Words(say(rtype), say("sentence_handover").format(dept=dept, nurse=nurse, n=len(lines), kg=say.kg(grams),
                                                            collector=collector, cart=cart), [
        (say("department"), dept),
        (say("handover_at"), say.time(body.get("handover_at"))),
        (say("nurse"), say.person(body.get("from_party"), with_auth=True)),
        (say("collector"), collector), (say("cart"), cart),
        (say("total"), f"{say('bag_count').format(n=len(lines))}, {say.kg(grams)} kg"),
        *_optional(say, body, ("destination", "notes", "round_id")),
    ], [_bags(say, lines), _totals(say, body.get("totals"))])


def _storage_in(say: _Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    packages = _items(body.get("packages"))
    summary = _obj(body.get("summary"))
    tol = _obj(body.get("tolerance"))
    collector, keeper = say.person(body.get("operator")), say.person(body.get("keeper"), with_auth=True)
    present = [p for p in packages if p.get("status") != "MISSING"]
    fields = [
        (say("facility"), _text(body.get("facility"))), (say("moved_at"), say.time(body.get("moved_at"))),
        (say("collector"), collector), (say("keeper"), keeper), (say("result"), say.word(body.get("result"))),
        (say("expected"), say("bag_count").format(n=summary.get("expected_count", len(packages)))),
        (say("present"), say("bag_count").format(n=summary.get("present_count", len(present)))),
        (say("missing"), _text(summary.get("missing_count"))),
        (say("deviation"), _text(summary.get("deviation_count"))),
        (say("overdue"), _text(summary.get("overdue_count"))),
        (say("expected_kg"), say.kg(summary.get("expected_g"))),
        (say("reweigh_kg"), say.kg(summary.get("reweigh_g"))),
        (say("delta_kg"), _signed_kg(summary.get("delta_g"))),
        (say("tolerance"), f"max({_text(tol.get('min_g'))} g, {_text(tol.get('pct'))} %)"),
    ]
    if _int(body.get("overdue_after_s")):
        fields.append((say("overdue_after"), say("hours").format(n=round(body["overdue_after_s"] / 3600, 1))))
    batch = body.get("batch")
    if isinstance(batch, Mapping):
        codes = ", ".join(c for c in batch.get("package_codes") or [] if isinstance(c, str))
        fields.append((say("batch"), f"{codes}: {say.kg(batch.get('expected_g'))} → {say.kg(batch.get('reweigh_g'))}"
                                     f" kg ({say.word(batch.get('status'))})"))
    fields += _optional(say, body, ("notes", "round_id"))
    table = Table(say("bags_table"), [say("package_code"), say("category"), say("department"), say("status"),
                                      say("expected_kg"), say("reweigh_kg"), say("delta_kg"), say("overdue")],
                  [[_text(p.get("package_code")), say.category(p.get("category")), _text(p.get("department")),
                    say.word(p.get("status")), say.kg(p.get("expected_g")), say.kg(p.get("reweigh_g")),
                    _signed_kg(p.get("delta_g")), say("yes") if p.get("overdue") is True else say("no")]
                   for p in packages])
    sentence = say("sentence_storage_in").format(collector=collector, n=len(present), room=_text(body.get("facility")),
                                                 keeper=keeper, result=say.word(body.get("result")))
    return Words(say(rtype), sentence, fields, [table])


def _transfer(say: _Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    lines = _items(body.get("lines"))
    grams = sum(x["weight_g"] for x in lines if _int(x.get("weight_g")))
    carrier = _obj(body.get("carrier"))
    manifest = _obj(body.get("manifest"))
    shown_manifest = f"{say.word(manifest.get('type'))} {_text(manifest.get('number'))}"
    source = _obj(body.get("from_party"))
    fields = [
        (say("handed_over_at"), say.time(body.get("handed_over_at"))),
        (say("from_party"), f"{say.person(source)} ({_text(source.get('device_id'))})"),
        (say("vehicle"), _text(carrier.get("vehicle"))),
        *([(say("carrier_org"), _text(carrier["org"]))] if carrier.get("org") else []),
        *([(say("driver"), _text(carrier["driver_id"]))] if carrier.get("driver_id") else []),
        (say("manifest"), shown_manifest),
        (say("total"), f"{say('bag_count').format(n=len(lines))}, {say.kg(grams)} kg"),
        *_optional(say, body, ("disposal_method", "final_destination", "notes", "round_id")),
    ]
    sentence = say("sentence_transfer").format(n=len(lines), kg=say.kg(grams), vehicle=_text(carrier.get("vehicle")),
                                               manifest=shown_manifest)
    table = Table(say("bags_table"), [say("package_code"), say("category"), say("waste_code"), say("weight"),
                                      say("facility")],
                  [[_text(x.get("package_code")), say.category(x.get("category")), _text(x.get("waste_code")),
                    say.kg(x.get("weight_g")), _text(x.get("facility"))] for x in lines])
    return Words(say(rtype), sentence, fields, [table, _totals(say, body.get("totals"))])


def _void(say: _Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    code = body.get("package_code")
    target = f"{say.word(body.get('voided_type')) if body.get('voided_type') else NONE} " \
             f"{_text(body.get('voided_record_id'))}"
    what = f"{say('package_code')} {code}" if isinstance(code, str) and code else say("whole_record")
    by = _obj(body.get("by"))
    fields = [(say("voided_at"), say.time(body.get("voided_at"))), (say("voided_record"), target),
              (say("package_code"), code if isinstance(code, str) and code else say("whole_record")),
              (say("reason"), _text(body.get("reason"))),
              (say("by"), f"{say.person(by)} ({_text(by.get('device_id'))})")]
    sentence = say("sentence_void").format(by=say.person(by), what=what, reason=_text(body.get("reason")))
    return Words(say(rtype), sentence, fields)


def _generic(say: _Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    """Any other type: its scalar fields (one level of nesting flattened), lists of objects as tables."""
    fields: list[tuple[str, str]] = []
    tables: list[Table] = []
    for key, value in body.items():
        if isinstance(value, Mapping):
            fields += [(f"{_label(say, key)} · {_label(say, k)}", _scalar(say, k, v)) for k, v in value.items()
                       if not isinstance(v, (Mapping, list))]
        elif isinstance(value, list):
            items = _items(value)
            if items:
                cols = [k for k in items[0] if not isinstance(items[0][k], (Mapping, list))]
                tables.append(Table(_label(say, key), [_label(say, c) for c in cols],
                                    [[_scalar(say, c, x.get(c)) for c in cols] for x in items]))
            else:
                fields.append((_label(say, key), ", ".join(_text(v) for v in value)))
        else:
            fields.append((_label(say, key), _scalar(say, key, value)))
    return Words(say(rtype) if rtype in LABELS else rtype, "", fields, tables)


_BY_TYPE: dict[str, Callable[[_Say, str, Mapping[str, Any], Mapping[str, Any]], Words]] = {
    "handover": _handover, "storage_in": _storage_in, "transfer": _transfer, "void": _void}


def _bags(say: _Say, lines: list[Mapping[str, Any]]) -> Table:
    return Table(say("bags_table"), [say("package_code"), say("category"), say("waste_code"), say("weight")],
                 [[_text(x.get("package_code")), say.category(x.get("category")), _text(x.get("waste_code")),
                   say.kg(x.get("weight_g"))] for x in lines])


def _totals(say: _Say, totals: Any) -> Table:
    return Table(say("totals_table"), [say("category"), say("bags"), say("weight")],
                 [[say.category(t.get("category")), _text(t.get("count")), say.kg(t.get("weight_g"))]
                  for t in _items(totals)])


def _optional(say: _Say, body: Mapping[str, Any], keys: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(say(k), _text(body[k])) for k in keys if body.get(k) not in (None, "")]


def _label(say: _Say, key: str) -> str:
    """A field's label: ours where we have one, else its name in words; grams are shown as kg."""
    if key.endswith("_g"):
        base = key[:-2]
        return say("weight") if base == "weight" else f"{_label(say, base)} (kg)"
    if key in LABELS:
        return say(key)
    return key.replace("_", " ").capitalize()


def _scalar(say: _Say, key: str, value: Any) -> str:
    if isinstance(value, bool):
        return say("yes") if value else say("no")
    if key.endswith("_at"):
        return say.time(value)
    if key.endswith("_g"):
        return say.kg(value)
    if key == "category":
        return say.category(value)
    return _text(value)


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [x for x in value if isinstance(x, Mapping)] if isinstance(value, list) else []


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _signed_kg(grams: Any) -> str:
    return f"{grams / 1000:+.3f}" if _int(grams) else NONE


def _text(value: Any) -> str:
    return NONE if value is None or value == "" else str(value)
