"""Fuzz: at least 10,000 generated bad payloads on every topic a cart or the gateway reads, while
one good cart keeps delivering — real mosquitto, ``gateway run``, ``sim fleet``, ``sim platform``.

The payloads come from a seeded ``random.Random`` (the same run every time; the replays are of
whatever genuine messages the run captured, at the same places): random bytes, truncated and
deeply nested JSON, wrong types, huge numbers (2**64 … a 5,000-digit integer), floats, NaN,
oversized payloads, signatures of another key or broken, genuine messages replayed as they were
or on other topics, and signed forms whose kind, site or cart do not match their topic.

Asserted: every record of the good cart reaches the platform exactly once and the fleet exits 0;
the gateway is still running and neither it nor the cart logged a traceback; the gateway's store
stays within its quarantine budget (plus a margin for the records themselves).
"""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from tests.faults.harness import Stack, poll_until
from tests.faults.hostile import (
    Heard,
    Intruder,
    extra_gateway_config,
    forge,
    forged_record,
    status_body,
    store_bytes,
    tracebacks,
    wait_taken,
)

pytestmark = [pytest.mark.fault, pytest.mark.slow, pytest.mark.open_broker]

SEED = 20261107
PAYLOADS = 10_000
RECORDS = 200  # the good cart's, at RATE records/s: it delivers during the whole fuzz
RATE = 20.0
KEEP_BYTES = 4_096
BUDGET_BYTES = 1024 * 1024
STORE_MARGIN = 3 * 1024 * 1024  # the good cart's records, the alerts, SQLite's own pages
FINISH_S = 70.0  # the fuzz and the fleet together; the whole test must stay under 90 s
OTHER_SITE = "H999999999"
GHOSTS = ("GHOST-01", "GHOST-02", "GHOST-03")
BAD_TOPIC_CARTS = ("fleet-001", "X" * 40, "A B", "ÄÖ")  # not cart ids: no alert row per cart for these
GATEWAY_LEAVES = (wire.RECORD, wire.STATUS, wire.TELEMETRY, wire.CMD_RESULT)
CART_LEAVES = (wire.ACK, f"{wire.CMD}/{wire.CMD_RESEND}", f"{wire.CMD}/{wire.CMD_TIME}", f"{wire.CMD}/reboot")
WRONG_VALUES: tuple[Any, ...] = (None, True, False, "", "x", "9" * 60, -1, 0, 1.5, [], {}, [1, 2], {"a": 1},
                                 2**64, -(2**63) - 1)
HUGE = ("9007199254740992", "18446744073709551616", "1180591620717411303424", "-9223372036854775809",
        "1e308", "1e400", "-0.0", "NaN", "Infinity", "9" * 5000, "1" + "0" * 4400)


