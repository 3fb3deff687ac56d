"""What the gateway's ``config`` and ``reprint`` commands do to this cart, decided here, pure.

- **config** sets workflow thresholds (``edge.workflow.Limits``) in integer wire units
  (``wire.CONFIG_BOUNDS``: grams, percent, seconds): ``with_config`` checks them (the bounds, then
  ``Limits``' own validation) and says what changed.  The agent applies them to the running
  workflow and keeps them in ``DATA/limits.json`` (``save_overrides``), which ``apply_saved`` lays
  over the ``[workflow]`` settings at the next start: an operator's change outlives a restart, and
  a bad or unreadable file is logged and ignored rather than keeping the cart from starting.
- **reprint** prints the label of a bag this cart handed over: ``find_bag`` reads it from the
  cart's own handover records (a bag voided since is refused: its label must not come back).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edge.catalogue import LABEL_NOTE
from edge.ledger import trust
from edge.wire.core import CONFIG_BOUNDS
from edge.workflow import Limits
from edge.workflow.records import note_words

log = logging.getLogger(__name__)

OVERRIDES_FILE = "limits.json"  # in the cart's data folder
# wire key -> (Limits field, wire units per unit of the field)
_FIELDS: dict[str, tuple[str, int]] = {
    "tolerance_g": ("tolerance_g", 1), "tolerance_pct": ("tolerance_pct", 1),
    "storage_overdue_s": ("storage_overdue_h", 3600), "round_max_s": ("round_max_h", 3600),
    "max_bag_g": ("max_bag_kg", 1000),
}
assert set(_FIELDS) == set(CONFIG_BOUNDS)


def _field_value(value: int, unit: int) -> float:
    """``value`` in the field's unit, such that ``Limits`` gives back exactly ``value`` (its properties
    truncate: ``int(902 / 3600 * 3600)`` is 901)."""
    x = value / unit
    while int(x * unit) < value:
        x = math.nextafter(x, math.inf)
    return x


def wire_values(limits: Limits) -> dict[str, int]:
    """The thresholds as ``config`` names them (integers)."""
    return {key: round(getattr(limits, name) * unit) for key, (name, unit) in _FIELDS.items()}


def with_config(limits: Limits, args: Mapping[str, Any]) -> tuple[Limits, list[str]]:
    """``limits`` with ``args`` applied, and what changed (``"tolerance_g 50→80"``); ValueError names
    the setting at fault."""
    problem = trust.config_problem(args)
    if problem:
        raise ValueError(problem)
    update: dict[str, Any] = {}
    for key, value in args.items():
        name, unit = _FIELDS[key]
        update[name] = value if unit == 1 else _field_value(value, unit)
    try:
        Limits.model_validate({**{f: getattr(limits, f) for f in Limits.model_fields}, **update})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ValueError(f"config: {err['loc'][0] if err['loc'] else '?'}: {err['msg']}") from None
    before = wire_values(limits)
    changed = [f"{key} {before[key]}→{value}" for key, value in sorted(args.items()) if before[key] != value]
    return limits.model_copy(update=update), changed


def load_overrides(path: Path) -> dict[str, int]:
    """The saved overrides ({} if none); ValueError names the file and what is wrong with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the saved settings ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of settings")
    problem = trust.config_problem(data) if data else ""
    if problem:
        raise ValueError(f"{path}: {problem}")
    return {str(k): int(v) for k, v in data.items()}


def apply_saved(limits: Limits, path: Path) -> Limits:
    """``limits`` with the overrides saved in ``path``; a bad file is logged and left out."""
    try:
        saved = load_overrides(path)
        if not saved:
            return limits
        new, changed = with_config(limits, saved)
    except ValueError as exc:
        log.error("workflow settings from the gateway not applied: %s", exc)
        return limits
    if changed:
        log.info("workflow settings from the gateway (%s): %s", path, ", ".join(changed))
    return new


def save_overrides(path: Path, args: Mapping[str, int]) -> None:
    """Merge ``args`` into the saved overrides, atomically (a crash leaves the old or the new file)."""
    merged = {**load_overrides(path), **{k: int(v) for k, v in args.items()}}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(merged, f, sort_keys=True, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class BagLabel:
    """What a bag's label says, as its handover recorded it."""

    org: str
    package_code: str
    category: str
    department: str
    weight_g: int
    produced_at: datetime
    notes: str = ""          # 备注 words (version 2 handovers record the chosen notes)
    components: str = ""     # 主要成分


def find_bag(records: Iterable[tuple[str, str, int, dict[str, Any]]], package_code: str) -> BagLabel | str:
    """The bag's label from this cart's ``(id, type, seq, body)`` handover and void records (seq
    order), or why there is none to print (never handed over here, or voided since)."""
    found: tuple[str, BagLabel] | None = None
    voided = False
    for record_id, rtype, _seq, body in records:
        if rtype == "handover":
            for line in body.get("lines", ()):
                if line.get("package_code") == package_code:
                    found = (record_id, BagLabel(str(body.get("org", "")), package_code, str(line["category"]),
                                                 str(body.get("department", "")), int(line["weight_g"]),
                                                 datetime.fromisoformat(str(body["handover_at"])),
                                                 note_words(n for n in line.get("notes", ()) if n in LABEL_NOTE),
                                                 str(line.get("main_components", ""))))
                    voided = False
        elif rtype == "void" and found is not None:
            whole = body.get("voided_record_id") == found[0] and not body.get("package_code")
            voided = voided or whole or body.get("package_code") == package_code
    if found is None:
        return f"bag {package_code} is not in this cart's ledger (never handed over here, or purged)"
    if voided:
        return f"bag {package_code} was voided: its label is not printed again"
    return found[1]
