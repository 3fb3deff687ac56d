"""The JSON Schema checks of the wire contract: a strict subset of JSON Schema compiled into closures,
so the contract needs no third-party validator.  Records (``record.schema.json``) and the signed
messages' bodies (``messages.schema.json``) are checked here, every number against its bound.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from edge.wire.core import ContractError


@cache
def record_schema() -> dict[str, Any]:
    text = resources.files("edge").joinpath("schemas/record.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_record(obj: Any) -> list[str]:
    """Errors (``/path: reason``) for the envelope and then its body by ``type``; [] if valid."""
    envelope, bodies = _validators()
    errors = envelope(obj, "")
    if errors or not isinstance(obj, dict):
        return errors
    version = body_version(obj["body"])
    body = bodies.get(obj["type"] if version == 1 else f"{obj['type']}_v{version}")
    if body is None:
        return [f"/body/body_version: no schema for record type {obj['type']!r} at body version {version!r}"]
    return body(obj["body"], "/body")


def body_version(body: Mapping[str, Any]) -> Any:
    """The version of a record body's schema: its ``body_version``, or 1 for a body written before
    bodies carried one (those still validate and replay; ``catalogue.BODY_VERSION`` is what is written now)."""
    return body.get("body_version", 1)


def decode_record(payload: bytes | bytearray) -> dict[str, Any]:
    """Parse and schema-check a record payload; ContractError names the first problem."""
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, an integer of > 4,300 digits, too deep
        raise ContractError(f"payload is not JSON: {exc}") from exc
    errors = validate_record(obj)
    if errors:
        raise ContractError("; ".join(errors[:5]))
    assert isinstance(obj, dict)
    return obj


@cache
def messages_schema() -> dict[str, Any]:
    text = resources.files("edge").joinpath("schemas/messages.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _message_validators() -> dict[str, Check]:
    root = messages_schema()
    return {name.removeprefix("body_"): _compile(d, root) for name, d in root["$defs"].items()
            if name.startswith("body_")}


def validate_message_body(kind: str, body: Any) -> list[str]:
    """Errors for the body of a signed message of ``kind`` (every number within its bound); [] if valid."""
    check = _message_validators().get(kind)
    if check is None:
        return [f"/kind: no schema for message kind {kind!r}"]
    return check(body, "/body")


SUPPORTED_KEYWORDS = frozenset({
    "$schema", "$id", "$defs", "$ref", "title", "description", "type", "properties", "required",
    "additionalProperties", "enum", "const", "pattern", "minimum", "maximum", "minLength",
    "maxLength", "items", "minItems", "maxItems",
})

Check = Callable[[Any, str], list[str]]  # (value, JSON pointer) -> errors

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,),
    "boolean": (bool,), "null": (type(None),), "number": (int, float),
}


@cache
def _validators() -> tuple[Check, dict[str, Check]]:
    """The schema compiled once into checker closures: the gateway runs this per record."""
    root = record_schema()
    bodies = {name.removeprefix("body_"): _compile(d, root) for name, d in root["$defs"].items()
              if name.startswith("body_")}
    return _compile(root, root), bodies


def _compile(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Check:
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ContractError(f"schema: unsupported $ref {ref!r}")
        target: Mapping[str, Any] = root
        for part in ref.removeprefix("#/").split("/"):  # a pointer: a version 2 body reuses version 1 parts
            target = target[part]
        schema = target
    checks: list[Check] = []
    names = schema.get("type")
    type_check: Check | None = None
    if names is not None:
        names = names if isinstance(names, list) else [names]
        allowed = tuple(t for n in names for t in _TYPES[n])
        no_bool = ("integer" in names or "number" in names) and "boolean" not in names
        wanted = " or ".join(names)

        def type_check(v: Any, here: str) -> list[str]:
            if not isinstance(v, allowed) or (no_bool and isinstance(v, bool)):
                return [f"{here}: expected {wanted}, got {type(v).__name__}"]
            return []
    if "const" in schema:
        const = schema["const"]
        checks.append(lambda v, h: [] if v == const and type(v) is type(const) else [f"{h}: must be {const!r}"])
    if "enum" in schema:
        enum = schema["enum"]
        checks.append(lambda v, h: [] if v in enum else [f"{h}: {v!r} is not one of {enum}"])
    checks += _string_checks(schema) + _number_checks(schema)
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        checks.append(_object_check(schema, root))
    if "items" in schema or "minItems" in schema or "maxItems" in schema:
        checks.append(_array_check(schema, root))

    def check(value: Any, path: str) -> list[str]:
        here = path or "/"
        if type_check is not None:
            bad = type_check(value, here)
            if bad:
                return bad
        errors: list[str] = []
        for c in checks:
            errors += c(value, path)
        return errors

    return check


def _string_checks(schema: Mapping[str, Any]) -> list[Check]:
    out: list[Check] = []
    if "pattern" in schema:
        rx, text = re.compile(schema["pattern"]), schema["pattern"]
        out.append(lambda v, h: [] if not isinstance(v, str) or rx.search(v)
                   else [f"{h or '/'}: {v[:40]!r} does not match {text}"])
    lo, hi = schema.get("minLength"), schema.get("maxLength")
    if lo is not None:
        out.append(lambda v, h: [f"{h or '/'}: shorter than {lo}"] if isinstance(v, str) and len(v) < lo else [])
    if hi is not None:
        out.append(lambda v, h: [f"{h or '/'}: longer than {hi}"] if isinstance(v, str) and len(v) > hi else [])
    return out


def _number_checks(schema: Mapping[str, Any]) -> list[Check]:
    out: list[Check] = []
    lo, hi = schema.get("minimum"), schema.get("maximum")

    def is_int(v: Any) -> bool:  # any number: an integer, or a float where the schema allows one
        return isinstance(v, int | float) and not isinstance(v, bool)

    if lo is not None:
        out.append(lambda v, h: [f"{h or '/'}: {v} is below {lo}"] if is_int(v) and v < lo else [])
    if hi is not None:
        out.append(lambda v, h: [f"{h or '/'}: {v} is above {hi}"] if is_int(v) and v > hi else [])
    return out


def _object_check(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Check:
    props = {k: _compile(v, root) for k, v in schema.get("properties", {}).items()}
    required = schema.get("required", [])
    closed = schema.get("additionalProperties", True) is False

    def check(v: Any, path: str) -> list[str]:
        if not isinstance(v, dict):
            return []
        errors = [f"{path}/{k}: required" for k in required if k not in v]
        for k, item in v.items():
            sub = props.get(k)
            if sub is not None:
                errors += sub(item, f"{path}/{k}")
            elif closed:
                errors.append(f"{path}/{k}: unknown field")
        return errors

    return check


def _array_check(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Check:
    item_check = _compile(schema["items"], root) if "items" in schema else None
    lo, hi = schema.get("minItems", 0), schema.get("maxItems")

    def check(v: Any, path: str) -> list[str]:
        if not isinstance(v, list):
            return []
        here = path or "/"
        errors = [f"{here}: needs at least {lo} item(s)"] if len(v) < lo else []
        if hi is not None and len(v) > hi:
            errors.append(f"{here}: more than {hi} items")
        if item_check is not None:
            for i, item in enumerate(v):
                errors += item_check(item, f"{path}/{i}")
        return errors

    return check
