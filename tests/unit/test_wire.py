"""The wire contract: canonical hashing, signatures, schema checks, acks, topics."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from edge import wire

KEY = Ed25519PrivateKey.generate()


def handover_body() -> dict[str, Any]:
    return {
        "org": "H1", "round_id": wire.uuid7(), "handover_at": "2026-11-28T10:00:00.000+08:00",
        "department": "D01", "from_party": {"person_id": "NUR-1", "auth_method": "card"},
        "to_party": {"person_id": "COL-1", "device_id": "CART-01"},
        "lines": [{"package_code": "B1", "category": "INFECTIOUS", "waste_code": "841-001-01", "weight_g": 1200,
                   "weighing": {"gross_g": 1200, "tare_g": 0, "net_g": 1200, "stable": True,
                                "protocol": "toledo", "raw": "\x02..."}}],
        "totals": [{"category": "INFECTIOUS", "count": 1, "weight_g": 1200}],
        "destination": None,
    }


def sealed(seq: int = 1, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return wire.seal(wire.unsigned_envelope(
        record_id=wire.uuid7(), cart="CART-01", seq=seq, created_at="2026-11-28T10:00:00.123+08:00",
        clock=wire.Clock("ntp", 5), rtype="handover", body=body or handover_body(),
        prev_hash=wire.GENESIS_HASH), KEY)


def test_sealed_record_decodes_and_verifies() -> None:
    env = sealed()
    decoded = wire.decode_record(wire.encode(env))
    wire.verify_seal(decoded, KEY.public_key())
    assert decoded == env


@pytest.mark.parametrize(("path", "value"), [
    (("seq",), 2), (("body", "lines", 0, "weight_g"), 1201), (("prev_hash",), "1" * 64),
    (("created_at",), "2026-11-28T10:00:01.123+08:00"), (("id",), wire.uuid7()),
])
def test_any_altered_field_breaks_the_hash(path: tuple[Any, ...], value: Any) -> None:
    env = sealed()
    node: Any = env
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(wire.ContractError, match="hash"):
        wire.verify_seal(env, KEY.public_key())


def test_rehashed_forgery_fails_the_signature() -> None:
    env = sealed()
    env["body"]["lines"][0]["weight_g"] = 1
    env["hash"] = wire.record_hash(env)
    with pytest.raises(wire.ContractError, match="sig"):
        wire.verify_seal(env, KEY.public_key())
    other = Ed25519PrivateKey.generate()
    with pytest.raises(wire.ContractError, match="sig"):
        wire.verify_seal(sealed(), other.public_key())


@pytest.mark.parametrize("value", [1.5, float("nan"), float("inf"), -0.0, 1e400])
def test_floats_are_refused_with_their_path(value: float) -> None:
    with pytest.raises(wire.ContractError, match="/a/1/w: floats"):
        wire.canonical({"a": [0, {"w": value}], "ok": "1.5"})


def test_schema_errors_name_the_field() -> None:
    env = sealed()
    env["body"]["lines"][0]["category"] = "RADIOACTIVE"
    del env["body"]["lines"][0]["weight_g"]
    env["extra"] = 1
    errors = wire.validate_record(env)
    assert "/extra: unknown field" in errors
    env.pop("extra")
    errors = wire.validate_record(env)
    assert any(e.startswith("/body/lines/0/weight_g: required") for e in errors)
    assert any(e.startswith("/body/lines/0/category: 'RADIOACTIVE' is not one of") for e in errors)
    with pytest.raises(wire.ContractError, match="not JSON"):
        wire.decode_record(b"\xff{")


def test_schema_uses_only_supported_keywords() -> None:
    def keywords(node: Any, parent: str = "") -> set[str]:
        if isinstance(node, dict):
            own = set() if parent in ("properties", "$defs") else set(node)
            return own.union(*(keywords(v, k) for k, v in node.items()))
        if isinstance(node, list):
            return set().union(*(keywords(v) for v in node))
        return set()

    assert keywords(wire.record_schema()) <= wire.SUPPORTED_KEYWORDS
    assert keywords(wire.messages_schema()) <= wire.SUPPORTED_KEYWORDS


# The built-in validator must agree with a full JSON Schema implementation on random mutations.
_mutations = st.lists(st.tuples(
    st.sampled_from([("seq",), ("clock", "source"), ("body", "lines", 0, "weight_g"), ("type",),
                     ("body", "department"), ("body", "totals"), ("sig",), ("cart",), ("body", "destination")]),
    st.one_of(st.integers(-5, 5), st.text(max_size=5), st.none(), st.booleans(), st.just([]),
              st.sampled_from(["handover", "void", "ntp", "CART-01"]))), max_size=3)


@given(_mutations)
def test_validator_agrees_with_jsonschema(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    env = json.loads(wire.encode(ENV_TEMPLATE))
    for path, value in mutations:
        node: Any = env
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    full = copy.deepcopy(wire.record_schema())
    if isinstance(env.get("type"), str) and f"body_{env['type']}" in full["$defs"]:
        full["properties"]["body"] = {"$ref": f"#/$defs/body_{env['type']}"}
    reference_ok = jsonschema.Draft202012Validator(full).is_valid(env)
    ours_ok = not wire.validate_record(env)
    if env.get("type") in wire.RECORD_TYPES and f"body_{env['type']}" not in full["$defs"]:
        assert not ours_ok  # we refuse types whose body schema does not exist yet
    else:
        assert ours_ok == reference_ok


ENV_TEMPLATE = sealed()

WEIGHING = {"gross_g": 1010, "tare_g": 0, "net_g": 1010, "stable": True, "protocol": "toledo", "raw": "x",
            "measured_at": "2026-11-28T11:00:00.000+08:00"}
# One body of each newer record type, as edge.workflow builds them (test_workflow_* check that side).
BODIES: dict[str, dict[str, Any]] = {
    "storage_in": {
        "org": "H1", "facility": "ROOM1", "direction": "IN", "moved_at": "2026-11-28T11:00:00.000+08:00",
        "round_id": "0190c000-0000-7000-8000-000000000001",
        "operator": {"person_id": "COL-1", "device_id": "CART-01"},
        "keeper": {"person_id": "KEEP-1", "auth_method": "card"},
        "packages": [
            {"package_code": "B1", "category": "INFECTIOUS", "waste_code": "841-001-01", "department": "D01",
             "handover_record_id": "0190c000-0000-7000-8000-000000000002",
             "handed_over_at": "2026-11-28T10:00:00.000+08:00", "expected_g": 1000, "reweigh_g": 1010,
             "delta_g": 10, "status": "OK", "overdue": False, "weighing": WEIGHING},
            {"package_code": "B2", "category": "SHARPS", "waste_code": "841-002-01", "department": "D01",
             "handover_record_id": "0190c000-0000-7000-8000-000000000002",
             "handed_over_at": "2026-11-28T10:00:00.000+08:00", "expected_g": 500, "reweigh_g": None,
             "delta_g": None, "status": "IN_BATCH", "overdue": True}],
        "batch": {"package_codes": ["B2"], "expected_g": 500, "reweigh_g": 480, "delta_g": -20,
                  "delta_permille": -40, "status": "OK", "weighing": WEIGHING},
        "tolerance": {"min_g": 50, "pct": 5}, "overdue_after_s": 172800,
        "summary": {"expected_count": 2, "present_count": 2, "missing_count": 0, "deviation_count": 0,
                    "overdue_count": 1, "expected_g": 1500, "reweigh_g": 1490, "delta_g": -10,
                    "delta_permille": -7, "missing_g": 0},
        "result": "ACCEPTED_WITH_NOTE"},
    "transfer": {
        "org": "H1", "handed_over_at": "2026-11-28T12:00:00.000+08:00",
        "from_party": {"person_id": "COL-1", "device_id": "CART-01"}, "carrier": {"vehicle": "ZJA12345"},
        "manifest": {"type": "national", "number": "33010020260001"},
        "lines": [{"package_code": "B1", "category": "INFECTIOUS", "waste_code": "841-001-01", "weight_g": 1010,
                   "facility": "ROOM1"}],
        "totals": [{"category": "INFECTIOUS", "count": 1, "weight_g": 1010}],
        "disposal_method": None, "final_destination": None},
    "void": {
        "org": "H1", "voided_at": "2026-11-28T12:30:00.000+08:00",
        "voided_record_id": "0190c000-0000-7000-8000-000000000002", "voided_type": "handover",
        "package_code": None, "reason": "wrong department", "by": {"person_id": "COL-1", "device_id": "CART-01"}},
}


def sealed_as(rtype: str) -> dict[str, Any]:
    return wire.seal(wire.unsigned_envelope(
        record_id=wire.uuid7(), cart="CART-01", seq=2, created_at="2026-11-28T12:00:00.000+08:00",
        clock=wire.Clock("ntp", 5), rtype=rtype, body=BODIES[rtype], prev_hash=wire.GENESIS_HASH), KEY)


def test_every_record_type_but_storage_out_has_a_body_schema() -> None:
    defs = wire.record_schema()["$defs"]
    assert [r for r in wire.RECORD_TYPES if f"body_{r}" not in defs and f"body_{r}_v2" not in defs] == ["storage_out"]
    for rtype in BODIES:
        env = sealed_as(rtype)
        assert wire.decode_record(wire.encode(env)) == env
    env = sealed_as("void")
    env["type"] = "storage_out"
    assert wire.validate_record(env) == [
        "/body/body_version: no schema for record type 'storage_out' at body version 1"]


def test_new_body_schemas_name_the_field() -> None:
    env = sealed_as("storage_in")
    env["body"]["packages"][0]["status"] = "LOST"
    env["body"]["summary"]["delta_g"] = 1.5
    del env["body"]["result"]
    errors = wire.validate_record(env)
    assert "/body/result: required" in errors
    assert any(e.startswith("/body/packages/0/status: 'LOST' is not one of") for e in errors)
    assert any(e.startswith("/body/summary/delta_g: expected integer") for e in errors)
    env = sealed_as("void")
    env["body"]["reason"] = ""
    env["body"]["package_code"] = "lower-case"
    assert wire.validate_record(env) == ["/body/package_code: 'lower-case' does not match ^[A-Z0-9][A-Z0-9_-]{0,31}$",
                                         "/body/reason: shorter than 1"]


_body_paths: dict[str, list[tuple[Any, ...]]] = {
    "storage_in": [("direction",), ("packages", 0, "status"), ("packages", 1, "reweigh_g"), ("packages", 0, "overdue"),
                   ("batch",), ("batch", "package_codes"), ("summary", "delta_g"), ("keeper",), ("result",),
                   ("tolerance", "pct"), ("packages", 0, "handover_record_id"), ("round_id",)],
    "transfer": [("manifest", "type"), ("manifest", "number"), ("carrier",), ("lines", 0, "facility"), ("totals",),
                 ("disposal_method",), ("lines",)],
    "void": [("voided_record_id",), ("voided_type",), ("package_code",), ("reason",), ("by", "person_id")],
}


@given(st.data())
def test_validator_agrees_with_jsonschema_on_the_newer_bodies(data: st.DataObject) -> None:
    rtype = data.draw(st.sampled_from(sorted(BODIES)))
    body = copy.deepcopy(BODIES[rtype])
    for path in data.draw(st.lists(st.sampled_from(_body_paths[rtype]), max_size=3)):
        value = data.draw(st.one_of(st.integers(-5, 5), st.text(max_size=5), st.none(), st.booleans(), st.just([]),
                                    st.just({}), st.sampled_from(["IN", "OK", "national", "handover", "B1"])))
        node: Any = body
        try:  # an earlier mutation may have replaced a parent of this path: then skip it
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (LookupError, TypeError):
            pass
    full = copy.deepcopy(wire.record_schema())
    full["properties"]["body"] = {"$ref": f"#/$defs/body_{rtype}"}
    env = {**ENV_TEMPLATE, "type": rtype, "body": body}
    assert (not wire.validate_record(env)) == jsonschema.Draft202012Validator(full).is_valid(env)


def test_uuid7_is_time_ordered_and_versioned() -> None:
    a, b = wire.uuid7(1_000), wire.uuid7(2_000)
    assert a < b
    assert a[14] == "7"
    assert a[19] in "89ab"


def test_topics_and_ids() -> None:
    assert wire.parse_topic(wire.topic("S1", "C1", "record")) == ("S1", "C1", "record")
    assert wire.parse_topic("wc/v1/S1/C1/cmd/resend") == ("S1", "C1", "cmd/resend")
    with pytest.raises(wire.ContractError):
        wire.parse_topic("other/v1/S/C/record")
    for bad in ("a/b", "#", "", "x" * 33, "lower"):
        with pytest.raises(wire.ContractError):
            wire.check_id(bad, "cart id")
    assert wire.broker_address("mqtts://h") == ("h", 8883, True)
    with pytest.raises(wire.ContractError):
        wire.broker_address("http://h:1")


def test_timestamps_with_offset_validate() -> None:
    env = sealed()
    env["created_at"] = datetime(2026, 1, 1, tzinfo=UTC).isoformat(timespec="milliseconds")
    assert wire.validate_record(env) == []
    env["created_at"] = "2026-01-01 10:00"
    assert wire.validate_record(env)


def test_command_topics() -> None:
    """Acks and commands themselves are signed messages: tests/unit/test_wire_signed.py."""
    assert wire.cmd_topic("S", "C", wire.CMD_RESEND) == "wc/v1/S/C/cmd/resend"
    assert wire.topic("S", "C", wire.CMD_RESULT) == "wc/v1/S/C/cmd_result" and wire.QOS[wire.CMD_RESULT] == 1
