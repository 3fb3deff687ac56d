"""What the cart believes of a verified gateway message: pure decisions, the facts passed in.

``wire.open_message`` has already checked the signature (a gateway key), the topic and every
bound; what is left is whether the message belongs to *this* cart's ledger and *this* boot:

- an **ack** is applied only if ``upto_hash`` is the hash of this ledger's own record at
  ``upto_seq`` (``GENESIS_HASH`` for 0) and ``upto_seq`` is no higher than what this cart has
  published (or already had acknowledged); its ``ids`` count only for this ledger's own records so
  far published.  An ack for another ledger (a genuine one replayed after the data folder was
  wiped, same cart id), or for records the cart never sent, matches nothing and is refused.  An
  ack above what this *process* published whose hash is this ledger's own is an ack of a previous
  run (queued at the broker across a restart): it is ``early`` — applied later, when those records
  have gone out again and are acknowledged again — neither applied nor counted as refused;
- a **command** runs only for the current ``boot_id``, with a ``counter`` above the last one run
  this boot, with the name its topic says, and with arguments in range (``resend`` from at most
  the head + 1; ``reprint`` a bag's package code or one of our bag label payloads, parsed by
  ``edge.codes``; ``config`` one or more known thresholds, each within ``wire.CONFIG_BOUNDS``).
  The schema bounds the same arguments before the signature is tried; checking again here keeps
  the cart safe from a schema edited on one side only.

No I/O, no clock of its own (``Throttle`` and ``Bucket`` are handed the time), so the unit tests
drive every branch, hypothesis included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge import codes, wire
from edge.errors import CodeError
from edge.wire.core import CMD_CONFIG, CMD_REPRINT, CONFIG_BOUNDS, LABEL_MAX

REFUSED_KINDS = ("ack", "reject", "cmd")  # what the cart counts as refused (status, telemetry)


@dataclass(frozen=True)
class AckDecision:
    """What to apply of an ack: every seq ≤ ``upto`` (0: none) and ``ids``; or why nothing
    (``refused``), or nothing yet (``early``: an ack of a previous run of this ledger)."""

    upto: int = 0
    ids: tuple[str, ...] = ()
    refused: str = ""
    early: bool = False


def decide_ack(body: Mapping[str, Any], *, own_hash: str | None, high_water: int,
               id_seqs: Mapping[str, int]) -> AckDecision:
    """An opened ack body against this ledger.

    ``own_hash``: the hash of this ledger's record at ``body["upto_seq"]`` (None: no such record,
    e.g. purged after retention, or beyond the head); ``high_water``: the highest seq this cart
    published in this process, or had acknowledged before; ``id_seqs``: the seq of each of
    ``body["ids"]`` that is a record of this ledger."""
    upto, upto_hash, ids = int(body["upto_seq"]), str(body["upto_hash"]), [str(i) for i in body["ids"]]
    if upto > high_water:
        if own_hash is not None and own_hash == upto_hash:
            return AckDecision(early=True)
        return AckDecision(refused=f"upto_seq {upto} is beyond the highest seq this cart published ({high_water})")
    if upto == 0:
        if upto_hash != wire.GENESIS_HASH:
            return AckDecision(refused="upto_seq 0 with a hash other than the genesis hash")
    elif own_hash is not None and own_hash != upto_hash:
        return AckDecision(refused=f"upto_hash is not the hash of this ledger's record {upto} "
                                   "(an ack for another ledger)")
    foreign = [i for i in ids if i not in id_seqs]
    if foreign:
        return AckDecision(refused=f"{len(foreign)} of its {len(ids)} ids are not records of this ledger")
    # A record above the high water is this ledger's but not yet sent by this process: an ack of
    # a previous run, still queued at the broker; it is sent again and acknowledged again.
    sent = tuple(i for i in ids if id_seqs[i] <= high_water)
    # own_hash None with upto ≤ high_water: the record was purged, so it was synced long ago:
    # the upto part cannot be checked and would change nothing.
    return AckDecision(upto=upto if own_hash is not None else 0, ids=sent)


@dataclass(frozen=True)
class CmdDecision:
    """Run the command, or why not (``reason``, sent back in its ``cmd_result``).  ``args``: what
    to run it with, checked (a reprint's label reduced to the bag's package code)."""

    run: bool
    reason: str = ""
    counts: bool = False  # it was for this boot and above the last counter: the counter is used up
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CmdAnswer:
    """What a command's handler did: ``done`` (``reason`` says what, e.g. what changed) or not."""

    done: bool
    reason: str = ""


# The arguments each command takes exactly (config: any non-empty subset of CONFIG_BOUNDS).
_ARGS = {wire.CMD_RESEND: ("from_seq",), wire.CMD_TIME: ("utc_ms",), CMD_REPRINT: ("label",)}


