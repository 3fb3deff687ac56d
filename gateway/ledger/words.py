"""A record's body in words (zh and en): who, where, what, how much — what an inspector reads, not JSON.

``describe(envelope, lang, tz)`` -> ``Words``: a title, one sentence, (label, value) pairs and tables
of bags, all plain strings (the page escapes them).  One function per record type of
``edge.workflow.records`` (waste-domain §8.4–8.6 and voids); a version 2 body (``body_version``: 2,
names beside codes, dwell, disposal, incidents, corrections) is told by ``words_v2``; any other type
or version gets its scalar fields listed with readable labels.  Bodies passed the record schema
when stored, but are read defensively: a missing or odd field shows as "-", never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from gateway.ledger import words_v2
from gateway.ledger.say import (
    LABELS,
    Say,
    Table,
    Words,
    bags_table,
    is_int,
    items,
    label,
    obj,
    optional,
    scalar,
    signed_kg,
    text,
    totals_table,
    void_head,
)

__all__ = ["LABELS", "Table", "Words", "describe"]

Teller = Callable[[Say, str, Mapping[str, Any], Mapping[str, Any]], Words]


def describe(envelope: Mapping[str, Any], lang: str = "zh", tz: ZoneInfo | None = None) -> Words:
    """The record in words; ``tz``: the zone its times are shown in (as written when None)."""
    say = Say(lang, tz)
    body = obj(envelope.get("body"))
    rtype = str(envelope.get("type", ""))
    tell: Teller | None = words_v2.BY_TYPE.get(rtype) if body.get("body_version") == 2 else None
    if tell is None:
        tell = _BY_TYPE.get(rtype, _generic) if "body_version" not in body else _generic
    return tell(say, rtype, body, envelope)


def _handover(say: Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    lines = items(body.get("lines"))
    grams = sum(x["weight_g"] for x in lines if is_int(x.get("weight_g")))
    to = obj(body.get("to_party"))
    cart = text(to.get("device_id") or env.get("cart"))
    dept, nurse, collector = text(body.get("department")), say.person(body.get("from_party")), say.person(to)
    return Words(say(rtype), say("sentence_handover").format(dept=dept, nurse=nurse, n=len(lines), kg=say.kg(grams),
                                                            collector=collector, cart=cart), [
        (say("department"), dept),
        (say("handover_at"), say.time(body.get("handover_at"))),
        (say("nurse"), say.person(body.get("from_party"), with_auth=True)),
        (say("collector"), collector), (say("cart"), cart),
        (say("total"), f"{say('bag_count').format(n=len(lines))}, {say.kg(grams)} kg"),
        *optional(say, body, ("destination", "notes", "round_id")),
    ], [bags_table(say, lines), totals_table(say, body.get("totals"))])


def _storage_in(say: Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    packages = items(body.get("packages"))
    summary = obj(body.get("summary"))
    tol = obj(body.get("tolerance"))
    collector, keeper = say.person(body.get("operator")), say.person(body.get("keeper"), with_auth=True)
    present = [p for p in packages if p.get("status") != "MISSING"]
    fields = [
        (say("facility"), text(body.get("facility"))), (say("moved_at"), say.time(body.get("moved_at"))),
        (say("collector"), collector), (say("keeper"), keeper), (say("result"), say.word(body.get("result"))),
        (say("expected"), say("bag_count").format(n=summary.get("expected_count", len(packages)))),
        (say("present"), say("bag_count").format(n=summary.get("present_count", len(present)))),
        (say("missing"), text(summary.get("missing_count"))),
        (say("deviation"), text(summary.get("deviation_count"))),
        (say("overdue"), text(summary.get("overdue_count"))),
        (say("expected_kg"), say.kg(summary.get("expected_g"))),
        (say("reweigh_kg"), say.kg(summary.get("reweigh_g"))),
        (say("delta_kg"), signed_kg(summary.get("delta_g"))),
        (say("tolerance"), f"max({text(tol.get('min_g'))} g, {text(tol.get('pct'))} %)"),
    ]
    if is_int(body.get("overdue_after_s")):
        fields.append((say("overdue_after"), say("hours").format(n=round(body["overdue_after_s"] / 3600, 1))))
    batch = body.get("batch")
    if isinstance(batch, Mapping):
        codes = ", ".join(c for c in batch.get("package_codes") or [] if isinstance(c, str))
        fields.append((say("batch"), f"{codes}: {say.kg(batch.get('expected_g'))} → {say.kg(batch.get('reweigh_g'))}"
                                     f" kg ({say.word(batch.get('status'))})"))
    fields += optional(say, body, ("notes", "round_id"))
    table = Table(say("bags_table"), [say("package_code"), say("category"), say("department"), say("status"),
                                      say("expected_kg"), say("reweigh_kg"), say("delta_kg"), say("overdue")],
                  [[text(p.get("package_code")), say.category(p.get("category")), text(p.get("department")),
                    say.word(p.get("status")), say.kg(p.get("expected_g")), say.kg(p.get("reweigh_g")),
                    signed_kg(p.get("delta_g")), say("yes") if p.get("overdue") is True else say("no")]
                   for p in packages])
    sentence = say("sentence_storage_in").format(collector=collector, n=len(present), room=text(body.get("facility")),
                                                 keeper=keeper, result=say.word(body.get("result")))
    return Words(say(rtype), sentence, fields, [table])


def _transfer(say: Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    lines = items(body.get("lines"))
    grams = sum(x["weight_g"] for x in lines if is_int(x.get("weight_g")))
    carrier = obj(body.get("carrier"))
    manifest = obj(body.get("manifest"))
    shown_manifest = f"{say.word(manifest.get('type'))} {text(manifest.get('number'))}"
    source = obj(body.get("from_party"))
    fields = [
        (say("handed_over_at"), say.time(body.get("handed_over_at"))),
        (say("from_party"), f"{say.person(source)} ({text(source.get('device_id'))})"),
        (say("vehicle"), text(carrier.get("vehicle"))),
        *([(say("carrier_org"), text(carrier["org"]))] if carrier.get("org") else []),
        *([(say("driver"), text(carrier["driver_id"]))] if carrier.get("driver_id") else []),
        (say("manifest"), shown_manifest),
        (say("total"), f"{say('bag_count').format(n=len(lines))}, {say.kg(grams)} kg"),
        *optional(say, body, ("disposal_method", "final_destination", "notes", "round_id")),
    ]
    sentence = say("sentence_transfer").format(n=len(lines), kg=say.kg(grams), vehicle=text(carrier.get("vehicle")),
                                               manifest=shown_manifest)
    table = Table(say("bags_table"), [say("package_code"), say("category"), say("waste_code"), say("weight"),
                                      say("facility")],
                  [[text(x.get("package_code")), say.category(x.get("category")), text(x.get("waste_code")),
                    say.kg(x.get("weight_g")), text(x.get("facility"))] for x in lines])
    return Words(say(rtype), sentence, fields, [table, totals_table(say, body.get("totals"))])


def _void(say: Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    fields, what, by = void_head(say, body)
    fields += [(say("reason"), text(body.get("reason"))),
               (say("by"), f"{say.person(by)} ({text(by.get('device_id'))})")]
    sentence = say("sentence_void").format(by=say.person(by), what=what, reason=text(body.get("reason")))
    return Words(say(rtype), sentence, fields)


def _generic(say: Say, rtype: str, body: Mapping[str, Any], env: Mapping[str, Any]) -> Words:
    """Any other type: its scalar fields (one level of nesting flattened), lists of objects as tables."""
    fields: list[tuple[str, str]] = []
    tables: list[Table] = []
    for key, value in body.items():
        if isinstance(value, Mapping):
            fields += [(f"{label(say, key)} · {label(say, k)}", scalar(say, k, v)) for k, v in value.items()
                       if not isinstance(v, (Mapping, list))]
        elif isinstance(value, list):
            objects = items(value)
            if objects:
                cols = [k for k in objects[0] if not isinstance(objects[0][k], (Mapping, list))]
                tables.append(Table(label(say, key), [label(say, c) for c in cols],
                                    [[scalar(say, c, x.get(c)) for c in cols] for x in objects]))
            else:
                fields.append((label(say, key), ", ".join(text(v) for v in value)))
        else:
            fields.append((label(say, key), scalar(say, key, value)))
    return Words(say(rtype) if rtype in LABELS else rtype, "", fields, tables)


_BY_TYPE: dict[str, Teller] = {
    "handover": _handover, "storage_in": _storage_in, "transfer": _transfer, "void": _void}
