"""Scripts for the virtual scale: a plain text file, one step per line, played in order.

    # a collector weighs a bag, the adapter is pulled, the indicator drifts
    load 12345 settle=0.8 noise=20   # put 12345 g on; motion ±20 g for 0.8 s, then exact
    wait 2                           # seconds
    unload settle=0.5                # platform empty again (same as `load 0`)
    drift +5/s                       # creep at +5 g/s (drift 0 stops it)
    overload                         # far beyond capacity; `overload off` ends it
    garbage 50                       # 50 random bytes on the line now
    garbage-rate 0.2                 # a burst of random bytes before 20 % of the frames
    corrupt 0.1                      # one bit flipped in 10 % of the frames (0 stops it)
    partial                          # the tail of a frame only (a reader joining mid-frame)
    off / on                         # indicator power: off is silence behind a live adapter
    unplug 3                         # adapter pulled for 3 s; a new pty comes back on the link
    tare 500                         # the indicator's tare (g); `tare 0` clears it
    repeat                           # start again from the first line (last line only)

Numbers are integers (grams) or decimals (seconds, rates).  A bad line stops the script before
anything is played, with its line number (``ScriptError``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sim_devices.scales.base import VirtualScale

DEFAULT_SETTLE_S = 0.6  # s: motion time of a `load` without settle=


class ScriptError(ValueError):
    """A script line that cannot be played; the message names the line."""


@dataclass(frozen=True)
class Step:
    line: int
    command: str
    args: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)


_RATE = re.compile(r"([+-]?\d+(?:\.\d+)?)(?:/s)?")
# command → (min args, max args, allowed options)
_GRAMMAR: dict[str, tuple[int, int, frozenset[str]]] = {
    "load": (1, 1, frozenset({"settle", "noise"})),
    "unload": (0, 0, frozenset({"settle"})),
    "wait": (1, 1, frozenset()),
    "drift": (1, 1, frozenset()),
    "overload": (0, 1, frozenset()),
    "garbage": (1, 1, frozenset()),
    "garbage-rate": (1, 1, frozenset()),
    "corrupt": (1, 1, frozenset()),
    "partial": (0, 0, frozenset()),
    "off": (0, 0, frozenset()),
    "on": (0, 0, frozenset()),
    "unplug": (1, 1, frozenset()),
    "tare": (1, 1, frozenset()),
    "repeat": (0, 0, frozenset()),
}


def parse_script(text: str) -> list[Step]:
    """All steps of a script, checked (arguments, numbers, ranges) before any is played."""
    steps: list[Step] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        command, rest = words[0].lower(), words[1:]
        if command not in _GRAMMAR:
            raise ScriptError(f"line {n}: unknown command {command!r}; known: {', '.join(_GRAMMAR)}")
        lo, hi, allowed = _GRAMMAR[command]
        args = tuple(w for w in rest if "=" not in w)
        options = dict(w.split("=", 1) for w in rest if "=" in w)
        if not lo <= len(args) <= hi:
            raise ScriptError(f"line {n}: {command} takes {lo}..{hi} arguments, got {len(args)}")
        if unknown := set(options) - allowed:
            raise ScriptError(f"line {n}: {command} has no option {', '.join(sorted(unknown))}")
        step = Step(n, command, args, options)
        _check(step)
        if steps and steps[-1].command == "repeat":
            raise ScriptError(f"line {steps[-1].line}: repeat must be the last line")
        steps.append(step)
    return steps


def _number(step: Step, text: str, *, integer: bool = False, lo: float | None = None,
            hi: float | None = None) -> float:
    try:
        value = float(int(text)) if integer else float(text)
    except ValueError:
        raise ScriptError(f"line {step.line}: {step.command}: {text!r} is not a number") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ScriptError(f"line {step.line}: {step.command}: {text} is out of range [{lo}, {hi}]")
    return value


def _drift_rate(step: Step) -> float:
    match = _RATE.fullmatch(step.args[0])
    if not match:
        raise ScriptError(f"line {step.line}: drift wants grams per second like +5/s, got {step.args[0]!r}")
    return float(match.group(1))


def _check(step: Step) -> None:
    """Every argument of ``step`` parses (so playing cannot fail half-way)."""
    c, a, o = step.command, step.args, step.options
    if c == "load":
        _number(step, a[0], integer=True)
    if "settle" in o:
        _number(step, o["settle"], lo=0)
    if "noise" in o:
        _number(step, o["noise"], integer=True, lo=0)
    if c in ("wait", "unplug"):
        _number(step, a[0], lo=0)
    if c in ("garbage-rate", "corrupt"):
        _number(step, a[0], lo=0, hi=1)
    if c == "garbage":
        _number(step, a[0], integer=True, lo=1)
    if c == "tare":
        _number(step, a[0], integer=True, lo=0)
    if c == "drift":
        _drift_rate(step)
    if c == "overload" and a and a[0] not in ("on", "off"):
        raise ScriptError(f"line {step.line}: overload takes on/off, got {a[0]!r}")


def play(scale: VirtualScale, steps: list[Step], stop: threading.Event,
         log: Callable[[str], None] | None = None) -> None:
    """Play ``steps`` on ``scale`` until the end (or forever with ``repeat``) or until ``stop``."""
    i = 0
    while i < len(steps) and not stop.is_set():
        step = steps[i]
        i += 1
        if log is not None:
            log(f"line {step.line}: {step.command} {' '.join(step.args)}".rstrip())
        if step.command == "repeat":
            i = 0
        elif step.command == "wait":
            stop.wait(float(step.args[0]))
        else:
            apply(scale, step)


def apply(scale: VirtualScale, step: Step) -> None:
    """One non-waiting step."""
    c, a, o = step.command, step.args, step.options
    settle = float(o.get("settle", DEFAULT_SETTLE_S))
    if c == "load":
        scale.set_load(int(a[0]), settle_s=settle, noise_g=int(o.get("noise", "0")))
    elif c == "unload":
        scale.remove_load(settle)
    elif c == "drift":
        scale.set_drift(_drift_rate(step))
    elif c == "overload":
        scale.overload = not a or a[0] == "on"
    elif c == "garbage":
        scale.garbage(int(a[0]))
    elif c == "garbage-rate":
        scale.garbage_rate = float(a[0])
    elif c == "corrupt":
        scale.corrupt_rate = float(a[0])
    elif c == "partial":
        scale.partial_frame()
    elif c in ("on", "off"):
        scale.power(c == "on")
    elif c == "unplug":
        scale.unplug(float(a[0]))
    elif c == "tare":
        scale.tare_g = int(a[0])
