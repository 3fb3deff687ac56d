"""Issue 11's attacks, each by a client with nothing but network access to the broker (no key of
any cart or of the gateway), against real processes: mosquitto, ``gateway run``, ``sim fleet``,
``sim platform``.  Each test shows the defence holding: the harm the issue measured would fail it.

1. fake acks while the gateway is down mark nothing synced; once it runs, every record arrives once;
2. genuine acks and commands replayed later (same boot, another cart, a new boot, a fresh ledger
   with the same cart id) are refused and change nothing;
3. forged commands (unsigned, or signed by a key of the intruder's) are refused; upload goes on;
4. poison status / seq (2**70, ≥ 2**63, a 5,000-digit seq) never stop ingest, not even after a
   restart with the same messages re-delivered;
5. forged and replayed retained status cannot show an online cart offline or a made-up cart online;
6. a flood of large and malformed payloads keeps the store within its quarantine budget and
   collapses the alerts;
7. a forged copy of a genuine record that reaches the gateway first cannot get the genuine record
   rejected at the cart.
(The fuzz test is ``test_fuzz.py``.)
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from gateway.store.quarantine import OPEN_ALERT_ROWS_MAX
from tests.faults.harness import Stack, poll_until
from tests.faults.hostile import (
    Heard,
    Intruder,
    arm_fleet,
    extra_gateway_config,
    forge,
    forged_record,
    gateway_key,
    gateway_status,
    ledger_rows,
    status_body,
    store_bytes,
    tracebacks,
    wait_taken,
)

pytestmark = [pytest.mark.fault, pytest.mark.open_broker]

FINISH_S = 60.0  # a fleet of this file finishes in a few seconds; this is the bound for a loaded CI box
RESEND_WAIT_S = 30.0  # sim fleet re-sends after 5 s without ack progress
HEAR_S = 30.0  # for a message the intruder must hear (a process start is in it)
FAR_SEQ = 1_000_000_000  # the fake resend
FORGED_COUNTER = 2**40  # far above any counter a gateway has used
FAR_UTC_MS = 4_102_444_800_000  # 2100-01-01


# ------------------------------------------------------------------------------------------------
# What the intruder heard


def _records(heard: list[Heard], cart: str) -> list[dict[str, Any]]:
    return [r for h in heard if h.cart == cart and h.leaf == wire.RECORD and (r := h.record()) is not None]


def _max_seq(heard: list[Heard], cart: str) -> int:
    return max((r["seq"] for r in _records(heard, cart)), default=0)


def _reached(cart: str, seq: int) -> Callable[[list[Heard]], bool]:
    return lambda heard: _max_seq(heard, cart) >= seq


def _all_heard(heard: list[Heard], carts: list[str], records: int, times: int = 1, since: float = 0.0) -> bool:
    counts = Counter((h.cart, r["seq"]) for h in heard if h.at >= since and h.leaf == wire.RECORD
                     and (r := h.record()) is not None)
    return all(counts[(c, s)] >= times for c in carts for s in range(1, records + 1))


def _signed(heard: list[Heard], cart: str, kind: str, since: float = 0.0) -> list[Heard]:
    """Signed messages of ``kind`` heard on ``cart``'s topics (NOT verified: as an intruder reads them)."""
    return [h for h in heard if h.cart == cart and h.at >= since and (m := h.signed()) is not None
            and m["kind"] == kind]


def _results(heard: list[Heard], cart: str, since: float = 0.0) -> list[dict[str, Any]]:
    """Bodies of ``cart``'s cmd_results heard since ``since``."""
    return [h.body() for h in _signed(heard, cart, wire.CMD_RESULT_KIND, since) if h.leaf == wire.CMD_RESULT]


def _births(heard: list[Heard], cart: str, since: float = 0.0) -> list[dict[str, Any]]:
    return [b for h in _signed(heard, cart, wire.STATUS_KIND, since) if (b := h.body()).get("state") == "online"]


def _done_twice(heard: list[Heard], carts: list[str]) -> list[tuple[str, str, int]]:
    """(cart, boot_id, counter) run more than once: a replay that worked."""
    done = Counter((c, r["boot_id"], r["counter"]) for c in carts for r in _results(heard, c)
                   if r.get("outcome") == "done")
    return [k for k, n in done.items() if n > 1]


