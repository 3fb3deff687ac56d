"""Signed records of every ledger type, as a cart writes them, for the ledger's tests.

``SigningCart`` seals handovers, check-ins, transfers and voids with the body shapes of
``edge.workflow.records`` (checked by the record schema when stored), chained like the real cart.
``store_checked`` passes them through the gateway's own checks (``check_message``) into
``SqliteStore.store_batch``, so the ledger index is written exactly as ingest writes it.
``LedgerRig``: a running gateway + console whose carts published ``scenario`` over MQTT.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from edge.catalogue import CATEGORY
from gateway.ingest.checks import KeyRing, check_message
from gateway.store import GatewayRepository, Incoming
from sim_devices.platform import SimPlatform
from tests.browser.console_fixtures import ConsoleRig
from tests.integration.test_gateway import unique
from wastecart.broker import PrivateBroker

SITE = "H001"
CST = timezone(timedelta(hours=8))
WEIGHING = {"gross_g": 1300, "tare_g": 50, "net_g": 1250, "stable": True, "protocol": "sim", "raw": "ST,GS"}


def at(day: str, hour: int = 9, minute: int = 0) -> datetime:
    """A time on ``day`` (YYYY-MM-DD) in China Standard Time."""
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=CST)


def iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds")


def totals(bags: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """A body's totals by category (``edge.workflow.records.totals``' shape) of (code, category, grams)."""
    out: dict[str, dict[str, Any]] = {}
    for _, cat, grams in bags:
        t = out.setdefault(cat, {"category": cat, "count": 0, "weight_g": 0})
        t["count"] += 1
        t["weight_g"] += grams
    return list(out.values())


@dataclass
class SigningCart:
    cart: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    seq: int = 0
    prev_hash: str = wire.GENESIS_HASH
    collector: str = "C0001"

    @property
    def public_key(self) -> str:
        return wire.public_key_text(self.key.public_key())

    def seal(self, rtype: str, body: dict[str, Any], when: datetime) -> dict[str, Any]:
        self.seq += 1
        env = wire.seal(wire.unsigned_envelope(
            record_id=wire.uuid7(int(when.timestamp() * 1000)), cart=self.cart, seq=self.seq, created_at=iso(when),
            clock=wire.Clock("ntp", self.seq * 1000), rtype=rtype, body=body, prev_hash=self.prev_hash), self.key)
        self.prev_hash = env["hash"]
        return env

    def handover(self, when: datetime, department: str, bags: list[tuple[str, str, int]], nurse: str = "N0001",
                 auth: str = "card") -> dict[str, Any]:
        """``bags``: (package code, category, grams)."""
        lines = [{"package_code": code, "category": cat, "waste_code": CATEGORY[cat].waste_code, "weight_g": grams,
                  "weighing": WEIGHING} for code, cat, grams in bags]
        body = {"org": SITE, "round_id": wire.uuid7(), "handover_at": iso(when), "department": department,
                "from_party": {"person_id": nurse, "auth_method": auth},
                "to_party": {"person_id": self.collector, "device_id": self.cart},
                "lines": lines, "totals": totals(bags), "destination": None}
        return self.seal("handover", body, when)

    def storage_in(self, when: datetime, room: str, handed: list[tuple[dict[str, Any], str, int | None]],
                   keeper: str = "K0001") -> dict[str, Any]:
        """``handed``: (the handover envelope, package code, re-weighed grams or None: missing)."""
        packages = []
        for env, code, reweigh in handed:
            line = next(ln for ln in env["body"]["lines"] if ln["package_code"] == code)
            expected = line["weight_g"]
            status = "MISSING" if reweigh is None else "DEVIATION" if abs(reweigh - expected) > 50 else "OK"
            packages.append({"package_code": code, "category": line["category"], "waste_code": line["waste_code"],
                             "department": env["body"]["department"], "handover_record_id": env["id"],
                             "handed_over_at": env["body"]["handover_at"], "expected_g": expected,
                             "reweigh_g": reweigh, "delta_g": None if reweigh is None else reweigh - expected,
                             "status": status, "overdue": False})
        present = [p for p in packages if p["status"] != "MISSING"]
        exp = sum(p["expected_g"] for p in present)
        rew = sum(p["reweigh_g"] or 0 for p in present)
        missing = len(packages) - len(present)
        deviation = sum(p["status"] == "DEVIATION" for p in packages)
        body = {"org": SITE, "facility": room, "direction": "IN", "moved_at": iso(when),
                "operator": {"person_id": self.collector, "device_id": self.cart}, "packages": packages,
                "tolerance": {"min_g": 50, "pct": 5}, "overdue_after_s": 172800,
                "keeper": {"person_id": keeper, "auth_method": "card"},
                "summary": {"expected_count": len(packages), "present_count": len(present), "missing_count": missing,
                            "deviation_count": deviation, "overdue_count": 0, "expected_g": exp, "reweigh_g": rew,
                            "delta_g": rew - exp, "delta_permille": round((rew - exp) * 1000 / exp) if exp else 0,
                            "missing_g": sum(p["expected_g"] for p in packages if p["status"] == "MISSING")},
                "result": "ACCEPTED" if not (missing or deviation) else "ACCEPTED_WITH_NOTE"}
        return self.seal("storage_in", body, when)

    def transfer(self, when: datetime, vehicle: str, manifest: str, bags: list[tuple[str, str, int]],
                 room: str = "ROOM1") -> dict[str, Any]:
        lines = [{"package_code": code, "category": cat, "waste_code": CATEGORY[cat].waste_code, "weight_g": grams,
                  "facility": room} for code, cat, grams in bags]
        body = {"org": SITE, "handed_over_at": iso(when),
                "from_party": {"person_id": self.collector, "device_id": self.cart},
                "carrier": {"vehicle": vehicle}, "manifest": {"type": "national", "number": manifest},
                "lines": lines, "totals": totals(bags), "disposal_method": "高温蒸汽",
                "final_destination": "市医疗废物处置中心"}
        return self.seal("transfer", body, when)

    def void(self, when: datetime, target: dict[str, Any], reason: str, package: str | None = None) -> dict[str, Any]:
        body = {"org": SITE, "voided_at": iso(when), "voided_record_id": target["id"], "voided_type": target["type"],
                "package_code": package, "reason": reason,
                "by": {"person_id": self.collector, "device_id": self.cart}}
        return self.seal("void", body, when)


def store_checked(store: GatewayRepository, envelopes: list[dict[str, Any]], keys: KeyRing, now: float) -> None:
    """Through the gateway's checks (schema, seal) into the store, as ingest does; fails on a refusal."""
    items = [check_message(wire.topic(SITE, env["cart"], wire.RECORD), wire.encode(env), keys) for env in envelopes]
    result = store.store_batch(items, now)
    refused = [o for o in result.outcomes if o.status == "rejected"]
    assert not refused, refused


