"""The gateway's reprint and config commands (issue 15), pure parts: what the cart's trust lets run,
the one schema both sides check, what a config does to the workflow's limits and how it is kept,
which bag a reprint finds in the cart's records, and the console's form checks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge import codes, remote, wire
from edge.ledger.trust import config_problem, decide_command, label_ident
from edge.wire.core import CMD_NAMES, CONFIG_BOUNDS
from edge.workflow import Limits
from gateway.console.command_pages import BadArgs, config_view, parse_args

BOOT = "01890000-0000-7000-8000-000000000001"
CODE = codes.encode(codes.Code("B", "H1", "PKG0001", "I"))  # a bag label payload of ours


def cmd(name: str, counter: int = 3, **args: Any) -> dict[str, Any]:
    return wire.command_body(name, BOOT, counter, args)


def decide(name: str, **args: Any) -> Any:
    return decide_command(name, cmd(name, **args), boot_id=BOOT, last_counter=2, head=10)


# the schema: one file, both sides ---------------------------------------------------------------

def test_the_schema_names_every_command_and_bounds_config_as_trust_does() -> None:
    body_cmd = wire.messages_schema()["$defs"]["body_cmd"]["properties"]
    assert tuple(body_cmd["name"]["enum"]) == CMD_NAMES
    props = body_cmd["args"]["properties"]
    for key, (low, high) in CONFIG_BOUNDS.items():
        assert (props[key]["type"], props[key]["minimum"], props[key]["maximum"]) == ("integer", low, high)
    assert props["label"]["maxLength"] == wire.core.LABEL_MAX


@pytest.mark.parametrize(("name", "args", "error"), [
    ("config", {"tolerance_g": 5_001}, "tolerance_g"),
    ("config", {"tolerance_pct": -1}, "tolerance_pct"),
    ("config", {"storage_overdue_s": 10**12}, "storage_overdue_s"),
    ("config", {"pins": 1}, "pins"),
    ("reprint", {"label": "x" * 65}, "label"),
    ("reprint", {"label": "pkg lower"}, "label"),
    ("reboot", {}, "name"),
])
def test_the_schema_refuses_out_of_bounds_args_before_any_signature(name: str, args: dict[str, Any],
                                                                     error: str) -> None:
    errors = wire.validate_message_body(wire.CMD_KIND, cmd(name, **args))
    assert errors and error in " ".join(errors)


def test_a_signed_reprint_and_config_open_on_the_cart() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    for body in (cmd("reprint", label=CODE), cmd("config", tolerance_g=80, max_bag_g=40_000)):
        payload = wire.sign_message(wire.CMD_KIND, "H1", "C1", body, key)
        assert wire.open_message(payload, kinds=[wire.CMD_KIND], site="H1", cart="C1",
                                 keys=[key.public_key()]) == (wire.CMD_KIND, body)


# trust ------------------------------------------------------------------------------------------

def test_a_reprint_runs_with_the_bag_s_package_code() -> None:
    assert decide("reprint", label=CODE).args == {"label": "PKG0001"}
    assert decide("reprint", label="PKG0001").args == {"label": "PKG0001"}


@pytest.mark.parametrize(("label", "reason"), [
    (CODE[:-1] + ("A" if CODE[-1] != "A" else "B"), "is not a valid code: check characters"),
    (codes.encode(codes.Code("S", "H1", "NURSE1")), "staff badge, not a bag label"),
    ("ab", "neither a package code nor a bag label"),
    ("", "neither a package code nor a bag label"),
])
def test_a_reprint_of_anything_but_a_bag_is_refused_and_uses_its_counter(label: str, reason: str) -> None:
    d = decide("reprint", label=label)
    assert not d.run and d.counts and reason in d.reason


def test_a_config_runs_with_known_keys_in_bounds() -> None:
    d = decide("config", tolerance_g=80, storage_overdue_s=86_400)
    assert d.run and d.args == {"tolerance_g": 80, "storage_overdue_s": 86_400}


@pytest.mark.parametrize(("args", "reason"), [
    ({}, "config needs at least one of"),
    ({"tolerance_g": 5_001}, "config: tolerance_g 5001 is outside 0..5000"),
    ({"round_max_s": 599}, "config: round_max_s 599 is outside 600..172800"),
    ({"pins": 1}, "config: unknown setting 'pins'"),
    ({"tolerance_pct": True}, "config: tolerance_pct True is outside"),
])
def test_a_config_out_of_bounds_or_unknown_is_refused(args: dict[str, Any], reason: str) -> None:
    d = decide("config", **args)
    assert not d.run and d.counts and d.reason.startswith(reason)


def test_the_old_checks_still_hold_for_new_commands() -> None:
    replay = decide_command("config", cmd("config", counter=2, tolerance_g=1), boot_id=BOOT, last_counter=2,
                            head=0)
    assert not replay.run and "a replay" in replay.reason
    moved = decide_command("reprint", cmd("config", tolerance_g=1), boot_id=BOOT, last_counter=0, head=0)
    assert not moved.run and "arrived on cmd/reprint" in moved.reason
    other = decide_command("reprint", wire.command_body("reprint", "01890000-0000-7000-8000-00000000000f", 9,
                                                        {"label": "P1"}), boot_id=BOOT, last_counter=0, head=0)
    assert not other.run and "another boot" in other.reason
    assert "reprint takes exactly label" in decide("reprint", from_seq=1).reason


@given(st.dictionaries(st.sampled_from([*CONFIG_BOUNDS, "other"]), st.integers(-10, 3_000_000), max_size=4))
def test_trust_passes_a_config_only_inside_every_bound(args: dict[str, int]) -> None:
    ok = config_problem(args) == ""
    assert ok == (bool(args) and all(k in CONFIG_BOUNDS and CONFIG_BOUNDS[k][0] <= v <= CONFIG_BOUNDS[k][1]
                                     for k, v in args.items()))


@given(st.text(max_size=80))
def test_label_ident_is_a_valid_id_or_a_value_error(text: str) -> None:
    try:
        ident = label_ident(text)
    except ValueError:
        return
    assert wire.ID_PATTERN.match(ident)


# config on the cart -------------------------------------------------------------------------------

def test_with_config_converts_units_and_says_what_changed() -> None:
    new, changed = remote.with_config(Limits(), {"storage_overdue_s": 86_400, "tolerance_g": 50, "max_bag_g": 30_000})
    assert (new.storage_overdue_h, new.tolerance_g, new.max_bag_kg) == (24.0, 50, 30.0)
    assert changed == ["max_bag_g 60000→30000", "storage_overdue_s 172800→86400"]  # tolerance_g was 50
    assert remote.wire_values(new)["storage_overdue_s"] == 86_400


@given(overdue=st.integers(*CONFIG_BOUNDS["storage_overdue_s"]), round_max=st.integers(*CONFIG_BOUNDS["round_max_s"]),
       bag=st.integers(*CONFIG_BOUNDS["max_bag_g"]))
def test_the_workflow_reads_back_exactly_what_was_pushed(overdue: int, round_max: int, bag: int) -> None:
    new, _ = remote.with_config(Limits(), {"storage_overdue_s": overdue, "round_max_s": round_max, "max_bag_g": bag})
    assert (new.storage_overdue_s, new.round_max_s, new.max_bag_g) == (overdue, round_max, bag)
    assert remote.wire_values(new) == {**remote.wire_values(Limits()), "storage_overdue_s": overdue,
                                       "round_max_s": round_max, "max_bag_g": bag}


def test_with_config_refuses_with_the_reason_and_changes_nothing() -> None:
    limits = Limits()
    with pytest.raises(ValueError, match=r"tolerance_pct 101 is outside 0\.\.100"):
        remote.with_config(limits, {"tolerance_pct": 101})
    assert limits == Limits()


def test_overrides_are_merged_kept_and_laid_over_the_config_at_start(tmp_path: Path) -> None:
    path = tmp_path / remote.OVERRIDES_FILE
    remote.save_overrides(path, {"tolerance_g": 80})
    remote.save_overrides(path, {"round_max_s": 7_200})
    assert remote.load_overrides(path) == {"tolerance_g": 80, "round_max_s": 7_200}
    started = remote.apply_saved(Limits(tolerance_g=10), path)
    assert (started.tolerance_g, started.round_max_h) == (80, 2.0)


def test_a_bad_overrides_file_is_logged_and_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / remote.OVERRIDES_FILE
    for text in ("{not json", '{"tolerance_g": 999999}', "[1]"):
        path.write_text(text)
        assert remote.apply_saved(Limits(), path) == Limits()
    assert str(path) in caplog.text and "outside" in caplog.text
    assert remote.apply_saved(Limits(), tmp_path / "none.json") == Limits()


# which bag a reprint finds ------------------------------------------------------------------------

AT = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


def handover(rid: str, *codes_: str) -> tuple[str, str, int, dict[str, Any]]:
    return (rid, "handover", 1, {"org": "H1", "department": "ICU", "handover_at": AT.isoformat(),
                                 "lines": [{"package_code": c, "category": "INFECTIOUS", "weight_g": 1200}
                                           for c in codes_]})


def void(rid: str, package: str | None = None) -> tuple[str, str, int, dict[str, Any]]:
    return ("v-" + rid, "void", 2, {"voided_record_id": rid, "package_code": package})


def test_find_bag_reads_the_label_from_the_handover() -> None:
    found = remote.find_bag([handover("r1", "P1", "P2")], "P2")
    assert found == remote.BagLabel("H1", "P2", "INFECTIOUS", "ICU", 1200, AT)


@pytest.mark.parametrize(("records", "reason"), [
    ([handover("r1", "P1")], "not in this cart's ledger"),
    ([handover("r1", "P1", "P2"), void("r1")], "was voided"),
    ([handover("r1", "P2"), void("r9", "P2")], "was voided"),
])
def test_find_bag_refuses_unknown_and_voided_bags(records: list[Any], reason: str) -> None:
    found = remote.find_bag(records, "P2")
    assert isinstance(found, str) and reason in found


def test_a_void_of_another_bag_of_the_record_leaves_this_one() -> None:
    assert isinstance(remote.find_bag([handover("r1", "P1", "P2"), void("r1", "P1")], "P2"), remote.BagLabel)


# the console's form checks ------------------------------------------------------------------------

def test_parse_args_per_command() -> None:
    assert parse_args("resend", {"from_seq": " 7 "}, 0) == {"from_seq": 7}
    assert parse_args("time", {}, 1_800_000_000_123) == {"utc_ms": 1_800_000_000_123}
    assert parse_args("reprint", {"label": f" {CODE} "}, 0) == {"label": CODE}
    assert parse_args("config", {"tolerance_g": "80", "tolerance_pct": ""}, 0) == {"tolerance_g": 80}


@pytest.mark.parametrize(("name", "form", "key", "field"), [
    ("resend", {"from_seq": "abc"}, "cmd_err_int", "from_seq"),
    ("resend", {"from_seq": "0"}, "cmd_err_range", "from_seq"),
    ("reprint", {"label": "no such"}, "cmd_err_label", "label"),
    ("config", {"max_bag_g": "5"}, "cmd_err_range", "max_bag_g"),
    ("config", {}, "cmd_err_empty", None),
])
def test_parse_args_names_the_field(name: str, form: dict[str, str], key: str, field: str | None) -> None:
    with pytest.raises(BadArgs) as caught:
        parse_args(name, form, 0)
    assert caught.value.key == key and caught.value.params.get("field") == field


def test_config_view_shows_ranges_and_the_last_value_the_cart_took() -> None:
    commands = [  # newest first, as the store lists them
        {"name": "config", "args": {"tolerance_g": 90}, "outcome": "refused"},
        {"name": "config", "args": {"tolerance_g": 80}, "outcome": "done"},
        {"name": "config", "args": {"tolerance_g": 70, "tolerance_pct": 8}, "outcome": "done"},
    ]
    view = config_view(commands)
    assert view["tolerance_g"] == {"min": 0, "max": 5_000, "last": 80}
    assert view["tolerance_pct"]["last"] == 8 and view["max_bag_g"]["last"] is None