def _unsynced_seqs(rows: list[dict[str, Any]]) -> list[int]:
    return [r["seq"] for r in rows if not r["synced"]]


def _not_rejected(stack: Stack, carts: list[str]) -> None:
    for cart in carts:
        rejected = [(r["seq"], r["rejected"]) for r in ledger_rows(stack.fleet_dir / cart) if r.get("rejected")]
        assert not rejected, f"{cart}: records marked rejected at the cart: {rejected[:10]}\n{stack.diagnostics()}"


# ------------------------------------------------------------------------------------------------
# 1. Fake acks while the gateway is down


def _fake_answers(key: Ed25519PrivateKey) -> Callable[[Heard], list[tuple[str, bytes]]]:
    """For each record heard: the issue's unsigned ack and whole-backlog ack, acks and a reject signed
    by the intruder's key with the record's real hash, and the issue's fake resend."""
    def answer(h: Heard) -> list[tuple[str, bytes]]:
        env = h.record()
        if h.leaf != wire.RECORD or env is None:
            return []
        site, cart, seq, rid = h.topic.split("/")[2], h.cart, env["seq"], env["id"]
        ack = wire.topic(site, cart, wire.ACK)
        return [
            (ack, wire.canonical({"upto_seq": seq, "ids": [rid]})),
            (ack, wire.canonical({"upto_seq": 2147483647})),
            (ack, forge(wire.ACK_KIND, site, cart, wire.ack_body(seq, env["hash"], [rid]), key)),
            (ack, forge(wire.ACK_KIND, site, cart, wire.ack_body(wire.MAX_SEQ, env["hash"], [rid]), key)),
            (ack, forge(wire.REJECT_KIND, site, cart, wire.reject_body(rid, seq, "FORGED", "intruder", "0" * 64), key)),
            (wire.cmd_topic(site, cart, wire.CMD_RESEND), wire.canonical({"from_seq": FAR_SEQ})),
        ]
    return answer


@pytest.mark.slow
def test_fake_acks_while_the_gateway_is_down_mark_nothing_synced(make_stack: Callable[..., Stack]) -> None:
    records = 60
    stack = make_stack(carts=2, records=records)
    stack.start_broker()
    stack.start_platform()
    key = gateway_key(stack)  # `gateway keygen`: the key `gateway run` will use
    assert key in stack.fleet_args(), "the fleet does not get the key `gateway keygen` printed"
    with Intruder(stack.broker.url) as intruder:
        intruder.subscribe(wire.RECORD_SUBSCRIPTION)
        intruder.answer(_fake_answers(Ed25519PrivateKey.generate()))
        stack.start_fleet()
        # A cart that believed no fake ack sends every record again once its re-send timer fires.
        resent = intruder.wait_for("every record twice", lambda hs: _all_heard(hs, stack.carts, records, 2),
                                   RESEND_WAIT_S)
        for cart in stack.carts:
            rows = ledger_rows(stack.fleet_dir / cart)
            assert [r["seq"] for r in rows] == list(range(1, records + 1)), f"{cart}: ledger {rows[:3]}…"
            synced = [r["seq"] for r in rows if r["synced"]]
            assert not synced, (f"{cart}: {len(synced)} record(s) marked synced by fake acks while no gateway "
                                f"ran: seqs {synced[:10]}\n{stack.diagnostics()}")
        _not_rejected(stack, stack.carts)
        assert stack.part("fleet").running(), f"the fleet ended without a gateway\n{stack.diagnostics()}"
        assert resent, f"the carts did not re-send their unacknowledged records\n{stack.diagnostics()}"
        assert intruder.published >= 6 * len(stack.carts) * records and not intruder.answer_errors

        stack.start_gateway()  # the fake answers go on meanwhile
        stack.wait_fleet_done(FINISH_S)
    stack.wait_delivered()
    stack.assert_exactly_once(records_per_cart=records)
    _not_rejected(stack, stack.carts)


# ------------------------------------------------------------------------------------------------
# 2. Replayed genuine acks and commands