def store_unchecked(store: GatewayRepository, env: dict[str, Any], now: float) -> None:
    """Straight into the store, past the seal check: a record stored under a key since replaced."""
    store.store_batch([Incoming(id=env["id"], site=SITE, cart=env["cart"], seq=env["seq"], type=env["type"],
                                created_at=env["created_at"], hash=env["hash"], envelope=wire.encode(env).decode(),
                                topic=wire.topic(SITE, env["cart"], wire.RECORD), payload=wire.encode(env),
                                prev_hash=env["prev_hash"])], now)


def scenario(a: SigningCart, b: SigningCart) -> dict[str, dict[str, Any]]:
    """Two carts over three days, every type: handovers in three departments, a whole-record void
    and a one-bag void, a check-in with a missing and a deviating bag, a transfer; one record made
    with a UTC clock just after the ledger zone's midnight and one on the last day of November.
    Names -> envelopes, in each cart's seq order (a's first)."""
    out: dict[str, dict[str, Any]] = {}
    out["h1"] = a.handover(at("2026-12-01", 9), "ICU", [("BAGA01", "INFECTIOUS", 1234), ("BAGA02", "SHARPS", 500)])
    out["h2"] = a.handover(at("2026-12-01", 10), "ER", [("BAGA03", "INFECTIOUS", 800)], nurse="N0002", auth="face")
    out["h3"] = a.handover(at("2026-12-01", 11), "ICU", [("BAGA04", "PATHOLOGICAL", 2000),
                                                         ("BAGA05", "INFECTIOUS", 950)])
    out["v_whole"] = a.void(at("2026-12-01", 11, 30), out["h2"], "科室选错")
    out["v_bag"] = a.void(at("2026-12-01", 11, 40), out["h1"], "标签重复", package="BAGA02")
    out["s1"] = a.storage_in(at("2026-12-01", 13), "ROOM1", [(out["h1"], "BAGA01", 1240), (out["h3"], "BAGA04", None),
                                                             (out["h3"], "BAGA05", 1100)])
    out["t1"] = a.transfer(at("2026-12-02", 8), "TRUCK1", "12345678901234", [("BAGA01", "INFECTIOUS", 1240),
                                                                              ("BAGA05", "INFECTIOUS", 1100)])
    b.collector = "C0002"
    out["b1"] = b.handover(at("2026-11-30", 23, 30), "ICU", [("BAGB01", "INFECTIOUS", 100)])
    utc_day2 = datetime(2026, 12, 1, 16, 30, tzinfo=UTC)  # 2026-12-02 00:30 in Asia/Shanghai
    out["b2"] = b.handover(utc_day2, "LAB", [("BAGB02", "CHEMICAL", 300), ("BAGB03", "INFECTIOUS", 700)],
                           nurse="N0003", auth="pin")
    out["b3"] = b.handover(at("2026-12-02", 9), "ICU", [("BAGB04", "SHARPS", 250)])
    return out


