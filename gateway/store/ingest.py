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
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Literal

from edge import wire
from gateway.store.connection import SqliteConnection, bump
from gateway.store.model import Alert, BatchResult, DeviceUpdate, Gap, Incoming, Outcome, Rejected


class SqliteIngest(SqliteConnection):
    """``IngestRepository`` on SQLite: ``store_batch``, ``upto_seq``, ``open_gaps``."""

    def store_batch(self, items: Sequence[Incoming | Rejected], now: float,
                    devices: Sequence[DeviceUpdate] = ()) -> BatchResult:
        """Store, de-duplicate or quarantine every item, raise alerts, note device state: ONE commit."""
        result = BatchResult([])
        touched: dict[str, str] = {}
        with self._tx("storing a batch") as db:
            for item in items:
                if isinstance(item, Rejected):
                    self._reject(db, now, item, result)
                    result.outcomes.append(Outcome("rejected", cart=item.cart, reason=item.reason, kind=item.kind))
                    continue
                outcome = self._insert(db, item, now, result)
                if outcome.status == "rejected":
                    self._reject(db, now, Rejected(item.topic, item.payload, outcome.reason or "",
                                                   outcome.kind or "MALFORMED", item.site, item.cart, item.id),
                                 result)
                elif outcome.status == "duplicate":
                    bump(db, "duplicates")
                else:
                    touched[item.cart] = item.site
                result.outcomes.append(outcome)
            bump(db, "received", len(items))
            for cart, site in touched.items():
                self._seen(db, cart, site, now)
                gap = self._advance(db, cart, site, now, result)
                if gap is not None:
                    result.gaps.append(gap)
            for update in devices:
                self._device(db, update, now)
        return result

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
        if chain == "verified":
            self._settle_successors(db, rec, now, result)
        return Outcome("stored", rec.id, rec.cart)

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

    def _reject(self, db: sqlite3.Connection, now: float, item: Rejected, result: BatchResult) -> None:
        """Quarantine the payload and raise its alert in the same transaction."""
        subject = item.subject or item.topic
        db.execute("INSERT INTO quarantine (received_at, topic, payload, reason, kind, cart, subject)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (now, item.topic, item.payload, item.reason, item.kind, item.cart, subject))
        self._alert(db, now, Alert(item.kind, item.cart, item.site, subject, item.reason), result)

    @staticmethod
    def _alert(db: sqlite3.Connection, now: float, alert: Alert, result: BatchResult) -> None:
        """Insert ``alert`` unless the same (kind, cart, subject) is still open (not acknowledged)."""
        if db.execute("SELECT 1 FROM alerts WHERE kind = ? AND cart IS ? AND subject = ? AND acknowledged_at IS NULL",
                      (alert.kind, alert.cart, alert.subject)).fetchone():
            return
        db.execute("INSERT INTO alerts (raised_at, kind, cart, site, subject, detail) VALUES (?, ?, ?, ?, ?, ?)",
                   (now, alert.kind, alert.cart, alert.site, alert.subject, alert.detail))
        result.alerts.append(alert)

    @staticmethod
    def _seen(db: sqlite3.Connection, cart: str, site: str, now: float) -> None:
        db.execute("INSERT INTO devices (cart, site, last_seen) VALUES (?, ?, ?)"
                   " ON CONFLICT (cart) DO UPDATE SET site = excluded.site, last_seen = excluded.last_seen",
                   (cart, site, now))

    def _device(self, db: sqlite3.Connection, update: DeviceUpdate, now: float) -> None:
        self._seen(db, update.cart, update.site, now)
        text = json.dumps(update.data, ensure_ascii=False)
        if update.leaf == "telemetry":
            db.execute("UPDATE devices SET telemetry = ?, telemetry_at = ? WHERE cart = ?", (text, now, update.cart))
            return
        state = update.data.get("state")
        online = 1 if state == "online" else 0 if state == "offline" else None
        boot_id, head = update.data.get("boot_id"), update.data.get("seq_head")
        db.execute("UPDATE devices SET online = ?, boot_id = ?, seq_head = ?, status = ?, status_at = ?"
                   " WHERE cart = ?", (online, boot_id if isinstance(boot_id, str) else None,
                                       head if isinstance(head, int) and not isinstance(head, bool) else None,
                                       text, now, update.cart))

    def quarantine(self, topic: str, payload: bytes, reason: str, now: float, kind: str = "MALFORMED") -> None:
        """Keep one refused payload with the reason and its alert (counts as received)."""
        with self._tx("quarantining a payload") as db:
            self._reject(db, now, Rejected(topic, payload, reason, kind), BatchResult([]))
            bump(db, "received")

    def upto_seq(self, cart: str) -> int:
        with self._read("reading upto_seq") as db:
            row = db.execute("SELECT upto_seq FROM carts WHERE cart = ?", (cart,)).fetchone()
        return int(row[0]) if row else 0

    def open_gaps(self) -> list[Gap]:
        """Every cart with a gap still open (for the periodic resend of a quiet cart)."""
        with self._read("reading gaps") as db:
            rows = db.execute("SELECT site, cart, upto_seq, max_seq FROM carts WHERE max_seq > upto_seq").fetchall()
        return [Gap(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]
