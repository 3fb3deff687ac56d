"""Version 2 record bodies in words (zh and en): names beside codes, who signed in which role, the
roster version, dwell against its limit, the carrier and the receiver with 处置方法 and 最终去向, a
void's reason and its approver, a loss (incident) and a correction of a departed transfer.

Shapes: ``edge/schemas/record.schema.json`` ``body_<type>_v2``.  Read as defensively as version 1
(``words``): an odd field shows as "-".  ``BY_TYPE``: the record types told here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edge.catalogue import INCIDENT_TYPE, LABEL_NOTE, VOID_REASON
from gateway.ledger.say import (
    NONE,
    Say,
    Table,
    Words,
    is_int,
    items,
    obj,
    signed_kg,
    text,
    totals_table,
    void_head,
)


def _common(say: Say, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What every v2 body ends with: the organisation by name and the roster it was judged by."""
    roster = obj(body.get("roster"))
    out = []
    if body.get("org_name") or body.get("org"):
        out.append((say("org"), say.named(body.get("org_name"), body.get("org"))))
    out.append((say("roster"), text(roster.get("version"))))
    return out


def _flag(say: Say, item: Mapping[str, Any]) -> str:
    """A bag's dwell against its limit: overdue, near it (the warn share), or within it."""
    if item.get("overdue") is True:
        return say("flag_overdue")
    return say("flag_warn") if item.get("warn") is True else say("flag_ok")


def _limit(say: Say, limits: Any, key: str) -> str:
    limits = obj(limits)
    if not is_int(limits.get(key)):
        return NONE
    return say("limit_text").format(h=round(limits[key] / 3600, 1), pct=text(limits.get("warn_pct")))


def _grams(lines: list[Mapping[str, Any]], key: str = "weight_g") -> int:
    return sum(x[key] for x in lines if is_int(x.get(key)))