def expected_summary(envelopes: list[dict[str, Any]], by: str = "day") -> dict[tuple[str, str, str], list[int]]:
    """What a summary must say, computed straight from the envelopes (not from the index): handover
    bags not voided, per (period in Asia/Shanghai, department, category) -> [bags, grams]."""
    whole = {e["body"]["voided_record_id"] for e in envelopes if e["type"] == "void" and not e["body"]["package_code"]}
    bags = {(e["body"]["voided_record_id"], e["body"]["package_code"]) for e in envelopes
            if e["type"] == "void" and e["body"]["package_code"]}
    out: dict[tuple[str, str, str], list[int]] = {}
    for e in envelopes:
        if e["type"] != "handover" or e["id"] in whole:
            continue
        day = datetime.fromisoformat(e["created_at"]).astimezone(CST).date().isoformat()
        period = day if by == "day" else day[:7]
        for line in e["body"]["lines"]:
            if (e["id"], line["package_code"]) in bags:
                continue
            acc = out.setdefault((period, e["body"]["department"], line["category"]), [0, 0])
            acc[0] += 1
            acc[1] += line["weight_g"]
    return out


class LedgerRig:
    """``ConsoleRig`` whose two carts published ``scenario`` over MQTT (the real ingest), plus two
    records that do not verify now: one of a cart whose key in the gateway's key folder is not the
    one it signed with (as after a wrong key swap), one of a cart the gateway has no key for; those
    two are put in the store directly, as ingest would refuse them today."""

    def __init__(self, tmp_path: Path, broker: PrivateBroker, platform: SimPlatform) -> None:
        keys = tmp_path / "keys"
        keys.mkdir()
        self.b = SigningCart(unique("CARTB"))
        (keys / f"{self.b.cart}.pub").write_text(self.b.public_key)
        rotated = SigningCart(unique("ROT"))
        (keys / f"{rotated.cart}.pub").write_text(SigningCart("X").public_key)  # not the key it signs with
        self.rig = ConsoleRig(tmp_path, broker, platform, gateway={"cart_keys_dir": keys})
        self.url = self.rig.url
        try:
            self.a = SigningCart(self.rig.cart.cart, key=self.rig.cart.key)
            self.recs = scenario(self.a, self.b)
            for env in self.recs.values():
                self.rig.pub.publish(env["cart"], env)
            self.rig.wait(stored=len(self.recs), accepted=len(self.recs))
            self.forged = rotated.handover(at("2026-12-03"), "ICU", [("BAGR01", "INFECTIOUS", 400)])
            self.nokey = SigningCart(unique("NOKEY")).handover(at("2026-12-03"), "ER", [("BAGN01", "SHARPS", 90)])
            store = self.rig.app.store
            for env in (self.forged, self.nokey):
                store_unchecked(store, env, time.time())
        except BaseException:
            self.rig.close()
            raise

    def close(self) -> None:
        self.rig.close()
