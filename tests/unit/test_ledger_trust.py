"""What the cart believes of a verified gateway message (edge.ledger.trust): acks bound to this
ledger and to what it published, commands bound to this boot and above the last counter."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge import wire
from edge.ledger.settings import UplinkSettings
from edge.ledger.trust import Bucket, Throttle, claimed_kind, decide_ack, decide_command, refused_counts

BOOT = "01890000-0000-7000-8000-000000000001"
OTHER_BOOT = "01890000-0000-7000-8000-000000000002"


def h(seq: int, ledger: str = "this") -> str:
    """The hash of record ``seq`` of a made-up ledger."""
    return wire.GENESIS_HASH if seq == 0 else hashlib.sha256(f"{ledger}:{seq}".encode()).hexdigest()


def rid(seq: int, ledger: str = "this") -> str:
    d = hashlib.sha256(f"id:{ledger}:{seq}".encode()).hexdigest()
    return f"{d[:8]}-{d[8:12]}-7{d[13:16]}-8{d[17:20]}-{d[20:32]}"


def ack(upto: int, ids: list[str] | None = None, ledger: str = "this") -> dict[str, object]:
    return wire.ack_body(upto, h(upto, ledger), ids or [])


# acks ---------------------------------------------------------------------------------------------

def test_a_genuine_ack_of_published_records_applies() -> None:
    d = decide_ack(ack(5, [rid(7)]), own_hash=h(5), high_water=8, id_seqs={rid(7): 7})
    assert (d.upto, d.ids, d.refused) == (5, (rid(7),), "")


def test_an_ack_beyond_what_was_published_is_refused() -> None:
    """Beyond the head (no record there), or naming a hash that is not this ledger's record."""
    for own in (None, h(9, "other")):
        d = decide_ack(ack(9), own_hash=own, high_water=8, id_seqs={})
        assert d.refused.startswith("upto_seq 9 is beyond the highest seq this cart published (8)")
        assert (d.upto, d.ids, d.early) == (0, (), False)


def test_an_ack_of_a_previous_run_is_early_not_refused() -> None:
    """Queued at the broker across a restart: this ledger's own hash, above what this run published.
    Nothing is applied (the records go out again and are acknowledged again); nothing is refused."""
    d = decide_ack(ack(9), own_hash=h(9), high_water=8, id_seqs={})
    assert (d.upto, d.ids, d.refused, d.early) == (0, (), "", True)


def test_an_ack_for_another_ledger_is_refused() -> None:
    """A genuine ack replayed after the data folder was wiped: same cart id, other records."""
    d = decide_ack(ack(3, ledger="old"), own_hash=h(3), high_water=5, id_seqs={})
    assert "another ledger" in d.refused and d.upto == 0


def test_ids_of_another_ledger_refuse_the_whole_ack() -> None:
    d = decide_ack(ack(2, [rid(4, "old")]), own_hash=h(2), high_water=5, id_seqs={})
    assert d.refused == "1 of its 1 ids are not records of this ledger"


def test_ids_not_yet_published_by_this_process_are_left_for_later() -> None:
    """An ack of a previous run, still queued at the broker: those records go out again."""
    d = decide_ack(ack(2, [rid(4), rid(9)]), own_hash=h(2), high_water=5, id_seqs={rid(4): 4, rid(9): 9})
    assert (d.upto, d.ids, d.refused) == (2, (rid(4),), "")


def test_upto_zero_needs_the_genesis_hash() -> None:
    assert decide_ack(ack(0, [rid(1)]), own_hash=wire.GENESIS_HASH, high_water=1,
                      id_seqs={rid(1): 1}).ids == (rid(1),)
    bad = wire.ack_body(0, h(1), [])
    assert decide_ack(bad, own_hash=wire.GENESIS_HASH, high_water=1, id_seqs={}).refused


def test_a_purged_upto_record_applies_only_the_ids() -> None:
    d = decide_ack(ack(2, [rid(6)]), own_hash=None, high_water=6, id_seqs={rid(6): 6})
    assert (d.upto, d.ids, d.refused) == (0, (rid(6),), "")


@given(upto=st.integers(0, wire.MAX_SEQ), high=st.integers(0, 10_000), same_ledger=st.booleans(),
       ids=st.lists(st.integers(1, 20_000), max_size=20))