def label_ident(label: str) -> str:
    """The package code a reprint names: a bag label payload of ours (``WC1.B.…`` / ``WS1.B.…``,
    parsed by ``edge.codes`` without a key: check characters and fields) or a bare package code.
    ValueError says why not."""
    if len(label) > LABEL_MAX:
        raise ValueError(f"label is longer than {LABEL_MAX} characters")
    if label.split(".", 1)[0] in (codes.VERSION, codes.SIGNED):
        try:
            code = codes.decode(label)
        except CodeError as exc:
            raise ValueError(f"label {label[:LABEL_MAX]!r} is not a valid code: {exc.msg.en}") from None
        if code.kind != "B":
            raise ValueError(f"label {label!r} is a {codes.KINDS[code.kind]}, not a bag label")
        return code.ident
    if not wire.ID_PATTERN.match(label):
        raise ValueError(f"label {label[:LABEL_MAX]!r} is neither a package code nor a bag label")
    return label


def config_problem(args: Mapping[str, Any]) -> str:
    """Why a ``config`` command's arguments cannot be applied ("" if they can)."""
    if not args:
        return f"config needs at least one of {', '.join(CONFIG_BOUNDS)}"
    for key, value in args.items():
        if key not in CONFIG_BOUNDS:
            return f"config: unknown setting {str(key)[:32]!r} (known: {', '.join(CONFIG_BOUNDS)})"
        low, high = CONFIG_BOUNDS[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"config: {key} {str(value)[:32]} is outside {low}..{high}"
    return ""


def decide_command(name: str, body: Mapping[str, Any], *, boot_id: str, last_counter: int,
                   head: int) -> CmdDecision:
    """An opened command body that arrived on ``…/cmd/{name}``, for a cart at ``head``."""
    if body["name"] != name:
        return CmdDecision(False, f"signed as {str(body['name'])[:32]!r}, arrived on cmd/{name[:32]}")
    if body["boot_id"] != boot_id:
        return CmdDecision(False, "for another boot of this cart (boot_id does not match)")
    counter = int(body["counter"])
    if counter <= last_counter:
        return CmdDecision(False, f"counter {counter} is not above {last_counter}, the last run (a replay)")
    args = dict(body["args"])
    if name == CMD_CONFIG:
        problem = config_problem(args)
        return CmdDecision(False, problem, counts=True) if problem else CmdDecision(True, counts=True, args=args)
    want = _ARGS.get(name)
    if want is None:
        return CmdDecision(False, f"unknown command {name[:32]!r}", counts=True)
    if set(args) != set(want):
        return CmdDecision(False, f"{name} takes exactly {', '.join(want)}", counts=True)
    if name == wire.CMD_RESEND and int(args["from_seq"]) > head + 1:
        return CmdDecision(False, f"from_seq {args['from_seq']} is beyond the head {head} + 1", counts=True)
    if name == CMD_REPRINT:
        try:
            args = {"label": label_ident(str(args["label"]))}
        except ValueError as exc:
            return CmdDecision(False, str(exc), counts=True)
    return CmdDecision(True, counts=True, args=args)


@dataclass
class Throttle:
    """At most one log line per key every ``every_s``; the lines held back are counted and told
    with the next one, so a flood of bad messages is one line per interval, not a line each."""

    every_s: float
    _next: dict[str, float] = field(default_factory=dict)
    _held: dict[str, int] = field(default_factory=dict)

    def allow(self, key: str, now: float) -> int | None:
        """None: stay quiet; else how many were held back since the last line of this key."""
        if now < self._next.get(key, float("-inf")):
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._next[key] = now + self.every_s
        return self._held.pop(key, 0)


@dataclass
class Bucket:
    """A token bucket: ``burst`` at once, then ``rate`` a second (answers to refused commands)."""

    rate: float
    burst: float
    _tokens: float = -1.0
    _at: float = 0.0

    def take(self, now: float) -> bool:
        if self._tokens < 0:
            self._tokens, self._at = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def refused_counts(*parts: Mapping[str, int]) -> dict[str, int]:
    """The refused counts of ``REFUSED_KINDS``, summed over ``parts`` (drain + paho thread)."""
    return {k: sum(p.get(k, 0) for p in parts) for k in REFUSED_KINDS}


def claimed_kind(msg: Mapping[str, Any] | None, default: str, allowed: Sequence[str]) -> str:
    """Which refused count a message that did not open goes to: its claimed kind if allowed."""
    kind = msg.get("kind") if msg else None
    return kind if isinstance(kind, str) and kind in allowed else default
