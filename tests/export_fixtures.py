"""A gateway store holding a few days of a ledger, stored the way ingest stores it.

Carts sign real envelopes (``wire.seal``) of every type whose bags the 台账 follows: handovers from
two departments, the storage-in that re-weighs them (one bag missing), the transfer under a
manifest, and a void of one handed-over bag.  Each payload passes ``checks.checked`` (schema and
seal) and is stored by ``SqliteStore.store_batch``, so the ledger index is the one ingest writes.
``Ledger.bags`` is what the tests compare an export with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from gateway.ingest.checks import KeyRing, checked
from gateway.store import DB_NAME, Incoming, SqliteStore

SITE = "H1"
ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 2, 8, 30, tzinfo=ZONE)  # the first round's first handover
DEPARTMENTS = ("ICU", "ER")
CATEGORIES = ("INFECTIOUS", "SHARPS", "PATHOLOGICAL")
WASTE_CODES = {"INFECTIOUS": "841-001-01", "SHARPS": "841-002-01", "PATHOLOGICAL": "841-003-01"}
ROOM = "ROOM1"


@dataclass
class Bag:
    code: str
    cart: str
    department: str
    category: str
    weight_g: int
    record_id: str
    at: datetime
    reweigh_g: int | None = None
    manifest: str | None = None
    voided: bool = False


@dataclass
class SigningCart:
    cart: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    seq: int = 0
    prev_hash: str = wire.GENESIS_HASH

    @property
    def public_key(self) -> str:
        return wire.public_key_text(self.key.public_key())

    def sign(self, rtype: str, body: dict[str, Any], at: datetime) -> dict[str, Any]:
        self.seq += 1
        env = wire.seal(wire.unsigned_envelope(
            record_id=wire.uuid7(int(at.timestamp() * 1000)), cart=self.cart, seq=self.seq,
            created_at=at.isoformat(timespec="milliseconds"), clock=wire.Clock("ntp", self.seq * 1000), rtype=rtype,
            body=body, prev_hash=self.prev_hash), self.key)
        self.prev_hash = env["hash"]
        return env


@dataclass
class Ledger:
    """What was stored: the carts (with their keys), every record in order, every bag handed over."""

    carts: list[SigningCart]
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    bags: list[Bag] = field(default_factory=list)

    def keys(self) -> KeyRing:
        return KeyRing({c.cart: c.public_key for c in self.carts}, None)

    def write_keys(self, folder: Path) -> Path:
        """``folder/<CART>.pub`` for every cart (a gateway's cart_keys_dir, an inspector's --keys)."""
        folder.mkdir(parents=True, exist_ok=True)
        for cart in self.carts:
            (folder / f"{cart.cart}.pub").write_text(cart.public_key + "\n", "ascii")
        return folder

    def counted(self) -> list[Bag]:
        """The bags a summary counts: handed over, not voided."""
        return [b for b in self.bags if not b.voided]


def make(carts: int = 2, days: int = 3, rounds_per_day: int = 2, lines: int = 3) -> Ledger:
    """Sign the ledger's records (not stored yet): ``store`` writes them, or a test publishes them."""
    ledger = Ledger([SigningCart(f"CART-{chr(65 + i)}") for i in range(carts)])
    for cart_no, cart in enumerate(ledger.carts):
        for day in range(days):
            for rnd in range(rounds_per_day):
                at = START + timedelta(days=day, hours=4 * rnd, minutes=7 * cart_no)
                _round(ledger, cart, at, f"{cart_no}{day}{rnd}", lines)
    # a bag voided after its round (its handover stays in the 台账, marked 作废; summaries drop it)
    victim = ledger.bags[1]
    victim.voided = True
    victim_cart = next(c for c in ledger.carts if c.cart == victim.cart)
    ledger.envelopes.append(victim_cart.sign("void", {
        "org": SITE, "voided_at": _iso(START + timedelta(days=days)), "voided_record_id": victim.record_id,
        "voided_type": "handover", "package_code": victim.code, "reason": "scanned twice",
        "by": {"person_id": "C0001", "device_id": victim.cart}}, START + timedelta(days=days)))
    return ledger


def store(ledger: Ledger, data: Path) -> None:
    """Store every record in ``data/gateway.sqlite`` as ingest does: checked, then ``store_batch``."""
    db = SqliteStore(data / DB_NAME)
    try:
        keys = ledger.keys()
        items = []
        for env in ledger.envelopes:
            item = checked(wire.topic(SITE, env["cart"], wire.RECORD), wire.encode(env), keys)
            assert isinstance(item, Incoming), item
            items.append(item)
        for i in range(0, len(items), 200):
            db.store_batch(items[i:i + 200], now=START.timestamp() + 86400 * 30)
    finally:
        db.close()