@pytest.mark.slow
def test_replayed_genuine_acks_and_commands_are_refused(make_stack: Callable[..., Stack]) -> None:
    records, more = 40, 20
    # 10 records/s for the fleet: the first ones go out before the gateway has a session, so it
    # sees a gap and sends a genuine, signed resend that the cart runs.
    stack = make_stack(carts=2, records=records, rate=10)
    victim, other = stack.carts
    stack.start_broker()
    stack.start_platform()
    with Intruder(stack.broker.url) as intruder:
        intruder.subscribe(*(wire.topic(stack.org, c, leaf) for c in stack.carts
                             for leaf in (wire.RECORD, wire.ACK, f"{wire.CMD}/#", wire.CMD_RESULT, wire.STATUS)))
        stack.start_fleet()
        intruder.must_hear(f"{victim} publish seq 5", lambda hs: _max_seq(hs, victim) >= 5, HEAR_S)
        stack.start_gateway()

        def resend_done(hs: list[Heard]) -> bool:
            return any(r["name"] == wire.CMD_RESEND and r["outcome"] == "done" for r in _results(hs, victim))

        intruder.must_hear(f"a genuine resend to {victim} that it ran", resend_done, HEAR_S, stack.diagnostics)
        ran = next(r for r in _results(intruder.heard, victim)
                   if r["name"] == wire.CMD_RESEND and r["outcome"] == "done")
        genuine = next(h for h in _signed(intruder.heard, victim, wire.CMD_KIND)
                       if h.body()["counter"] == ran["counter"] and h.body()["boot_id"] == ran["boot_id"])

        # Same boot, same cart: a replay of a command already run.
        t = time.monotonic()
        intruder.publish(genuine.topic, genuine.payload)
        intruder.publish(wire.cmd_topic(stack.org, other, wire.CMD_RESEND), genuine.payload)
        intruder.must_hear("both carts refuse the replayed resend", lambda hs: (
            any(r["outcome"] == "refused" and r["counter"] == ran["counter"] for r in _results(hs, victim, t))
            and any(r["outcome"] == "refused" for r in _results(hs, other, t))), HEAR_S, stack.diagnostics)
        stack.wait_fleet_done(FINISH_S)
        stack.wait_delivered()
        stack.assert_exactly_once()
        acks = {c: _signed(intruder.heard, c, wire.ACK_KIND) for c in stack.carts}
        commands = {c: _signed(intruder.heard, c, wire.CMD_KIND)[:4] for c in stack.carts}
        assert all(acks.values()), f"no genuine ack captured for some cart: { {c: len(a) for c, a in acks.items()} }"
        old_boot = {c: _births(intruder.heard, c)[-1]["boot_id"] for c in stack.carts}

        def replay_all(since: float) -> None:
            """Every captured ack and command to its own cart, and the victim's to the other cart."""
            items = [(h.topic, h.payload) for c in stack.carts for h in acks[c]]
            items += [(wire.topic(stack.org, other, wire.ACK), h.payload) for h in acks[victim]]
            items += [(h.topic, h.payload) for c in stack.carts for h in commands[c]]
            intruder.publish_all(items)
            # The carts handle acks and commands in the order they arrive: once the commands are
            # answered, the acks before them were handled too.
            want = {c: len(commands[c]) for c in stack.carts}
            intruder.must_hear(f"the carts to refuse the replayed commands {want}", lambda hs: all(
                sum(r["outcome"] == "refused" for r in _results(hs, c, since)) >= n for c, n in want.items()),
                HEAR_S, stack.diagnostics)
            done = [(c, r) for c in stack.carts for r in _results(intruder.heard, c, since) if r["outcome"] == "done"]
            assert not done, f"a replayed command was run: {done}"

        # A new boot of the same carts (the gateway down, so no genuine ack for the new records).
        stack.stop("gateway")
        arm_fleet(stack, records=records + more, rate=0)
        t = time.monotonic()
        stack.start_fleet()
        intruder.must_hear("new births and the new records", lambda hs: all(
            _max_seq(hs, c) >= records + more and any(b["boot_id"] != old_boot[c] for b in _births(hs, c, t))
            for c in stack.carts), HEAR_S, stack.diagnostics)
        replay_all(time.monotonic())
        for cart in stack.carts:
            rows = ledger_rows(stack.fleet_dir / cart)
            assert _unsynced_seqs(rows) == list(range(records + 1, records + more + 1)), (
                f"{cart}: after replayed acks the unsynced seqs are {_unsynced_seqs(rows)[:10]}…, expected "
                f"{records + 1}..{records + more}\n{stack.diagnostics()}")
        _not_rejected(stack, stack.carts)

        # A fresh ledger with the same cart ids (a wiped data folder): the old acks match nothing.
        fresh = stack.root / "fleet-fresh"
        arm_fleet(stack, records=records, rate=0, data=fresh)
        t = time.monotonic()
        stack.start_fleet()
        intruder.must_hear("the fresh ledgers' records", lambda hs: _all_heard(hs, stack.carts, records, since=t),
                           HEAR_S, stack.diagnostics)
        replay_all(time.monotonic())
        for cart in stack.carts:
            rows = ledger_rows(fresh / cart)
            synced = [r["seq"] for r in rows if r["synced"]]
            assert len(rows) == records and not synced, (
                f"{cart}: a fresh ledger took the old ledger's acks: {len(synced)} of {len(rows)} marked synced "
                f"(seqs {synced[:10]}…)\n{stack.diagnostics()}")
        twice = _done_twice(intruder.heard, stack.carts)
        assert not twice, f"commands run twice (cart, boot_id, counter): {twice}"


