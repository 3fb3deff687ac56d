"""The kiosk's contract checked against what stands on either side of it: the hand-written screen
models the page is tested with (``tests/browser/screens.py``) against the workflow's typed
``ScreenModel`` and the domain catalogue; the request bodies against the server's field checks;
the route table against the documented API."""

from __future__ import annotations

import copy
import types
from typing import Any, Literal, NotRequired, Required, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from edge import catalogue
from edge.kiosk import contract
from edge.kiosk.contract import ActionBody, ScanBody
from edge.kiosk.server import ROUTES
from edge.workflow.view import ScreenModel
from tests.browser import screens

MODELS: dict[str, dict[str, Any]] = {
    name: value for name, value in vars(screens).items()
    if name.isupper() and isinstance(value, dict) and "step" in value
}


def problems(value: Any, hint: Any, where: str = "model") -> list[str]:
    """Where ``value`` does not fit the type ``hint`` (TypedDicts: exactly their keys, no others)."""
    origin = get_origin(hint)
    if hint is Any:
        return []
    if origin in (Union, types.UnionType):
        found = [problems(value, arm, where) for arm in get_args(hint)]
        return [] if any(not f for f in found) else [p for f in found for p in f]
    if origin is Literal:
        return [] if value in get_args(hint) else [f"{where}: {value!r} is not one of {get_args(hint)}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in problems(item, get_args(hint)[0], f"{where}[{i}]")]
    if is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where}: expected an object ({hint.__name__}), got {type(value).__name__}"]
        out: list[str] = []
        fields = get_type_hints(hint, include_extras=True)
        for key in sorted(set(value) - set(fields)):
            out.append(f"{where}.{key}: not in {hint.__name__}")
        for key, field in fields.items():
            required = get_origin(field) is not NotRequired
            if get_origin(field) in (NotRequired, Required):
                field = get_args(field)[0]
            if key not in value:
                if required:
                    out.append(f"{where}.{key}: missing ({hint.__name__})")
                continue
            out += problems(value[key], field, f"{where}.{key}")
        return out
    if hint is type(None):
        return [] if value is None else [f"{where}: expected null, got {value!r}"]
    if hint in (str, int, bool, float):
        ok = isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
        return [] if ok else [f"{where}: expected {hint.__name__}, got {value!r}"]
    raise AssertionError(f"{where}: the check does not know the type {hint!r}: teach it")


# the screen models the page is tested with ------------------------------------------------------