def fill(data: Path, carts: int = 2, days: int = 3, rounds_per_day: int = 2, lines: int = 3) -> Ledger:
    """Create ``data/gateway.sqlite`` holding the ledger; returns what was stored."""
    ledger = make(carts, days, rounds_per_day, lines)
    store(ledger, data)
    return ledger


def _round(ledger: Ledger, cart: SigningCart, at: datetime, tag: str, lines: int) -> None:
    carried: list[Bag] = []
    for d, department in enumerate(DEPARTMENTS):
        when = at + timedelta(minutes=10 * d)
        body_lines, bags = [], []
        for i in range(lines):
            category = CATEGORIES[(i + d) % len(CATEGORIES)]
            weight = 800 + 137 * i + 311 * d + int(tag) % 97
            code = f"B{cart.cart[-1]}{tag}{d}{i}"
            weighing = {"gross_g": weight + 50, "tare_g": 50, "net_g": weight, "stable": True, "protocol": "sim",
                        "raw": "ST,GS"}
            body_lines.append({"package_code": code, "category": category, "waste_code": WASTE_CODES[category],
                               "weight_g": weight, "weighing": weighing})
            bags.append(Bag(code, cart.cart, department, category, weight, "", when))
        env = cart.sign("handover", {
            "org": SITE, "round_id": wire.uuid7(), "handover_at": _iso(when), "department": department,
            "from_party": {"person_id": f"N{d:04d}", "auth_method": "card"},
            "to_party": {"person_id": "C0001", "device_id": cart.cart}, "lines": body_lines,
            "totals": _totals(bags)}, when)
        for bag in bags:
            bag.record_id = env["id"]
        ledger.envelopes.append(env)
        ledger.bags += bags
        carried += bags
    stored_at = at + timedelta(hours=1)
    packages = []
    for i, bag in enumerate(carried):
        missing = i == len(carried) - 1  # the last bag of each round did not arrive
        bag.reweigh_g = None if missing else bag.weight_g + 5
        packages.append({"package_code": bag.code, "category": bag.category, "waste_code": WASTE_CODES[bag.category],
                         "department": bag.department, "handover_record_id": bag.record_id,
                         "handed_over_at": _iso(bag.at), "expected_g": bag.weight_g, "reweigh_g": bag.reweigh_g,
                         "delta_g": None if missing else 5, "status": "MISSING" if missing else "OK",
                         "overdue": False})
    present = [b for b in carried if b.reweigh_g is not None]
    ledger.envelopes.append(cart.sign("storage_in", {
        "org": SITE, "facility": ROOM, "direction": "IN", "moved_at": _iso(stored_at),
        "operator": {"person_id": "C0001", "device_id": cart.cart}, "packages": packages,
        "tolerance": {"min_g": 50, "pct": 5}, "overdue_after_s": 172800,
        "summary": {"expected_count": len(carried), "present_count": len(present), "missing_count": 1,
                    "deviation_count": 0, "overdue_count": 0, "expected_g": sum(b.weight_g for b in present),
                    "reweigh_g": sum(b.reweigh_g or 0 for b in present), "delta_g": 5 * len(present),
                    "delta_permille": 0, "missing_g": carried[-1].weight_g},
        "result": "ACCEPTED_WITH_NOTE"}, stored_at))
    moved_at = at + timedelta(hours=2)
    manifest = f"M{cart.cart[-1]}{tag}"
    for bag in present:
        bag.manifest = manifest
    ledger.envelopes.append(cart.sign("transfer", {
        "org": SITE, "handed_over_at": _iso(moved_at), "from_party": {"person_id": "C0001", "device_id": cart.cart},
        "carrier": {"vehicle": "TRUCK7"}, "manifest": {"type": "local", "number": manifest},
        "lines": [{"package_code": b.code, "category": b.category, "waste_code": WASTE_CODES[b.category],
                   "weight_g": b.weight_g, "facility": ROOM} for b in present],
        "totals": _totals(present), "disposal_method": None, "final_destination": None}, moved_at))


def _totals(bags: list[Bag]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for bag in bags:
        row = out.setdefault(bag.category, {"category": bag.category, "count": 0, "weight_g": 0})
        row["count"] += 1
        row["weight_g"] += bag.weight_g
    return list(out.values())


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds")