def _handover(say: Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    lines = items(body.get("lines"))
    grams = _grams(lines)
    to = obj(body.get("to_party"))
    cart = text(to.get("device_id") or env.get("cart"))
    dept = say.named(body.get("department_name"), body.get("department"))
    dest = obj(body.get("destination"))
    room = say.named(dest.get("name"), dest.get("facility")) if dest else NONE
    nurse, collector = say.person(body.get("from_party")), say.person(to)
    sentence = say("sentence_handover_v2").format(dept=dept, nurse=nurse, n=len(lines), kg=say.kg(grams),
                                                  collector=collector, cart=cart, dest=room)
    fields = [
        (say("department"), dept), (say("handover_at"), say.time(body.get("handover_at"))),
        (say("nurse"), say.person(body.get("from_party"), with_auth=True)),
        (say("collector"), collector), (say("cart"), cart),
        (say("total"), f"{say('bag_count').format(n=len(lines))}, {say.kg(grams)} kg"),
        (say("destination_room"), room),
        *([(say("notes"), text(body["notes"]))] if body.get("notes") else []),
        (say("round_id"), text(body.get("round_id"))), *_common(say, body),
    ]
    table = Table(say("bags_table"), [say("package_code"), say("category"), say("waste_code"), say("weight"),
                                      say("label_notes"), say("main_components")],
                  [[text(x.get("package_code")), say.category(x.get("category")), text(x.get("waste_code")),
                    say.kg(x.get("weight_g")), _notes(say, x.get("notes")), text(x.get("main_components"))]
                   for x in lines])
    return Words(say(rtype), sentence, fields, [table, totals_table(say, body.get("totals"))])


def _notes(say: Say, notes: Any) -> str:
    shown = [say.choice(LABEL_NOTE, n) for n in notes] if isinstance(notes, list) else []
    return "；".join(shown) if shown else NONE


def _storage_in(say: Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    packages = items(body.get("packages"))
    summary, tol = obj(body.get("summary")), obj(body.get("tolerance"))
    collector, keeper = say.person(body.get("operator")), say.person(body.get("keeper"), with_auth=True)
    room = say.named(body.get("facility_name"), body.get("facility"))
    present = [p for p in packages if p.get("status") != "MISSING"]
    result = say.word(body.get("result"))
    fields = [
        (say("facility"), room), (say("moved_at"), say.time(body.get("moved_at"))),
        (say("collector"), collector), (say("keeper"), keeper),
        (say("result"), say("rejected_note") if body.get("result") == "REJECTED" else result),
        (say("expected"), say("bag_count").format(n=summary.get("expected_count", len(packages)))),
        (say("present"), say("bag_count").format(n=summary.get("present_count", len(present)))),
        (say("missing"), text(summary.get("missing_count"))),
        (say("deviation"), text(summary.get("deviation_count"))),
        (say("overdue"), text(summary.get("overdue_count"))), (say("warn_count"), text(summary.get("warn_count"))),
        (say("ward_limit"), _limit(say, body.get("limits"), "ward_max_s")),
        (say("expected_kg"), say.kg(summary.get("expected_g"))), (say("reweigh_kg"), say.kg(summary.get("reweigh_g"))),
        (say("delta_kg"), signed_kg(summary.get("delta_g"))),
        (say("tolerance"), f"max({text(tol.get('min_g'))} g, {text(tol.get('pct'))} %)"),
    ]
    batch = body.get("batch")
    if isinstance(batch, Mapping):
        codes = ", ".join(c for c in batch.get("package_codes") or [] if isinstance(c, str))
        fields.append((say("batch"), f"{codes}: {say.kg(batch.get('expected_g'))} → {say.kg(batch.get('reweigh_g'))}"
                                     f" kg ({say.word(batch.get('status'))})"))
    incidents = [i for i in body.get("incidents") or [] if isinstance(i, str)]
    if incidents:
        fields.append((say("incidents"), ", ".join(incidents)))
    if body.get("notes"):
        fields.append((say("notes"), text(body["notes"])))
    fields += [(say("round_id"), text(body.get("round_id"))), *_common(say, body)]
    table = Table(say("bags_table"), [say("package_code"), say("category"), say("department"), say("status"),
                                      say("expected_kg"), say("reweigh_kg"), say("delta_kg"), say("dwell"),
                                      say("flag")],
                  [[text(p.get("package_code")), say.category(p.get("category")),
                    say.named(p.get("department_name"), p.get("department")), say.word(p.get("status")),
                    say.kg(p.get("expected_g")), say.kg(p.get("reweigh_g")), signed_kg(p.get("delta_g")),
                    _h(p.get("dwell_s")), _flag(say, p)] for p in packages])
    sentence = say("sentence_storage_in").format(collector=collector, n=len(present), room=room, keeper=keeper,
                                                 result=result)
    return Words(say(rtype), sentence, fields, [table])


def _h(seconds: Any) -> str:
    return f"{seconds / 3600:.1f}" if is_int(seconds) else NONE


def _transfer(say: Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    lines = items(body.get("lines"))
    grams = _grams(lines)
    carrier, receiver, manifest = obj(body.get("carrier")), obj(body.get("receiver")), obj(body.get("manifest"))
    summary = obj(body.get("summary"))
    shown_manifest = f"{say.word(manifest.get('type'))} {text(manifest.get('number'))}"
    source = obj(body.get("from_party"))
    driver = say.person(carrier.get("driver"))
    fields = [
        (say("handed_over_at"), say.time(body.get("handed_over_at"))),
        (say("from_party"), f"{say.person(source)} ({text(source.get('device_id'))})"),
        (say("carrier_org"), say.named(carrier.get("name"), carrier.get("org"))),
        (say("licence"), text(carrier.get("licence"))),
        (say("vehicle"), say.named(carrier.get("plate"), carrier.get("vehicle"))),
        (say("driver"), say.person(carrier.get("driver"), with_auth=True)),
        (say("receiver"), say.named(receiver.get("name"), receiver.get("id"))),
        (f"{say('receiver')} · {say('licence')}", text(receiver.get("licence"))),
        *([(f"{say('receiver')} · {say('uscc')}", text(receiver["uscc"]))] if receiver.get("uscc") else []),
        *([(f"{say('receiver')} · {say('address')}", text(receiver["address"]))] if receiver.get("address") else []),
        (say("manifest"), shown_manifest),
        (say("total"), f"{say('bag_count').format(n=len(lines))}, {say.kg(grams)} kg"),
        (say("disposal_method"), text(body.get("disposal_method"))),
        (say("final_destination"), text(body.get("final_destination"))),
        (say("storage_limit"), _limit(say, body.get("limits"), "storage_max_s")),
        (say("overdue"), text(summary.get("overdue_count"))), (say("warn_count"), text(summary.get("warn_count"))),
        *([(say("notes"), text(body["notes"]))] if body.get("notes") else []),
        (say("round_id"), text(body.get("round_id"))), *_common(say, body),
    ]
    sentence = say("sentence_transfer_v2").format(
        n=len(lines), kg=say.kg(grams), carrier=text(carrier.get("name")), driver=driver,
        plate=text(carrier.get("plate") or carrier.get("vehicle")), receiver=text(receiver.get("name")),
        manifest=shown_manifest)
    table = Table(say("bags_table"), [say("package_code"), say("category"), say("waste_code"), say("weight"),
                                      say("facility"), say("stored_at"), say("dwell"), say("flag"),
                                      say("disposal_method")],
                  [[text(x.get("package_code")), say.category(x.get("category")), text(x.get("waste_code")),
                    say.kg(x.get("weight_g")), text(x.get("facility")), say.time(x.get("stored_at")),
                    _h(x.get("dwell_s")), _flag(say, x), text(x.get("disposal_method"))] for x in lines])
    return Words(say(rtype), sentence, fields, [table, totals_table(say, body.get("totals"))])


def _reason(say: Say, body: Mapping[str, Any]) -> str:
    """``重复登记：同一袋扫了两次``: the listed reason, then the words."""
    code, words = say.choice(VOID_REASON, body.get("reason_code")), text(body.get("reason"))
    return f"{code}：{words}" if say.i == 0 else f"{code}: {words}"


def _void(say: Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    fields, what, by = void_head(say, body)
    fields += [(say("reason_code"), say.choice(VOID_REASON, body.get("reason_code"))),
               (say("reason"), text(body.get("reason"))),
               (say("by"), f"{say.person(by)} ({text(by.get('device_id'))})"),
               (say("approved_by"), say.person(body.get("approved_by"), with_auth=True)), *_common(say, body)]
    sentence = say("sentence_void_v2").format(by=say.person(by), what=what, reason=_reason(say, body),
                                              approved=say.person(body.get("approved_by")))
    return Words(say(rtype), sentence, fields)


def _incident(say: Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    bags = items(body.get("bags"))
    total = body.get("total_g") if is_int(body.get("total_g")) else _grams(bags)
    reported, confirmed = say.person(body.get("reported_by")), say.person(body.get("confirmed_by"))
    fields = [
        (say("incident_type"), say.choice(INCIDENT_TYPE, body.get("incident_type"))),
        (say("occurred_at"), say.time(body.get("occurred_at"))),
        (say("facility"), say.named(body.get("facility_name"), body.get("facility"))),
        (say("total"), f"{say('bag_count').format(n=len(bags))}, {say.kg(total)} kg"),
        (say("reported_by"), f"{reported} ({text(obj(body.get('reported_by')).get('device_id'))})"),
        (say("confirmed_by"), say.person(body.get("confirmed_by"), with_auth=True)),
        *([(say("keeper"), say.person(body["keeper"], with_auth=True))] if body.get("keeper") else []),
        (say("description"), text(body.get("description"))),
        (say("round_id"), text(body.get("round_id"))), *_common(say, body),
    ]
    table = Table(say("lost_table"), [say("package_code"), say("category"), say("waste_code"), say("weight"),
                                      say("department"), say("handed_over_at")],
                  [[text(b.get("package_code")), say.category(b.get("category")), text(b.get("waste_code")),
                    say.kg(b.get("weight_g")), say.named(b.get("department_name"), b.get("department")),
                    say.time(b.get("handed_over_at"))] for b in bags])
    sentence = say("sentence_incident").format(n=len(bags), kg=say.kg(total), reported=reported, confirmed=confirmed)
    return Words(say(rtype), sentence, fields, [table])


def _correction(say: Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    change = obj(obj(body.get("changes")).get("manifest"))
    was, now = (obj(change.get(k)) for k in ("from", "to"))
    was_text = f"{say.word(was.get('type'))} {text(was.get('number'))}"
    now_text = f"{say.word(now.get('type'))} {text(now.get('number'))}"
    by = obj(body.get("by"))
    fields = [(say("corrected_at"), say.time(body.get("corrected_at"))),
              (say("corrected_record"), f"{say.word(body.get('corrected_type'))} "
                                        f"{text(body.get('corrected_record_id'))}"),
              (say("change_manifest"), f"{was_text} → {now_text}"),
              (say("reason_code"), say.choice(VOID_REASON, body.get("reason_code"))),
              (say("reason"), text(body.get("reason"))),
              (say("by"), f"{say.person(by)} ({text(by.get('device_id'))})"),
              (say("approved_by"), say.person(body.get("approved_by"), with_auth=True)), *_common(say, body)]
    sentence = say("sentence_correction").format(by=say.person(by), was=was_text, now=now_text,
                                                 reason=_reason(say, body),
                                                 approved=say.person(body.get("approved_by")))
    return Words(say(rtype), sentence, fields)


BY_TYPE: dict[str, Callable[[Say, str, Mapping[str, Any], Mapping[str, Any]], Words]] = {
    "handover": _handover, "storage_in": _storage_in, "transfer": _transfer, "void": _void,
    "incident": _incident, "correction": _correction}