# ------------------------------------------------------------------------------------------------
# 3. Forged commands


def _forged_commands(org: str, cart: str, boot_id: str, key: Ed25519PrivateKey) -> list[tuple[str, bytes]]:
    """The issue's unsigned resend and time, and both signed by the intruder for the cart's real boot."""
    resend, clock = wire.cmd_topic(org, cart, wire.CMD_RESEND), wire.cmd_topic(org, cart, wire.CMD_TIME)
    return [
        (resend, wire.canonical({"from_seq": FAR_SEQ})),
        (clock, wire.canonical({"utc_ms": FAR_UTC_MS})),
        (resend, forge(wire.CMD_KIND, org, cart, wire.command_body(wire.CMD_RESEND, boot_id, FORGED_COUNTER,
                                                                   {"from_seq": FAR_SEQ}), key)),
        (clock, forge(wire.CMD_KIND, org, cart, wire.command_body(wire.CMD_TIME, boot_id, FORGED_COUNTER + 1,
                                                                  {"utc_ms": FAR_UTC_MS}), key)),
    ]


@pytest.mark.slow
def test_forged_commands_are_refused_and_upload_goes_on(make_stack: Callable[..., Stack]) -> None:
    # 300 records at 60/s: about 5 s of upload.  The fake resend stopped it for > 55 s.
    bound_s = 30.0
    stack = make_stack(carts=2, records=150, rate=60)
    victim = stack.carts[0]
    stack.start_broker()
    stack.start_platform()
    stack.start_gateway()
    mine = Ed25519PrivateKey.generate()
    with Intruder(stack.broker.url) as intruder:
        intruder.subscribe(*(wire.topic(stack.org, victim, leaf) for leaf in (wire.RECORD, wire.STATUS,
                                                                              wire.CMD_RESULT)))
        t0 = time.monotonic()
        stack.start_fleet()
        injected = 0
        for at_seq in (20, 80):
            intruder.must_hear(f"{victim} seq {at_seq}", _reached(victim, at_seq), HEAR_S, stack.diagnostics)
            births = _births(intruder.heard, victim)
            assert births, f"no birth of {victim} heard"
            forged = _forged_commands(stack.org, victim, births[-1]["boot_id"], mine)
            intruder.publish_all(forged)
            injected += len(forged)
            stack.note(f"injected {len(forged)} forged commands at seq {at_seq}")
        stack.wait_fleet_done(max(1.0, bound_s - (time.monotonic() - t0)))
        took = time.monotonic() - t0
        # A command that does not open is answered with counter 0; a forged one that did would carry ours.
        intruder.must_hear(f"{injected} refusals", lambda hs: sum(
            r["outcome"] == "refused" and (r["counter"] == 0 or r["counter"] >= FORGED_COUNTER)
            for r in _results(hs, victim, t0)) >= injected, HEAR_S, stack.diagnostics)
        ran = [r for r in _results(intruder.heard, victim, t0)
               if r["outcome"] == "done" and r["counter"] in (FORGED_COUNTER, FORGED_COUNTER + 1)]
        assert not ran, f"the cart ran forged commands: {ran}"
    stack.wait_delivered()
    stack.assert_exactly_once()
    assert took < bound_s, f"the fleet took {took:.1f} s under forged commands (bound {bound_s} s)"


