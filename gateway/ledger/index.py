"""One stored record -> its ledger rows: a search row (who, where, when, how much) and a row per bag.

The ingest checks make them where the envelope is already decoded (in the check workers when
there are some); the store writes them in the transaction that stores the record (and rebuilds them all when
``INDEX_VERSION`` or the ledger's zone changes), so a search never decodes an envelope.  Bodies have
passed the record schema, but what is read here is read defensively all the same: a field of an
unexpected shape is left out of the index, never an error that would refuse a stored record.

Per type (``edge.workflow.records``; waste-domain §8.4–8.6; version 1 and 2 bodies alike unless said):
    handover    department; collector = to_party; confirmer = from_party (the nurse); bags = lines
    storage_in  collector = operator; confirmer = keeper; bags = packages (status per bag).  A check-in
                whose result is REJECTED stored nothing (v2: a bag was missing and not declared lost; the
                bags stay on the cart): its present bags get status REJECTED, never OK / DEVIATION /
                IN_BATCH, so that no bag page, search or export reads them as checked in; a missing
                bag stays MISSING.  The record still counts the bags brought to the room.
    transfer    collector = from_party; confirmer = the driver (v2 carrier.driver.person_id, v1
                carrier.driver_id, when named); bags = lines
    void        collector = by; confirmer = approved_by (v2: the supervisor); refers_to =
                voided_record_id; bag = its package_code, if any
    incident    (v2) collector = reported_by; confirmer = confirmed_by (the supervisor); one bag per
                lost bag, status LOST; weight = total_g; department = the bags' when they all share one
    correction  (v2) collector = by; confirmer = approved_by; refers_to = corrected_record_id; no bags
    other types department / lines / packages when present, refers_to from ``corrects_record_id``
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from gateway.ledger.zone import parse_time

INDEX_VERSION = 2  # bump when what is indexed changes: the store rebuilds the index at its next start
TEXT_MAX = 128  # characters of an indexed code or name kept (bodies bound them well below this)

# a bag's place in its record: the handover's and transfer's lines have none, storage_in says
STATUS_BY_TYPE = {"handover": "HANDED_OVER", "transfer": "TRANSFERRED", "void": "VOIDED", "incident": "LOST"}
# storage_in statuses of a bag that was there (re-weighed alone or in the batch): indexed as REJECTED when its
# check-in's result is REJECTED (nothing was stored)
PRESENT = ("OK", "DEVIATION", "IN_BATCH")


class RecordRow(NamedTuple):
    """A record's search row (a tuple: it crosses from the check workers cheaply).  Its day, in the
    ledger's zone, is added when it is written (``gateway.store.ledger_index``)."""

    id: str
    cart: str
    site: str
    seq: int
    type: str
    at: float  # created_at as unix seconds
    department: str | None
    collector: str | None
    confirmer: str | None
    bags: int
    weight_g: int
    refers_to: str | None  # the record a void or correction points at


class BagRow(NamedTuple):
    package_code: str
    record_id: str
    type: str
    cart: str
    at: float  # its record's
    category: str | None
    department: str | None
    weight_g: int | None
    status: str  # HANDED_OVER, OK / DEVIATION / MISSING / IN_BATCH / REJECTED (storage_in), TRANSFERRED, VOIDED,
    # LOST (incident)


Rows = tuple[RecordRow, list[BagRow]]


def index_record(envelope: Mapping[str, Any], site: str) -> Rows:
    """The ledger rows of one envelope (``wire.decode_record`` has accepted it)."""
    body = envelope.get("body")
    return index_rows(str(envelope["id"]), str(envelope["cart"]), site, int(envelope["seq"]), str(envelope["type"]),
                      str(envelope["created_at"]), body if isinstance(body, Mapping) else {})


def index_rows(record_id: str, cart: str, site: str, seq: int, rtype: str, created_at: str,
               body: Mapping[str, Any]) -> Rows:
    """The ledger rows of one record from its columns and its body."""
    try:
        at = parse_time(created_at).timestamp()
    except ValueError:  # the schema's date-time format makes this unreachable for a stored record
        at = 0.0
    department = _text(body.get("department"))
    collector = confirmer = refers_to = None
    items: list[Any] = []
    if rtype == "handover":
        collector, confirmer = _person(body.get("to_party")), _person(body.get("from_party"))
        items = _list(body.get("lines"))
    elif rtype == "storage_in":
        collector, confirmer = _person(body.get("operator")), _person(body.get("keeper"))
        items = _list(body.get("packages"))
    elif rtype == "transfer":
        carrier = body.get("carrier")
        collector = _person(body.get("from_party"))
        if isinstance(carrier, Mapping):
            confirmer = _person(carrier.get("driver")) or _text(carrier.get("driver_id"))
        items = _list(body.get("lines"))
    elif rtype == "void":
        collector, confirmer = _person(body.get("by")), _person(body.get("approved_by"))
        refers_to = _text(body.get("voided_record_id"))
        code = _text(body.get("package_code"))
        items = [{"package_code": code}] if code else []
    elif rtype == "incident":
        collector, confirmer = _person(body.get("reported_by")), _person(body.get("confirmed_by"))
        items = _list(body.get("bags"))
        departments = {_text(b.get("department")) for b in items if isinstance(b, Mapping)}
        department = department or (departments.pop() if len(departments) == 1 else None)
    elif rtype == "correction":
        collector, confirmer = _person(body.get("by")), _person(body.get("approved_by"))
        refers_to = _text(body.get("corrected_record_id")) or _text(body.get("corrects_record_id"))
        items = _list(body.get("lines")) or _list(body.get("packages"))  # v2: none (it changes the manifest)
    else:
        collector = _person(body.get("by")) or _person(body.get("operator")) or _person(body.get("from_party"))
        refers_to = _text(body.get("corrects_record_id"))
        items = _list(body.get("lines")) or _list(body.get("packages"))
    rejected = rtype == "storage_in" and body.get("result") == "REJECTED"
    bags: list[BagRow] = []
    for item in items:
        if not isinstance(item, Mapping) or not (code := _text(item.get("package_code"))):
            continue
        weight = _grams(item.get("reweigh_g"))
        weight = _grams(item.get("weight_g")) if weight is None else weight
        weight = _grams(item.get("expected_g")) if weight is None else weight
        status = _text(item.get("status")) or STATUS_BY_TYPE.get(rtype, rtype.upper())
        if rejected and status in PRESENT:
            status = "REJECTED"
        bags.append(BagRow(code, record_id, rtype, cart, at,
                           _text(item.get("category")), _text(item.get("department")) or department,
                           weight, status))
    counted = [b for b in bags if b.status != "MISSING"]
    grams = sum(b.weight_g or 0 for b in counted)
    if rtype == "incident":
        grams = _grams(body.get("total_g")) or grams
    row = RecordRow(record_id, cart, site, seq, rtype, at,
                    department, collector, confirmer, len(counted), grams, refers_to)
    return row, bags


def _text(value: Any) -> str | None:
    return value[:TEXT_MAX] if isinstance(value, str) and value else None


def _person(party: Any) -> str | None:
    return _text(party.get("person_id")) if isinstance(party, Mapping) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _grams(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