class Fuzzer:
    """Generates the bad payloads from a seeded Random and what the run captured."""

    def __init__(self, rng: random.Random, org: str, cart: str, captured: list[Heard]) -> None:
        self.rng, self.org, self.cart = rng, org, cart
        self.key = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))  # the intruder's: trusted nowhere
        self.records = [h for h in captured if h.leaf == wire.RECORD and h.record() is not None]
        self.signed = [h for h in captured if h.signed() is not None]
        assert self.records and self.signed, "nothing genuine captured to replay"
        self.kinds: dict[str, int] = {}

    # topics

    def topic(self, leaves: tuple[str, ...] = GATEWAY_LEAVES + CART_LEAVES) -> str:
        r = self.rng.random()
        site, cart = self.org, self.cart
        if r < 0.15:
            cart = self.rng.choice(GHOSTS)
        elif r < 0.2:
            site = OTHER_SITE
        elif r < 0.25:
            cart = self.rng.choice(BAD_TOPIC_CARTS)
        return wire.topic(site, cart, self.rng.choice(leaves))

    # payloads

    def base_object(self) -> tuple[str, dict[str, Any]]:
        """A genuine message (record or signed) as an object, with the leaf it came on."""
        h = self.rng.choice(self.records if self.rng.random() < 0.5 else self.signed)
        obj = json.loads(h.payload)
        assert isinstance(obj, dict)
        return h.leaf, obj

    def random_bytes(self) -> tuple[str, bytes]:
        return self.topic(), self.rng.randbytes(self.rng.choice((0, 1, 7, 100, 1000, 3000)))

    def truncated(self) -> tuple[str, bytes]:
        leaf, obj = self.base_object()
        text = wire.canonical(obj)
        return self._on(leaf), text[:self.rng.randrange(len(text))]

    def nested(self) -> tuple[str, bytes]:
        depth = self.rng.choice((50, 1000, 5000, 30_000))
        lists = self.rng.random() < 0.5
        text = "[" * depth + "]" * depth if lists else '{"body":' * depth + "1" + "}" * depth
        if self.rng.random() < 0.3:  # cut: never closed
            text = text[:depth]
        return self.topic(), text.encode()

    def wrong_type(self) -> tuple[str, bytes]:
        leaf, obj = self.base_object()
        self._replace(obj, self.rng.choice(WRONG_VALUES))
        return self._on(leaf), json.dumps(obj).encode()

    def huge_number(self) -> tuple[str, bytes]:
        leaf, obj = self.base_object()
        self._replace(obj, "__HUGE__", numbers_only=True)
        text = json.dumps(obj).replace('"__HUGE__"', self.rng.choice(HUGE))
        return self._on(leaf), text.encode()

    def oversized(self) -> tuple[str, bytes]:
        size = self.rng.choice((wire.MESSAGE_MAX + 1, 200_000, 1_000_000))
        leaf, obj = self.base_object()
        obj["pad"] = "x" * size
        return self._on(leaf), json.dumps(obj).encode()

    def bad_signature(self) -> tuple[str, bytes]:
        leaf, obj = self.base_object()
        r = self.rng.random()
        if "sig" not in obj:
            return self._on(leaf), wire.canonical(obj)
        if r < 0.4 and "kind" in obj:  # the whole signed form, signed by the intruder
            return self._on(leaf), forge(obj["kind"], obj["site"], obj["cart"], obj["body"], self.key)
        if r < 0.6 and "kind" not in obj:  # a record re-sealed by the intruder (same id, seq, content)
            unsigned = {k: v for k, v in obj.items() if k not in ("hash", "sig")}
            return self._on(leaf), wire.encode(wire.seal(unsigned, self.key))
        sig = str(obj["sig"])
        obj["sig"] = self.rng.choice((
            "", "!!not base64!!", base64.b64encode(self.rng.randbytes(64)).decode(),
            sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB"), sig * 2))
        return self._on(leaf), wire.canonical(obj)

    def replay(self) -> tuple[str, bytes]:
        """A genuine message as it was: on its own topic, or on another one."""
        h = self.rng.choice(self.records + self.signed)
        if self.rng.random() < 0.4:
            return h.topic, h.payload
        return self.topic(), h.payload

    def mismatch(self) -> tuple[str, bytes]:
        """Signed forms whose kind, site or cart are not their topic's, by the intruder's key."""
        r = self.rng.random()
        kind = self.rng.choice(wire.SIGNED_KINDS)
        body: dict[str, Any] = {
            wire.ACK_KIND: wire.ack_body(1, wire.GENESIS_HASH, []),
            wire.REJECT_KIND: wire.reject_body(self.uuid(), 1, "FORGED", "fuzz", "0" * 64),
            wire.CMD_KIND: wire.command_body(wire.CMD_RESEND, self.uuid(), 1, {"from_seq": 1}),
            wire.STATUS_KIND: status_body("online", 1),
            wire.TELEMETRY_KIND: {"at": "2026-01-01T00:00:00+08:00", "backlog": 0, "oldest_unsent_s": None,
                                  "disk_free_mb": 1},
            wire.CMD_RESULT_KIND: wire.cmd_result_body("resend", self.uuid(), 1, "done"),
        }[kind]
        site, cart = (OTHER_SITE, self.cart) if r < 0.3 else (self.org, self.rng.choice((*GHOSTS, self.cart)))
        return self.topic(), forge(kind, site, cart, body, self.key)

    def junk_json(self) -> tuple[str, bytes]:
        return self.topic(), self.rng.choice((
            b"null", b"[]", b'""', b"{}", b"0", b"true", b'{"v":1,"v":2}', b'{"a":"\xff\xfe"}',
            b"\xef\xbb\xbf{}", b" " * 100, b'{"v":NaN}', b'{"v":Infinity}', b'{"upto_seq":' + b"9" * 5000 + b"}",
            b'{"state":"online","boot_id":"x","seq_head":' + b"1" * 5000 + b"}", b'{"from_seq":-1}',
            b'{"utc_ms":1e400}'))

    def forged_record(self) -> tuple[str, bytes]:
        """A new record for the good cart or a made-up one, sealed by the intruder, any seq."""
        cart = self.rng.choice((self.cart, *GHOSTS))
        seq = self.rng.choice((1, 2, 50, 10**6, wire.MAX_SEQ, wire.MAX_SEQ + 1, 2**63))
        env = forged_record(self.org, cart, seq, self.key)
        return wire.topic(self.org, cart, wire.RECORD), wire.encode(env)

    # helpers

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128)))

    def _on(self, leaf: str) -> str:
        """The leaf it came on most of the time (the checks of that topic), another topic otherwise."""
        if self.rng.random() < 0.7 and leaf:
            return wire.topic(self.org, self.cart, leaf)
        return self.topic()

    def _replace(self, obj: dict[str, Any], value: Any, numbers_only: bool = False) -> None:
        """Replace one value somewhere in ``obj`` (an integer one if ``numbers_only`` and there is one)."""
        slots: list[tuple[Any, Any]] = []

        def walk(node: Any) -> None:
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for k, v in items:
                if not numbers_only or (isinstance(v, int) and not isinstance(v, bool)):
                    slots.append((node, k))
                walk(v)

        walk(obj)
        if not slots:
            obj["seq"] = value
            return
        node, key = self.rng.choice(slots)
        node[key] = value

    def generate(self, n: int) -> list[tuple[str, bytes]]:
        makers: list[tuple[Callable[[], tuple[str, bytes]], float]] = [
            (self.random_bytes, 1.0), (self.truncated, 1.0), (self.nested, 0.3), (self.wrong_type, 1.5),
            (self.huge_number, 1.0), (self.oversized, 0.02), (self.bad_signature, 1.5), (self.replay, 1.0),
            (self.mismatch, 1.0), (self.junk_json, 0.5), (self.forged_record, 0.5)]
        funcs, weights = zip(*makers, strict=True)
        out = []
        for _ in range(n):
            make = self.rng.choices(funcs, weights)[0]
            self.kinds[make.__name__] = self.kinds.get(make.__name__, 0) + 1
            out.append(make())
        return out