def _huge_signed(kind: str, org: str, cart: str, body_text: str) -> bytes:
    """A signed-form message whose body holds a 5,000-digit integer (what Python's json refuses with a
    plain ValueError, not a JSONDecodeError)."""
    return (f'{{"v":1,"kind":"{kind}","site":"{org}","cart":"{cart}","body":{body_text},"sig":"AAAA"}}').encode()


@pytest.mark.slow
def test_huge_integers_sent_to_a_cart_are_refused_like_any_bad_message(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(carts=1, records=60, rate=20)
    cart = stack.carts[0]
    stack.start()
    huge = "9" * 5000
    with Intruder(stack.broker.url) as intruder:
        intruder.subscribe(*(wire.topic(stack.org, cart, leaf) for leaf in (wire.RECORD, wire.CMD_RESULT)))
        intruder.must_hear(f"{cart} seq 5", _reached(cart, 5), HEAR_S, stack.diagnostics)
        ack = _huge_signed(wire.ACK_KIND, stack.org, cart,
                           f'{{"upto_seq":{huge},"upto_hash":"{wire.GENESIS_HASH}","ids":[]}}')
        cmd = _huge_signed(wire.CMD_KIND, stack.org, cart, f'{{"name":"resend","boot_id":"{wire.uuid7()}",'
                                                            f'"counter":{huge},"args":{{"from_seq":1}}}}')
        t = time.monotonic()
        intruder.publish_all([(wire.topic(stack.org, cart, wire.ACK), ack)] * 3
                             + [(wire.cmd_topic(stack.org, cart, wire.CMD_RESEND), cmd)] * 5)
        answered = intruder.wait_for("5 refusals", lambda hs: sum(
            r["outcome"] == "refused" for r in _results(hs, cart, t)) >= 5, 15)
        stack.wait_fleet_done(FINISH_S)
    crashes = tracebacks(stack.part("fleet"))
    assert not crashes, (f"the cart logged {len(crashes)} traceback(s) for 8 messages with a 5,000-digit "
                         f"integer (each aborts a drain pass); the first:\n{crashes[0]}")
    assert answered, "the cart did not answer the 5 commands with a 5,000-digit counter (refused)"
    stack.assert_exactly_once()


# ------------------------------------------------------------------------------------------------
# 4. Poison status and seq


def _huge_seq_record(org: str, cart: str, key: Ed25519PrivateKey) -> bytes:
    """A record whose seq has 5,000 digits: Python's json refuses it with a plain ValueError."""
    text = wire.encode(forged_record(org, cart, 1, key)).decode()
    assert text.count('"seq":1,') == 1
    return text.replace('"seq":1,', '"seq":' + "9" * 5000 + ",").encode()


def _poison(org: str, carts: list[str], start: int, n: int, key: Ed25519PrivateKey) -> list[tuple[str, bytes]]:
    """``n`` anonymous messages with numbers beyond every bound, on the real carts' topics and made-up ones."""
    items: list[tuple[str, bytes]] = []
    for i in range(start, start + n):
        cart = carts[i % len(carts)] if i % 4 else f"GHOST-{i:04d}"
        status, record = wire.topic(org, cart, wire.STATUS), wire.topic(org, cart, wire.RECORD)
        kind = i % 8
        if kind == 0:
            items.append((status, wire.canonical({"state": "online", "boot_id": wire.uuid7(), "seq_head": 2**70})))
        elif kind == 1:
            items.append((status, forge(wire.STATUS_KIND, org, cart, status_body("online", 2**70), key)))
        elif kind == 2:
            body = {"at": "2026-01-01T00:00:00+08:00", "backlog": 2**70, "oldest_unsent_s": 2**70,
                    "disk_free_mb": 2**70, "seq_head": 2**70}
            items.append((wire.topic(org, cart, wire.TELEMETRY), forge(wire.TELEMETRY_KIND, org, cart, body, key)))
        elif kind == 3:
            items.append((record, wire.encode(forged_record(org, cart, 2**63 + i, key))))
        elif kind == 4:
            items.append((record, wire.encode(forged_record(org, cart, 2**53 + i, key))))
        elif kind == 5:
            items.append((record, _huge_seq_record(org, cart, key)))
        elif kind == 6:
            body = {"name": "resend", "boot_id": wire.uuid7(), "counter": 2**70, "outcome": "done", "reason": ""}
            items.append((wire.topic(org, cart, wire.CMD_RESULT), forge(wire.CMD_RESULT_KIND, org, cart, body, key)))
        else:
            items.append((status, b'{"state":"online","boot_id":"x","seq_head":' + b"7" * 5000 + b"}"))
    return items


@pytest.mark.slow
def test_poison_status_and_seq_never_stop_ingest(make_stack: Callable[..., Stack]) -> None:
    records = 150
    stack = make_stack(carts=2, records=records, rate=75)
    victim = stack.carts[0]
    mine = Ed25519PrivateKey.generate()
    stack.start()
    with Intruder(stack.broker.url) as intruder:
        poll_until(f"{victim} seq 10 stored", lambda: True if stack.summary()["carts"].get(victim, {}).get(
            "upto_seq", 0) >= 10 else None, HEAR_S, on_timeout=stack.diagnostics)
        intruder.publish_all(_poison(stack.org, stack.carts, 0, 150, mine))
        stack.note("150 poison messages injected")
        stack.wait_fleet_done(FINISH_S)
        assert stack.part("gateway").running(), f"the gateway died of poison\n{stack.diagnostics()}"

        # A burst just before a crash (some unacknowledged: re-delivered), and more while it is down.
        intruder.publish_all(_poison(stack.org, stack.carts, 150, 150, mine))
        stack.kill9("gateway")
        intruder.publish_all(_poison(stack.org, stack.carts, 300, 150, mine))
        stack.restart("gateway")
        arm_fleet(stack, records=2 * records)
        stack.start_fleet()
        stack.wait_fleet_done(FINISH_S)
        wait_taken(stack, intruder)
    stack.wait_delivered()
    stack.assert_exactly_once(records_per_cart=2 * records)
    assert stack.part("gateway").running(), f"the gateway died of poison\n{stack.diagnostics()}"
    crashes = tracebacks(stack.part("gateway"))
    assert not crashes, f"the gateway logged {len(crashes)} traceback(s); the first:\n{crashes[0]}"
    summary = gateway_status(stack)  # the CLI reads what the gateway stored: no number out of range
    ghosts = sorted(c for c in summary["carts"] if c.startswith("GHOST-") and summary["carts"][c]["online"])
    assert not ghosts, f"made-up carts shown online: {ghosts[:5]}"


# ------------------------------------------------------------------------------------------------
# 5. Forged and replayed retained status


def _online(stack: Stack, cart: str, want: bool) -> Callable[[], bool | None]:
    return lambda: True if stack.summary()["carts"].get(cart, {}).get("online") is want else None


@pytest.mark.slow
def test_forged_retained_status_changes_no_presence(make_stack: Callable[..., Stack]) -> None:
    # A fleet that keeps committing (it never finishes): its carts stay online.
    stack = make_stack(carts=2, records=100_000, rate=10)
    victim, other = stack.carts
    ghost, ghost2 = "GHOST-001", "GHOST-002"
    mine = Ed25519PrivateKey.generate()
    stack.start_broker()
    with Intruder(stack.broker.url) as intruder:
        intruder.subscribe(f"{wire.TOPIC_ROOT}/+/+/{wire.STATUS}")
        stack.start_platform()
        stack.start_gateway()
        stack.start_fleet()
        poll_until(f"{victim} online", _online(stack, victim, True), HEAR_S, on_timeout=stack.diagnostics)
        # A genuine offline of an earlier boot, to replay later.
        stack.stop("fleet")
        intruder.must_hear(f"{victim}'s signed offline", lambda hs: any(
            h.body().get("state") == "offline" for h in _signed(hs, victim, wire.STATUS_KIND)), HEAR_S)
        old_offline = next(h for h in _signed(intruder.heard, victim, wire.STATUS_KIND)
                           if h.body()["state"] == "offline")
        poll_until(f"{victim} offline", _online(stack, victim, False), HEAR_S, on_timeout=stack.diagnostics)
        t = time.monotonic()
        stack.restart("fleet")
        intruder.must_hear(f"{victim}'s new birth", lambda hs: bool(_births(hs, victim, t)), HEAR_S)
        birth = next(h for h in _signed(intruder.heard, victim, wire.STATUS_KIND, t) if h.body()["state"] == "online")
        poll_until(f"{victim} online again", _online(stack, victim, True), HEAR_S, on_timeout=stack.diagnostics)

        status = wire.topic(stack.org, victim, wire.STATUS)
        forged = [
            (status, wire.canonical({"state": "offline", "boot_id": birth.body()["boot_id"], "seq_head": 0})),
            (status, forge(wire.STATUS_KIND, stack.org, victim, status_body("offline", 0, birth.body()["boot_id"]),
                           mine)),
            (wire.topic(stack.org, ghost, wire.STATUS), wire.canonical(status_body("online", 5))),
            (wire.topic(stack.org, ghost, wire.STATUS), forge(wire.STATUS_KIND, stack.org, ghost,
                                                              status_body("online", 5), mine)),
            (wire.topic(stack.org, ghost2, wire.STATUS), birth.payload),  # the victim's birth, elsewhere
            (wire.topic(stack.org, other, wire.STATUS), old_offline.payload),  # the victim's offline, elsewhere
            (status, old_offline.payload),  # genuine, of an earlier boot: the last retained word on the topic
        ]
        intruder.publish_all(forged, retain=True)
        stack.note("forged retained statuses published")
        for when in ("at once", "after a gateway restart (the retained forgeries delivered again)"):
            wait_taken(stack, intruder)
            carts = gateway_status(stack)["carts"]
            assert carts.get(victim, {}).get("online") is True, (
                f"{when}: the gateway shows {victim} {carts.get(victim)}, it is online\n{stack.diagnostics()}")
            assert carts.get(other, {}).get("online") is True, f"{when}: {other}: {carts.get(other)}"
            for made_up in (ghost, ghost2):
                assert carts.get(made_up, {}).get("online") is not True, (
                    f"{when}: the gateway shows made-up cart {made_up} online: {carts.get(made_up)}")
            if stack.part("gateway").runs == 1:
                stack.stop("gateway")
                stack.restart("gateway")


# ------------------------------------------------------------------------------------------------
# 6. Quarantine with limits


KEEP_BYTES = 4_096
BUDGET_BYTES = 512 * 1024
STORE_MARGIN = 1024 * 1024  # the records, outbox, alerts and SQLite's own pages beside the quarantine


@pytest.mark.slow
def test_a_flood_of_large_payloads_stays_within_the_quarantine_budget(make_stack: Callable[..., Stack]) -> None:
    rng = random.Random(11)
    stack = make_stack(carts=2, records=60)
    stack.start_broker()
    stack.start_platform()
    extra_gateway_config(stack, f"[quarantine]\nkeep_bytes = {KEEP_BYTES}\nbudget_bytes = {BUDGET_BYTES}")
    stack.start_gateway()
    victim = stack.carts[0]
    carts = [victim, "GHOST-001", "GHOST-002"]
    with Intruder(stack.broker.url) as intruder:
        t0 = time.monotonic()
        # 200 x 1 MB (200 MB if kept whole), then 3,000 x 5 kB (15 MB if each kept prefix stayed).
        for start in range(0, 200, 20):  # 20 MB at a time in this process
            intruder.publish_all([(wire.topic(stack.org, carts[i % 3], wire.RECORD), rng.randbytes(1_000_000))
                                  for i in range(start, start + 20)])
        small = [(wire.topic(stack.org, carts[i % 3], wire.RECORD),
                  b'{"seq": ' + str(i).encode() + b', "junk": "' + rng.randbytes(2_500).hex().encode() + b'"}')
                 for i in range(3_000)]
        intruder.publish_all(small)
        wait_taken(stack, intruder, timeout=90)
        stack.note(f"flood taken in {time.monotonic() - t0:.1f} s")
        stack.start_fleet()
        stack.wait_fleet_done(FINISH_S)
    stack.wait_delivered()
    stack.assert_exactly_once()
    counts = stack.summary()["counts"]
    stack.stop("gateway")  # a clean stop checkpoints the WAL into gateway.sqlite: its size is the high-water mark
    size = store_bytes(stack)
    assert size <= BUDGET_BYTES + STORE_MARGIN, (
        f"gateway.sqlite is {size / 2**20:.1f} MiB after the flood; the quarantine budget is "
        f"{BUDGET_BYTES / 2**20:.1f} MiB (+ {STORE_MARGIN / 2**20:.0f} MiB for the records); counts {counts}")
    assert counts.get("quarantine_bytes", 0) <= BUDGET_BYTES, f"quarantine holds more than its budget: {counts}"
    assert counts["received"] >= 3_200 and counts.get("quarantine_dropped", 0) > 0, (
        f"the flood was not taken whole, or never reached the budget: {counts}")


@pytest.mark.slow
def test_a_flood_of_malformed_payloads_collapses_its_alerts(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(carts=1, records=10)
    stack.start()
    stack.wait_fleet_done(60)  # a cart the gateway knows: its records verified and stored
    victim = stack.carts[0]
    with Intruder(stack.broker.url) as intruder:
        one_cart = [(wire.topic(stack.org, victim, wire.RECORD), f"not json {i}".encode()) for i in range(2_000)]
        intruder.publish_all(one_cart)
        wait_taken(stack, intruder)
        alerts = [a for a in stack.summary()["alerts"] if a["cart"] == victim]
        assert len(alerts) <= 2, f"{len(one_cart)} malformed payloads from one cart raised {len(alerts)} alerts"
        assert sum(a.get("count") or 1 for a in alerts) >= len(one_cart), (
            f"the alerts do not count the {len(one_cart)} payloads: {alerts}")

        # The same flood, each payload on the topic of another made-up cart: beyond a bound of open
        # rows, new carts share one row per kind, so the table cannot grow with made-up ids.
        many_carts = [(wire.topic(stack.org, f"GHOST-{i:04d}", wire.RECORD), f"not json {i}".encode())
                      for i in range(2_000)]
        intruder.publish_all(many_carts)
        wait_taken(stack, intruder)
        counts = stack.summary()["counts"]
        assert counts["alerts"] <= OPEN_ALERT_ROWS_MAX + len(wire.ALERT_KINDS), (
            f"{len(many_carts)} malformed payloads on made-up carts' topics left {counts['alerts']} alert rows: "
            f"the alerts table grows without bound, outside the quarantine budget ({counts})")


# ------------------------------------------------------------------------------------------------
# 7. Forged copies of genuine records


def _copies(stack: Stack, heard: list[Heard], cart: str, key: Ed25519PrivateKey) -> list[tuple[str, bytes]]:
    """For each genuine record heard: an ALTERED copy (body changed under its hash and signature) for
    even seqs, a FORGED one (the genuine content, the signature of another key) for odd seqs."""
    out = []
    topic = wire.topic(stack.org, cart, wire.RECORD)
    for env in sorted({r["seq"]: r for r in _records(heard, cart)}.values(), key=lambda r: int(r["seq"])):
        if env["seq"] % 2 == 0:
            body = {**env["body"], "department": "D13" if env["body"].get("department") != "D13" else "D14"}
            copy = {**env, "body": body}
        else:
            copy = {**env, "sig": forged_record(stack.org, cart, 1, key)["sig"]}
        out.append((topic, wire.encode(copy)))
    return out


@pytest.mark.slow
def test_forged_copies_first_cannot_get_genuine_records_rejected(make_stack: Callable[..., Stack]) -> None:
    records = 30
    stack = make_stack(carts=2, records=records)
    victim = stack.carts[0]
    stack.start_broker()
    stack.start_platform()
    arm_fleet(stack, extra=["--resend-after", "8"])
    with Intruder(stack.broker.url) as intruder:
        intruder.subscribe(wire.topic(stack.org, victim, wire.RECORD))
        stack.start_fleet()  # no gateway yet (no session): the first round reaches only the intruder
        intruder.must_hear(f"all of {victim}'s records", lambda hs: _max_seq(hs, victim) >= records, HEAR_S)
        copies = _copies(stack, intruder.heard, victim, Ed25519PrivateKey.generate())
        stack.start_gateway()
        wait_taken(stack, intruder, first_start=True)
        intruder.publish_all(copies)  # before the cart re-sends: the gateway sees the copies first
        stack.note(f"{len(copies)} altered / forged copies published")
        fleet = stack.part("fleet")
        code = fleet.wait_exit(FINISH_S)
        stack.note(f"fleet exited {code}")
    _not_rejected(stack, [victim])
    assert code == 0, f"fleet exited with {code}\n{stack.diagnostics()}"
    stack.wait_delivered()
    stack.assert_exactly_once()