def test_the_page_is_tested_with_several_screens() -> None:
    assert {"IDLE", "STOP", "CONFIRM", "CATEGORY", "STORAGE", "SAVED", "OFFLINE", "NOTES", "CHEMICAL", "DWELL",
            "MISSING"} <= set(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_hand_written_screens_are_screen_models(name: str) -> None:
    """A screen the page is tested with is one the workflow could send: same keys, same nesting."""
    assert problems(MODELS[name], ScreenModel, name) == []


@pytest.mark.parametrize(("change", "says"), [
    (lambda m: m.pop("voice"), "model.voice: missing"),
    (lambda m: m.update(colour="red"), "model.colour: not in ScreenModel"),
    (lambda m: m["lines"][0].update(weight_g="1.2"), "model.lines[0].weight_g: expected int"),
    (lambda m: m["actions"][0].update(label="Remove"), "model.actions[0].label: expected an object"),
    (lambda m: m["weight"].update(stable=1), "model.weight.stable: expected bool"),
    (lambda m: m["device"].pop("clock"), "model.device.clock: missing"),
    (lambda m: m.pop("collector_name"), "model.collector_name: missing"),
    (lambda m: m.update(dwell=[{"package_code": "B1", "where": "cart", "hours": 3, "limit_h": 24.0,
                                "level": "warn"}]), "model.dwell[0].hours: expected float"),
    (lambda m: m["actions"][0].update(reasons=[{"id": "OTHER", "zh": "其他"}]),
     "model.actions[0].reasons[0].en: missing"),
    (lambda m: m.update(pending={"package_code": None, "category": None, "category_name": None, "weight_g": 5,
                                 "printing": False, "editing": False}), "model.pending.notes: missing"),
])
def test_the_check_finds_what_does_not_fit(change: Any, says: str) -> None:
    model = copy.deepcopy(screens.screen(lines=screens.LINES, actions=screens.STOP["actions"]))
    assert problems(model, ScreenModel) == []
    change(model)
    assert any(says in p for p in problems(model, ScreenModel)), problems(model, ScreenModel)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_hand_written_screens_speak_the_catalogue(name: str) -> None:
    """Device states, clock sources, line statuses and categories as the cart's catalogue has them."""
    model = MODELS[name]
    device = model["device"]
    for dev, states in catalogue.DEVICES.items():
        assert device[dev] in states, f"{name}: {dev} state {device[dev]!r} is not one {dev} reports"
    assert device["clock"] in catalogue.CLOCK_SOURCES
    for ln in model["lines"]:
        assert ln["status"] is None or ln["status"] in catalogue.LINE_STATUSES
        assert ln["category"] in catalogue.CATEGORY
    for c in model["categories"]:
        known = catalogue.CATEGORY[c["id"]]
        assert (c["name"], c["color"]) == ({"zh": known.zh, "en": known.en}, known.color)
    for a in model["actions"]:
        assert a["style"] in STYLES and a["needs"] in NEEDS, a
        if "reasons" in a:
            assert a["reasons"] == [{"id": r.id, "zh": r.zh, "en": r.en} for r in catalogue.VOID_REASONS]
        name, _, arg = a["id"].partition(":")
        if name == "note":
            note = catalogue.LABEL_NOTE[arg]
            assert a["label"]["zh"].endswith(note.zh)
            assert model["pending"]["category"] in note.categories
            chosen = {"zh": note.zh, "en": note.en} in model["pending"]["notes"]
            assert (a["style"] == "chosen") == chosen, f"{name}: {a['id']} is drawn {a['style']}, pending says {chosen}"
    for d in model["dwell"]:
        assert d["where"] in ("cart", "storage") and d["level"] in ("warn", "over")
        assert (d["level"] == "over") == (d["hours"] > d["limit_h"]), d


STYLES = ("normal", "primary", "danger", "chosen")  # edge.workflow.actions.ActionView.style
NEEDS = (None, "text", "reason", "pin")


def test_the_screens_use_what_the_rules_added() -> None:
    """Names beside codes, a signer, dwell at both levels and places, notes, components, reasons."""
    models = list(MODELS.values())
    assert any(m["collector_name"] and m["collector_name"] != m["collector"] for m in models)
    assert any(m["department_name"] for m in models) and any(m["place_name"] for m in models)
    assert any(m["signer"] for m in models)
    assert {(d["where"], d["level"]) for m in models for d in m["dwell"]} >= {("cart", "over"), ("storage", "warn")}
    assert any(m["pending"] and m["pending"]["notes"] for m in models)
    assert any(m["pending"] and m["pending"]["components"] for m in models)
    assert any(a.get("style") == "chosen" for m in models for a in m["actions"])
    assert any("reasons" in a for m in models for a in m["actions"])


def test_device_block_names_every_device_the_catalogue_has() -> None:
    assert set(screens.DEVICE_OK) == {"online", "unsent", "clock", *catalogue.DEVICES}


# request bodies and routes ----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [ActionBody, ScanBody])
def test_bodies_are_strings_as_the_server_checks_them(shape: type) -> None:
    """``handler.check_fields`` assumes it: a required field is a string, an optional one a string or null."""
    for name, hint in get_type_hints(shape, include_extras=True).items():
        if name in vars(shape)["__optional_keys__"]:
            assert hint == NotRequired[str | None], name
        else:
            assert hint is str, name


def test_every_route_is_documented_in_the_contract() -> None:
    doc = contract.__doc__ or ""
    for method, path in ROUTES:
        assert f"{method} {path}" in doc, f"{method} {path} is served but not in edge/kiosk/contract.py"