def test_fuzz_ten_thousand_bad_payloads_while_a_good_cart_delivers(make_stack: Callable[..., Stack]) -> None:
    t0 = time.monotonic()
    stack = make_stack(carts=1, records=RECORDS, rate=RATE)
    cart = stack.carts[0]
    stack.start_broker()
    stack.start_platform()
    extra_gateway_config(stack, f"[quarantine]\nkeep_bytes = {KEEP_BYTES}\nbudget_bytes = {BUDGET_BYTES}")
    stack.start_gateway()
    with Intruder(stack.broker.url, "wc-faults-listener") as listener, \
            Intruder(stack.broker.url, "wc-faults-fuzzer") as fuzzer:
        listener.subscribe(*(wire.topic(stack.org, cart, leaf) for leaf in
                             (wire.RECORD, wire.ACK, wire.STATUS, wire.TELEMETRY, f"{wire.CMD}/#", wire.CMD_RESULT)))
        stack.start_fleet()
        # Genuine traffic to replay and mutate: records the gateway already holds (a bad copy of
        # one it does not hold yet is test_hostile's forged-copies test), an ack, the birth.
        poll_until(f"{cart} seq 20 stored", lambda: True if stack.summary()["carts"].get(cart, {}).get(
            "upto_seq", 0) >= 20 else None, 30, on_timeout=stack.diagnostics)
        listener.must_hear("a signed ack and a birth", lambda hs: {"ack", "status"} <= {
            m["kind"] for h in hs if (m := h.signed()) is not None}, 30, stack.diagnostics)
        captured = [h for h in listener.messages() if not (h.leaf == wire.RECORD and (h.record() or {}).get(
            "seq", 99) > 20)]
        fuzz = Fuzzer(random.Random(SEED), stack.org, cart, captured)
        payloads = fuzz.generate(PAYLOADS)
        assert len(payloads) >= PAYLOADS
        stack.note(f"publishing {len(payloads)} bad payloads: {fuzz.kinds}")
        for start in range(0, len(payloads), 1000):
            fuzzer.publish_all(payloads[start:start + 1000], chunk=200)
        stack.note("fuzz published")
        stack.wait_fleet_done(max(1.0, FINISH_S - (time.monotonic() - t0)))
        wait_taken(stack, fuzzer, timeout=max(1.0, FINISH_S - (time.monotonic() - t0)))
    stack.wait_delivered()
    stack.assert_exactly_once()
    problems = [] if stack.part("gateway").running() else ["the gateway died under the fuzz"]
    for part in ("gateway", "fleet"):
        crashes = tracebacks(stack.part(part))
        if crashes:
            problems.append(f"the {part} logged {len(crashes)} traceback(s); the first:\n{crashes[0]}")
    counts = stack.summary()["counts"]
    if counts.get("quarantine_bytes", 0) > BUDGET_BYTES:
        problems.append(f"the quarantine holds {counts.get('quarantine_bytes')} bytes, beyond its budget")
    stack.stop("gateway")  # a clean stop checkpoints the WAL: the file's size is its high-water mark
    size = store_bytes(stack)
    if size > BUDGET_BYTES + STORE_MARGIN:
        problems.append(f"gateway.sqlite is {size / 2**20:.1f} MiB; budget {BUDGET_BYTES / 2**20:.1f} MiB "
                        f"+ {STORE_MARGIN / 2**20:.0f} MiB margin")
    took = time.monotonic() - t0
    if took > 90:
        problems.append(f"the fuzz test took {took:.0f} s (limit 90 s)")
    assert not problems, "\n".join(problems) + f"\ncounts {counts}\nstore {size} bytes, {took:.0f} s"
