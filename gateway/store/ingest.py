"""The ingest transactions: one batch of checked messages -> ONE commit (CONVENTIONS 6).

Each ``Incoming`` is stored, recognised as a duplicate, or refused into quarantine with its alert;
each ``Rejected`` is quarantined with its alert; the cart's contiguous high-water mark moves and a
new gap is alerted once; device status and telemetry are noted — all in the same transaction, so
the acks ingest sends afterwards never name a record that a crash could lose.

Chain (per cart; a record's ``chain`` column):
    verified  its prev_hash is the stored hash of the cart's seq-1 (GENESIS_HASH for seq 1), and
              seq-1 is itself verified (or broken: a break is flagged on that one record only)
    pending   seq-1 is not stored (or not verified) yet; settled when it is
    broken    seq-1 landed later and its hash is not this record's prev_hash
The successor is always the one blamed: a record that contradicts a predecessor that is already
stored is not stored at all (quarantine, CHAIN_BREAK); a pending record contradicted by a
predecessor that arrives later stays stored but ``broken`` (CHAIN_BREAK).  A cart never produces
either, so both mean tampering or a replaced ledger: an operator decides.  Only ``verified``
records are forwarded, so a gap also holds back that cart's later records (per-cart order).

A stored record whose body flags something (a check-in counting overdue, deviating or missing bags
or REJECTED, an incident of lost bags, a transfer of bags kept too long in storage) raises its
domain alerts in the same commit (``gateway.alerts.record_flags``; resolved by an operator's
acknowledgement).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Literal

from edge import wire
from gateway.alerts.record_flags import record_flags
from gateway.store.connection import bump
from gateway.store.devices import SqliteDevices
from gateway.store.ledger_index import SqliteLedgerIndex
from gateway.store.model import Alert, BatchResult, DeviceUpdate, Gap, Incoming, Outcome, Rejected

FLAGGED_TYPES = ("storage_in", "incident", "transfer")  # the record types whose body may raise a domain alert


class SqliteIngest(SqliteDevices, SqliteLedgerIndex):
    """``IngestRepository`` on SQLite: ``store_batch``, ``upto_seq``, ``open_gaps``, ``release``."""

    def store_batch(self, items: Sequence[Incoming | Rejected], now: float,
                    devices: Sequence[DeviceUpdate] = ()) -> BatchResult:
        """Store, de-duplicate or quarantine every item, raise alerts, note device state: ONE commit.
        ``heads`` names, for every cart with a stored or duplicate record, what its ack says."""
        result = BatchResult([])
        with self._tx("storing a batch") as db:
            self._batch(db, items, now, result)
            for update in devices:
                result.devices.append(self._device(db, update, now, result))
        return result

    def _batch(self, db: sqlite3.Connection, items: Sequence[Incoming | Rejected], now: float,
               result: BatchResult) -> None:
        touched: dict[str, str] = {}
        acked: set[str] = set()
        for item in items:
            if isinstance(item, Rejected):
                reject = self._reject(db, now, item, result)
                result.outcomes.append(Outcome("rejected", cart=item.cart, reason=item.reason, kind=item.kind,
                                               reject=reject))
                continue
            outcome = self._insert(db, item, now, result)
            if outcome.status == "rejected":
                self._reject(db, now, Rejected(item.topic, item.payload, outcome.reason or "",
                                               outcome.kind or "MALFORMED", item.site, item.cart, item.id),
                             result)
            elif outcome.status == "duplicate":
                bump(db, "duplicates")
                acked.add(item.cart)
            else:
                touched[item.cart] = item.site
                acked.add(item.cart)
            result.outcomes.append(outcome)
        bump(db, "received", len(items))
        for cart, site in touched.items():
            self._seen(db, cart, site, now)
            gap = self._advance(db, cart, site, now, result)
            if gap is not None:
                result.gaps.append(gap)
        for cart in acked:
            result.heads[cart] = self._head(db, cart)

    @staticmethod
    def _head(db: sqlite3.Connection, cart: str) -> tuple[int, str]:
        """(upto_seq, the stored hash of the cart's record at upto_seq; GENESIS_HASH for 0)."""
        row = db.execute("SELECT c.upto_seq, r.hash FROM carts c LEFT JOIN records r"
                         " ON r.cart = c.cart AND r.seq = c.upto_seq WHERE c.cart = ?", (cart,)).fetchone()
        if row is None or not row[0]:
            return 0, wire.GENESIS_HASH
        return int(row[0]), str(row[1])

    def head(self, cart: str) -> tuple[int, str]:
        """What an ack to ``cart`` says now: (upto_seq, hash of its record at upto_seq)."""
        with self._read("reading a cart's head") as db:
            return self._head(db, cart)

    def release(self, quarantine_id: int, rec: Incoming, now: float) -> Outcome:
        """Store a quarantined record that passes its checks now (an operator's release): stored (or
        a duplicate: then it was stored meanwhile), and the row marked released; a store refusal
        (REPLAYED, CHAIN_BREAK) leaves the row as it was and says why."""
        result = BatchResult([])
        with self._tx("releasing a quarantined record") as db:
            outcome = self._insert(db, rec, now, result)
            if outcome.status == "rejected":
                return outcome
            if outcome.status == "stored":
                self._seen(db, rec.cart, rec.site, now)
                self._advance(db, rec.cart, rec.site, now, result)
            self._mark_released(db, quarantine_id, f"released: {outcome.status}", now)
        return outcome

    def _insert(self, db: sqlite3.Connection, rec: Incoming, now: float, result: BatchResult) -> Outcome:
        row = db.execute("SELECT cart, seq, hash FROM records WHERE id = ?", (rec.id,)).fetchone()
        if row is not None:
            if row[2] == rec.hash:
                return Outcome("duplicate", rec.id, rec.cart)
            return Outcome("rejected", cart=rec.cart, kind="REPLAYED", reason=(
                f"id {rec.id} already stored with different content (cart {row[0]} seq {row[1]})"))
        row = db.execute("SELECT id, hash FROM records WHERE cart = ? AND seq = ?",
                         (rec.cart, rec.seq)).fetchone()
        if row is not None:
            if row[1] == rec.hash:
                return Outcome("duplicate", row[0], rec.cart)
            return Outcome("rejected", cart=rec.cart, kind="REPLAYED", reason=(
                f"seq {rec.seq} of cart {rec.cart} already taken by record {row[0]}"))
        chain = self._link(db, rec)
        if chain == "broken":
            return Outcome("rejected", cart=rec.cart, kind="CHAIN_BREAK", reason=(
                f"chain: prev_hash of seq {rec.seq} is not the hash of the stored seq {rec.seq - 1}"
                if rec.seq > 1 else "chain: seq 1 does not start from the genesis hash"))
        db.execute(
            "INSERT INTO records (id, site, cart, seq, type, created_at, hash, prev_hash, envelope,"
            " received_at, chain, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rec.id, rec.site, rec.cart, rec.seq, rec.type, rec.created_at, rec.hash, rec.prev_hash,
             rec.envelope, now, chain, now))
        self._index(db, rec)
        if rec.key:
            db.execute("INSERT INTO cart_keys (cart, public_key, first_used, last_used) VALUES (?, ?, ?, ?)"
                       " ON CONFLICT (cart, public_key) DO UPDATE SET last_used = excluded.last_used",
                       (rec.cart, rec.key, now, now))
        if chain == "verified":
            self._settle_successors(db, rec, now, result)
        if rec.type in FLAGGED_TYPES:
            self._record_flags(db, rec, now, result)
        return Outcome("stored", rec.id, rec.cart)

    def _record_flags(self, db: sqlite3.Connection, rec: Incoming, now: float, result: BatchResult) -> None:
        """The domain alerts a stored record carries (``gateway.alerts.record_flags``); one per kind,
        collapsed per cart."""
        for kind, detail in record_flags(rec.type, rec.seq, json.loads(rec.envelope).get("body")):
            self._alert(db, now, Alert(kind, rec.cart, rec.site, rec.id, detail), result)

    @staticmethod
    def _link(db: sqlite3.Connection, rec: Incoming) -> Literal["verified", "pending", "broken"]:
        """The chain state of ``rec`` against its stored predecessor.  Verified means linked back to
        seq 1: a record linked to a predecessor that is itself still pending waits too.  One linked
        to a *broken* predecessor is verified: the break is flagged on that record alone."""
        if rec.seq == 1:
            return "verified" if rec.prev_hash == wire.GENESIS_HASH else "broken"
        row = db.execute("SELECT hash, chain FROM records WHERE cart = ? AND seq = ?",
                         (rec.cart, rec.seq - 1)).fetchone()
        if row is None:
            return "pending"
        if row[0] != rec.prev_hash:
            return "broken"
        return "pending" if row[1] == "pending" else "verified"

    def _settle_successors(self, db: sqlite3.Connection, rec: Incoming, now: float, result: BatchResult) -> None:
        """Records seq+1, seq+2, … that were pending on ``rec`` (now verified) are settled in turn:
        verified, or broken (alerted) when one's prev_hash is not its predecessor's hash."""
        seq, hash_ = rec.seq, rec.hash
        while True:
            row = db.execute("SELECT id, prev_hash, hash FROM records WHERE cart = ? AND seq = ? AND chain = 'pending'",
                             (rec.cart, seq + 1)).fetchone()
            if row is None:
                return
            ok = row[1] == hash_
            # due from now, like its predecessor: the outbox sends them in seq order (ties break by seq)
            db.execute("UPDATE records SET chain = ?, next_attempt_at = ? WHERE id = ?",
                       ("verified" if ok else "broken", now, row[0]))
            if not ok:
                self._alert(db, now, Alert("CHAIN_BREAK", rec.cart, rec.site, row[0],
                                           f"stored seq {seq + 1} (record {row[0]}) does not chain to seq "
                                           f"{seq} that arrived later; held, not forwarded"), result)
            seq, hash_ = seq + 1, row[2]

    def _advance(self, db: sqlite3.Connection, cart: str, site: str, now: float,
                 result: BatchResult) -> Gap | None:
        """Move the cart's contiguous high-water mark; return the open gap, alerting a new one once."""
        row = db.execute("SELECT upto_seq, gap_from FROM carts WHERE cart = ?", (cart,)).fetchone()
        upto, gap_from = (int(row[0]), row[1]) if row else (0, None)
        while db.execute("SELECT 1 FROM records WHERE cart = ? AND seq = ?", (cart, upto + 1)).fetchone():
            upto += 1
        max_seq = int(db.execute("SELECT MAX(seq) FROM records WHERE cart = ?", (cart,)).fetchone()[0] or 0)
        gap = Gap(site, cart, upto, max_seq) if max_seq > upto else None
        if gap is None:
            gap_from = None
        elif gap_from is None:
            gap_from = gap.from_seq
            self._alert(db, now, Alert("SEQ_GAP", cart, site, f"seq {gap.from_seq}",
                                       f"seqs after {upto} missing (highest stored {max_seq}); resend asked"),
                        result)
        db.execute("INSERT INTO carts (cart, site, upto_seq, max_seq, gap_from) VALUES (?, ?, ?, ?, ?)"
                   " ON CONFLICT (cart) DO UPDATE SET upto_seq = excluded.upto_seq, site = excluded.site,"
                   " max_seq = excluded.max_seq, gap_from = excluded.gap_from", (cart, site, upto, max_seq, gap_from))
        return gap

    def upto_seq(self, cart: str) -> int:
        with self._read("reading upto_seq") as db:
            row = db.execute("SELECT upto_seq FROM carts WHERE cart = ?", (cart,)).fetchone()
        return int(row[0]) if row else 0

    def open_gaps(self) -> list[Gap]:
        """Every cart with a gap still open (for the periodic resend of a quiet cart)."""
        with self._read("reading gaps") as db:
            rows = db.execute("SELECT site, cart, upto_seq, max_seq FROM carts WHERE max_seq > upto_seq").fetchall()
        return [Gap(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]