def test_an_applied_ack_never_goes_beyond_the_published_nor_another_ledger(
        upto: int, high: int, same_ledger: bool, ids: list[int]) -> None:
    body = ack(upto, [rid(s) for s in ids], "this" if same_ledger else "old")
    seq_of = {rid(s): s for s in ids}
    head = high + 50  # records committed and not yet published by this run have a hash too
    d = decide_ack(body, own_hash=h(upto) if upto <= head else None, high_water=high, id_seqs=seq_of)
    assert d.upto <= high and all(seq_of[i] <= high for i in d.ids)
    if not same_ledger and upto > 0:
        assert d.upto == 0 and d.ids == () and not d.early
    if d.refused or d.early:
        assert (d.upto, d.ids) == (0, ()) and not (d.refused and d.early)


# commands ------------------------------------------------------------------------------------------

def cmd(name: str = "resend", boot: str = BOOT, counter: int = 3, **args: int) -> dict[str, object]:
    return wire.command_body(name, boot, counter, args or {"from_seq": 2})


def test_a_command_for_this_boot_above_the_counter_runs() -> None:
    d = decide_command("resend", cmd(), boot_id=BOOT, last_counter=2, head=10)
    assert d.run and d.counts


@pytest.mark.parametrize(("name", "body", "last", "reason"), [
    ("resend", cmd(counter=2), 2, "counter 2 is not above 2, the last run (a replay)"),
    ("resend", cmd(boot=OTHER_BOOT), 0, "for another boot of this cart"),
    ("time", cmd(), 0, "signed as 'resend', arrived on cmd/time"),
    ("resend", cmd(from_seq=12), 0, "from_seq 12 is beyond the head 10 + 1"),
    ("resend", cmd(from_seq=1_000_000_000), 0, "from_seq 1000000000 is beyond the head 10 + 1"),
    ("resend", cmd(utc_ms=1_800_000_000_000), 0, "resend takes exactly from_seq"),
    ("time", cmd("time", from_seq=3), 0, "time takes exactly utc_ms"),
])
def test_commands_that_do_not_run(name: str, body: dict[str, object], last: int, reason: str) -> None:
    d = decide_command(name, body, boot_id=BOOT, last_counter=last, head=10)
    assert not d.run and d.reason.startswith(reason)


def test_a_resend_from_head_plus_one_is_in_range() -> None:
    assert decide_command("resend", cmd(from_seq=11), boot_id=BOOT, last_counter=0, head=10).run


@given(counters=st.lists(st.integers(1, 50), min_size=1, max_size=30))
def test_no_counter_runs_twice_in_a_boot(counters: list[int]) -> None:
    last, ran = 0, []
    for c in counters:
        d = decide_command("time", cmd("time", counter=c, utc_ms=1_800_000_000_000), boot_id=BOOT,
                           last_counter=last, head=0)
        if d.counts:
            last = c
        if d.run:
            ran.append(c)
    assert ran == sorted(set(ran)) and len(ran) == len(set(ran))


# the rest --------------------------------------------------------------------------------------------

def test_throttle_lets_one_line_a_period_through_and_counts_the_rest() -> None:
    t = Throttle(10.0)
    assert t.allow("ack", 0.0) == 0
    assert [t.allow("ack", s) for s in (1.0, 2.0, 9.9)] == [None, None, None]
    assert t.allow("cmd", 3.0) == 0  # per kind
    assert t.allow("ack", 10.0) == 3
    assert t.allow("ack", 20.5) == 0


def test_bucket_allows_a_burst_then_its_rate() -> None:
    b = Bucket(rate=1.0, burst=3)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.take(0.5) is False and b.take(1.0) is True and b.take(1.0) is False


def test_refused_counts_and_claimed_kind() -> None:
    assert refused_counts({"ack": 2, "cmd": 1}, {"ack": 1, "reject": 4}) == {"ack": 3, "reject": 4, "cmd": 1}
    assert claimed_kind({"kind": "reject"}, "ack", ("ack", "reject")) == "reject"
    assert claimed_kind({"kind": "status"}, "ack", ("ack", "reject")) == "ack"
    assert claimed_kind(None, "cmd", ("cmd",)) == "cmd"


# the setting --------------------------------------------------------------------------------------

def test_gateway_keys_are_checked_when_the_settings_are_made() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from pydantic import ValidationError

    good = wire.public_key_text(Ed25519PrivateKey.generate().public_key())
    assert len(UplinkSettings(gateway_keys=(good,)).public_keys()) == 1
    with pytest.raises(ValidationError, match=r"\[1\]: public key 'bm90IGEga2V5'…: not a base64 Ed25519 key"):
        UplinkSettings(gateway_keys=(good, "bm90IGEga2V5"))
    with pytest.raises(ValidationError, match="the same key is listed twice"):
        UplinkSettings(gateway_keys=(good, good))
