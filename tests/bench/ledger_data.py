"""Data for ``bench_ledger``: a gateway store holding 1,000 carts' signed, chained records of 30 days.

What a county's gateway holds after a month, made without a broker so that a million records take
minutes, not hours — but every record is what a cart would have sent and the gateway kept:

- bodies are built by the cart's own workflow functions (``edge.workflow.records``: handover,
  storage-in with its reconciliation, transfer, void) on the workflow's ``State``, and ``apply_record``
  says where bags are afterwards, as on a cart: rounds of 3–6 department stops (1–4 bags each, mostly
  infectious, a few sharps / pathological / pharmaceutical / chemical, now and then a label note;
  chemical waste with its 主要成分), a storage check-in signed by a keeper (re-weighs, now and then a
  deviation or one batch weighing; now and then a bag not found, which makes the check-in REJECTED:
  nothing is stored and the bags are checked in with the next round's), a transfer to the
  transporter every few rounds (signed by the carrier's driver, under a national manifest number of
  the site's city), voids of a bag or of a whole handover now and then (a reason from the list,
  confirmed by a supervisor); rounds from 07:00 on in the ledger's zone, every day of ``DAYS`` days;
- every body is version 2: each site (a hospital in a city of 浙江) has one ``Roster`` (``site_roster``)
  naming every person, department, storage room, vehicle, carrier and receiver its carts' records
  name, so names stand beside codes as on a configured cart;
- envelopes are sealed by ``wire.seal`` with each cart's Ed25519 key (derived from the cart number,
  so a shard needs no key passed) and chained by ``prev_hash``; ``wire.encode`` gives the stored text;
- the store is made by ``SqliteStore`` (the real schema and ledger meta), the ``records`` rows are
  as the ingest leaves them after forwarding (chain verified; forward_state accepted but for a few
  dead letters and those received in the hour before the data's "now", ``DATA_END_H`` of its last
  day: none at the issue's size, whose last rounds end by 18:30, as a healthy gateway forwards
  within seconds), ``carts`` rows as ``_advance`` leaves them, and the ledger's
  index rows come from ``gateway.store.ledger_index.write_index``, the function ingest calls.

Signing and indexing run in one process per core, each into a shard of the store (its carts, in
time order, on its own ``SqliteStore`` file); the shards are then copied into the one store by SQL
(``INSERT … SELECT``; its secondary indexes dropped while filling and built again after, the same
``CREATE INDEX`` text read back from the file).  Each shard is in time order, so the table is as
many time-ordered runs as there are shards (a live gateway has one).  No ``ANALYZE``: the gateway
never runs it.  The result is cached under ``cache_root()`` keyed by size and ``GENERATOR_VERSION``
(other versions' stores there are deleted); ``meta.json`` is written last, so a half-made cache is
never used.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
import random
import shutil
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from edge.catalogue import CATEGORIES, CATEGORY, LABEL_NOTES
from edge.manifest import divisions
from edge.roster import Carrier, Department, Person, Receiver, Room, Roster, Vehicle
from edge.workflow.records import apply_record, handover_body, storage_in_body, transfer_body, void_body
from edge.workflow.state import Batch, Line, Reweigh, Round, Signer, State, Stop, Storage, Transfer, VoidScan
from gateway.ledger.zone import DEFAULT_ZONE
from gateway.store import DB_NAME, MIGRATIONS, SqliteStore
from gateway.store.ledger_index import write_index

GENERATOR_VERSION = 3  # bump when what is generated changes: the cache key changes with it
ROUNDS_SEED = 2  # in each cart's seed: kept from generator 2, so its rounds (records per type) are those of then
# the gateway's schema is in the key too: a store cached before a migration changed is never reused
SCHEMA_TAG = hashlib.sha256(repr(MIGRATIONS).encode()).hexdigest()[:8]
CACHE_PREFIX = f"ledger-v{GENERATOR_VERSION}-s{SCHEMA_TAG}-"
RECORDS, CARTS, DAYS, SITES = 1_000_000, 1_000, 30, 10
RECORDS_ENV, CARTS_ENV, CACHE_ENV = ("WASTECART_BENCH_LEDGER_RECORDS", "WASTECART_BENCH_LEDGER_CARTS",
                                     "WASTECART_BENCH_CACHE")
ZONE = ZoneInfo(DEFAULT_ZONE)  # the ledger's zone; carts stamp their records in it too (+08:00)
TX_RECORDS = 20_000  # records per transaction in a shard
DEAD_EVERY = 20_000  # one record in this many is a dead letter (the platform refused it)
PENDING_S = 3600  # records received in the last hour of the data are not yet forwarded
DATA_END_H = 21  # the data's "now": this hour of its last day (rounds start from 07:00, spread over 15 h)

DEPARTMENT_NAMES = {"ICU": "重症医学科", "ER": "急诊科", "OR-1": "第一手术室", "OR-2": "第二手术室",
                    "CARD": "心血管内科", "NEURO": "神经内科", "PED": "儿科", "NICU": "新生儿重症监护室",
                    "OBGYN": "妇产科", "ONC": "肿瘤科", "HEME": "血液内科", "LAB": "检验科", "PATH": "病理科",
                    "RAD": "放射科", "DIAL": "血液净化中心", "ORTHO": "骨科", "GI": "消化内科", "RESP": "呼吸内科",
                    "DERM": "皮肤科", "ENT": "耳鼻咽喉科", "OPHTH": "眼科", "URO": "泌尿外科", "PHARM": "药剂科",
                    "INF": "感染科"}
DEPARTMENTS = tuple(DEPARTMENT_NAMES)
# site n's hospital is in city CITIES[n] (GB/T 2260, all in 浙江): its manifest numbers carry this code
CITIES = ("3301", "3302", "3303", "3304", "3305", "3306", "3307", "3308", "3309", "3310")
PLATE_LETTERS = {"3301": "A", "3302": "B", "3303": "C", "3304": "F", "3305": "E", "3306": "D", "3307": "G",
                 "3308": "H", "3309": "L", "3310": "J"}  # 浙A … : the city's letter on a vehicle's plate
# people and places per site (the ids' ranges): collectors, keepers, nurses per department, supervisors,
# drivers, storage rooms, vehicles
COLLECTORS, KEEPERS, NURSES, SUPERVISORS, DRIVERS, ROOMS, VEHICLES = 40, 4, 12, 3, 6, 2, 6
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚华玉萍红玲芬燕彬鹏辉建国志海晓东梅文博涵欣怡浩然"
DISPOSAL = {"INFECTIOUS": "高温蒸汽灭菌后焚烧", "SHARPS": "高温蒸汽灭菌后毁形", "PATHOLOGICAL": "焚烧",
            "PHARMACEUTICAL": "焚烧", "CHEMICAL": "焚烧"}  # 处置方法 per category: the receiver takes every one
# 主要成分 of chemical waste
COMPONENTS = ("甲醛", "二甲苯", "乙醇、甲醇", "戊二醛", "过氧乙酸", "含汞废液", "甲醛、乙醇")
NOTE_SHARE = 0.06  # of infectious / pathological bags with a label note (备注)
# category, share of bags, net weight range (g), bag / box tare (g)
CATEGORY_MIX = (("INFECTIOUS", 70, (300, 4_500), 45), ("SHARPS", 15, (250, 2_800), 180),
                ("PATHOLOGICAL", 5, (400, 6_000), 60), ("PHARMACEUTICAL", 6, (150, 2_000), 45),
                ("CHEMICAL", 4, (200, 3_500), 60))
PROTOCOLS = ("yaohua-tf0", "mt-sics", "ohaus", "toledo", "cas", "ad")
# why a bag (vb) or a whole handover (vr) is voided: a catalogue.VOID_REASONS id and the words typed
# with it ("" for none; OTHER always has words)
VOID_BAG = (("WRONG_WEIGHT", ""), ("WRONG_WEIGHT", "秤未归零"), ("WRONG_CATEGORY", ""), ("WRONG_LABEL", "扫错标签"),
            ("DUPLICATE", "重复称重"), ("OTHER", "袋子破损，重新包装后再登记"))
VOID_RECORD = (("WRONG_DEPARTMENT", ""), ("DUPLICATE", "同一批交接登记了两次"), ("OTHER", "护士确认有误，重新交接"))
AUTH = ("card",) * 8 + ("pin", "face")  # how a signer signs: mostly the badge


@dataclass(frozen=True)
class Size:
    records: int
    carts: int

    @property
    def key(self) -> str:
        return f"{CACHE_PREFIX}{self.records}r-{self.carts}c"


def size_from_env() -> Size:
    """The issue's size, or smaller for a quick run: ``WASTECART_BENCH_LEDGER_RECORDS`` (carts then
    default to one per 1,000 records, as at full size) and ``WASTECART_BENCH_LEDGER_CARTS``."""
    records = _positive(RECORDS_ENV, RECORDS)
    carts = _positive(CARTS_ENV, max(1, min(CARTS, records // 1_000)))
    if carts > records:
        raise ValueError(f"{CARTS_ENV}={carts}: more carts than records ({records})")
    return Size(records, carts)


def _positive(name: str, default: int) -> int:
    text = os.environ.get(name, "").replace("_", "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name}={os.environ[name]!r}: expected a positive whole number")
    return int(text)


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or "/tmp/wastecart-bench-cache")


def cart_id(i: int) -> str:
    return f"CART-{i:04d}"


def site_no(i: int) -> int:
    return i % SITES


def site_of(i: int) -> str:
    return f"HOSP-{site_no(i):02d}"


@cache
def site_roster(sn: int) -> Roster:
    """Site ``sn``'s roster: everyone and everything its carts' records name, names drawn from a seed
    of the site (the same in every process), ids as the rounds draw them."""
    rng = random.Random(104_729 * (sn + 1))
    city = CITIES[sn % len(CITIES)]
    city_name = divisions().cities[city]
    used: set[str] = set()

    def name() -> str:
        while True:
            given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
            if (full := rng.choice(SURNAMES) + given) not in used:
                used.add(full)
                return full

    carrier, receiver = f"CARRIER-{city}", f"DISPOSER-{city}"
    people = {f"C{sn:02d}{k:03d}": Person(name=name(), roles=("collector",)) for k in range(COLLECTORS)}
    people |= {f"K{sn:02d}{k:02d}": Person(name=name(), roles=("keeper",)) for k in range(KEEPERS)}
    people |= {f"N{sn:02d}{d:02d}{k:02d}": Person(name=name(), roles=("nurse",), departments=(dept,))
               for d, dept in enumerate(DEPARTMENTS) for k in range(NURSES)}
    people |= {f"S{sn:02d}{k:02d}": Person(name=name(), roles=("supervisor",)) for k in range(SUPERVISORS)}
    people |= {f"D{sn:02d}{k:02d}": Person(name=name(), roles=("transporter",), carrier=carrier)
               for k in range(DRIVERS)}
    return Roster(
        version=f"bench-{sn:02d}-g{GENERATOR_VERSION}", org_name=f"{city_name}第一人民医院", people=people,
        departments={d: Department(name=zh) for d, zh in DEPARTMENT_NAMES.items()},
        rooms={f"STORE-{sn:02d}{k}": Room(name=f"医疗废物暂存间{k + 1}号") for k in range(ROOMS)},
        vehicles={f"VAN{sn:02d}{k:02d}": Vehicle(plate=f"浙{PLATE_LETTERS[city]}·{rng.randrange(10**5):05d}",
                                                 carrier=carrier, receiver=receiver) for k in range(VEHICLES)},
        carriers={carrier: Carrier(name=f"{city_name}医疗废物转运有限公司", licence=f"浙交运管许可{city}字{sn:06d}")},
        receivers={receiver: Receiver(name=f"{city_name}医疗废物集中处置中心", licence=f"浙危废经第{city}{sn:04d}号",
                                      address=f"{city_name}循环经济产业园",
                                      disposal={c.id: DISPOSAL[c.id] for c in CATEGORIES})},
    )


def cart_key(i: int) -> Ed25519PrivateKey:
    """Cart ``i``'s key, the same in every process (a bench fixture, never a real key)."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"wastecart-bench-cart-{i}".encode()).digest())


def records_of(i: int, size: Size) -> int:
    """Records of cart ``i`` (1-based): the total split evenly, the first carts one more."""
    share, extra = divmod(size.records, size.carts)
    return share + (1 if i <= extra else 0)


@dataclass(frozen=True)
class Generated:
    """A generated store: ``data`` (the gateway folder), ``keys_dir`` (``<CART>.pub``), ``meta``."""

    root: Path
    meta: dict[str, Any]

    @property
    def data(self) -> Path:
        return self.root / "gw"

    @property
    def db_path(self) -> Path:
        return self.data / DB_NAME

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"


def dataset(size: Size, root: Path | None = None, workers: int | None = None) -> Generated:
    """The cached store of ``size`` under ``root`` (default ``cache_root()``), generated if missing;
    ``meta["cached"]`` says which."""
    where = (root or cache_root()) / size.key
    meta_file = where / "meta.json"
    if meta_file.is_file():
        return Generated(where, {**json.loads(meta_file.read_text()), "cached": True})
    if where.exists():
        shutil.rmtree(where)  # an interrupted generation
    for stale in where.parent.glob("ledger-v*-*r-*c"):  # another generator's stores: gigabytes never read again
        if not stale.name.startswith(CACHE_PREFIX):
            shutil.rmtree(stale)
    meta = generate(where, size, workers)
    meta_file.write_text(json.dumps(meta, indent=2) + "\n")
    return Generated(where, {**meta, "cached": False})


def generate(where: Path, size: Size, workers: int | None = None) -> dict[str, Any]:
    """Shards in parallel (one per worker), then one store from them; the figures of the run."""
    t0 = time.monotonic()
    gen = Generated(where, {})
    gen.keys_dir.mkdir(parents=True)
    for i in range(1, size.carts + 1):
        (gen.keys_dir / f"{cart_id(i)}.pub").write_text(wire.public_key_text(cart_key(i).public_key()) + "\n")
    end = datetime.now(ZONE).date() - timedelta(days=1)  # the data ends with yesterday
    workers = max(1, min(workers or os.cpu_count() or 1, size.carts))
    shards = [where / "shards" / f"shard-{n}.sqlite" for n in range(workers)]
    jobs = [(shards[n], list(range(n + 1, size.carts + 1, workers)), size, end.isoformat()) for n in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        counts = list(pool.map(_shard, jobs))
    signed_s = time.monotonic() - t0
    _merge(gen.db_path, shards)
    shutil.rmtree(where / "shards")
    with sqlite3.connect(f"file:{gen.db_path}?mode=ro", uri=True) as db:
        rows = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("records", "ledger_records", "ledger_bags", "carts")}
        first, last = db.execute("SELECT MIN(day), MAX(day) FROM ledger_records").fetchone()
        types = dict(db.execute("SELECT type, COUNT(*) FROM ledger_records GROUP BY type").fetchall())
    db.close()
    return {"generator_version": GENERATOR_VERSION, "records": size.records, "carts": size.carts,
            "workers": workers, "first_day": first, "last_day": last, "rows": rows, "types": types,
            "envelope_mib": round(sum(c["envelope_bytes"] for c in counts) / 2**20),
            "db_mib": round(gen.db_path.stat().st_size / 2**20),
            "sign_and_index_s": round(signed_s, 1), "generate_s": round(time.monotonic() - t0, 1)}


# one shard: its carts' records, sealed, stored and indexed in time order -------------------------

def _shard(job: tuple[Path, list[int], Size, str]) -> dict[str, int]:
    path, carts, size, end_text = job
    end = date.fromisoformat(end_text)
    SqliteStore(path).close()  # the real schema and ledger meta
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = OFF")  # a throw-away shard: no journal, no fsync
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -262144")  # KiB
        streams = [_cart_records(i, records_of(i, size), end) for i in carts]
        last_at = datetime.combine(end, datetime.min.time(), ZONE).timestamp() + DATA_END_H * 3600
        done = envelope_bytes = 0
        rows: list[tuple[Any, ...]] = []
        db.execute("BEGIN")
        for _at, _cart, site, env in heapq.merge(*streams, key=lambda r: (r[0], r[1])):
            text = wire.encode(env).decode("utf-8")
            rows.append(_record_row(env, site, text, last_at))
            write_index(db, env, site, ZONE)
            done += 1
            envelope_bytes += len(text)
            if done % TX_RECORDS == 0:
                _insert_records(db, rows)
                db.execute("COMMIT")
                db.execute("BEGIN")
                rows = []
        _insert_records(db, rows)
        db.executemany("INSERT INTO carts (cart, site, upto_seq, max_seq, gap_from) VALUES (?, ?, ?, ?, NULL)",
                       [(cart_id(i), site_of(i), records_of(i, size), records_of(i, size)) for i in carts])
        # the keys the gateway verified each cart's records with, as ingest notes them
        db.executemany("INSERT INTO cart_keys (cart, public_key, first_used, last_used) VALUES (?, ?, 0, 0)",
                       [(cart_id(i), wire.public_key_text(cart_key(i).public_key())) for i in carts])
        db.execute("COMMIT")
    finally:
        db.close()
    return {"records": done, "envelope_bytes": envelope_bytes}


_RECORD_COLUMNS = ("id, site, cart, seq, type, created_at, hash, prev_hash, envelope, received_at, chain,"
                   " forward_state, attempts, next_attempt_at, sent_at, last_error, accepted_at")


def _insert_records(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    db.executemany(f"INSERT INTO records ({_RECORD_COLUMNS}) VALUES ({', '.join('?' * 17)})", rows)


def _record_row(env: dict[str, Any], site: str, text: str, last_at: float) -> tuple[Any, ...]:
    """As ingest + forwarder leave it: received a moment after it was made (now and then after a
    backlog), accepted by the platform a moment later; the last hour's not yet; a few dead letters."""
    h = int(env["hash"][:8], 16)  # a stable per-record die
    made = datetime.fromisoformat(env["created_at"]).timestamp()
    received = made + (0.2 + (h % 2800) / 1000 if h % 100 else 60 + h % 7200)
    if received > last_at - PENDING_S:
        state, attempts, sent, error, accepted = "stored", 0, None, None, None
    elif h % DEAD_EVERY == 0:
        state, attempts, sent, error, accepted = ("dead", 1, received + 1, "platform: 422 refused: manifest number "
                                                  "unknown to the provincial system", None)
    else:
        state, attempts, sent, error, accepted = "accepted", 1, received + 0.4, None, received + 0.5 + (h % 4000) / 1000
    return (env["id"], site, env["cart"], env["seq"], env["type"], env["created_at"], env["hash"], env["prev_hash"],
            text, received, "verified", state, attempts, received, sent, error, accepted)


# one cart: its rounds as its workflow would have recorded them -----------------------------------

Emitted = tuple[float, int, str, dict[str, Any]]  # (unix time, cart number, site, sealed envelope)


def _plan(rng: random.Random, records: int) -> list[list[tuple[str, int]]]:
    """Rounds of (kind, bags): handovers ``h`` (bags), then ``vb`` (a bag of it voided, if it has
    two) or ``vr`` (the whole handover voided: never the round's first, once a round), the check-in
    ``s``, a transfer ``t`` every few rounds; cut at ``records`` (the last round may stay open)."""
    rounds: list[list[tuple[str, int]]] = []
    total = 0
    while total < records:
        steps: list[tuple[str, int]] = []
        voided_round = False
        for k in range(rng.randint(3, 6)):
            bags = rng.choice((1, 1, 1, 2, 2, 2, 3, 4))
            steps.append(("h", bags))
            die = rng.random()
            if die < 0.02 and bags >= 2:
                steps.append(("vb", 0))
            elif die > 0.992 and k > 0 and not voided_round:
                steps.append(("vr", 0))
                voided_round = True
        steps.append(("s", 0))
        if len(rounds) % 3 == 2:
            steps.append(("t", 0))
        rounds.append(steps)
        total += len(steps)
    cut = total - records
    while cut:
        drop = min(cut, len(rounds[-1]))
        rounds[-1] = rounds[-1][: len(rounds[-1]) - drop]
        cut -= drop
        if not rounds[-1]:
            rounds.pop()
    return rounds


def _cart_records(i: int, records: int, end: date) -> Iterator[Emitted]:
    """Cart ``i``'s ``records`` records, sealed and chained, in time order over the ``DAYS`` days up to ``end``."""
    rng = random.Random(i * 7_919 + ROUNDS_SEED)
    key, cart, site, sn = cart_key(i), cart_id(i), site_of(i), site_no(i)
    route = rng.sample(DEPARTMENTS, 8)
    collectors = [f"C{sn:02d}{rng.randrange(COLLECTORS):03d}" for _ in range(3)]
    keepers = [f"K{sn:02d}{k:02d}" for k in range(KEEPERS)]
    supervisors = [f"S{sn:02d}{k:02d}" for k in range(SUPERVISORS)]
    drivers = [f"D{sn:02d}{k:02d}" for k in range(DRIVERS)]
    rooms = [f"STORE-{sn:02d}{k}" for k in range(ROOMS)]
    city = CITIES[sn % len(CITIES)]
    protocol = PROTOCOLS[i % len(PROTOCOLS)]
    plan = _plan(rng, records)
    per_day = math.ceil(len(plan) / DAYS)  # rounds on the busiest day: their spacing
    first = end - timedelta(days=DAYS - 1)
    s = State(org=site, cart=cart, roster=site_roster(sn), zone=ZONE)
    seq, prev, bag_no = 0, wire.GENESIS_HASH, 0
    for r, steps in enumerate(plan):
        day = r * DAYS // len(plan)
        slot = r - -(-day * len(plan) // DAYS)  # the round's place in its day
        start = datetime.combine(first + timedelta(days=day), datetime.min.time(), ZONE) + timedelta(
            hours=7, minutes=slot * 15 * 60 // per_day + rng.randrange(20), seconds=rng.randrange(60))
        at = start
        rnd = Round(collector=rng.choice(collectors), id=wire.uuid7(_ms(start)), started_at=start)
        s = replace(s, round=rnd, visit=None)
        for kind, bags in steps:
            at += timedelta(minutes=rng.randint(3, 9), seconds=rng.randrange(60), milliseconds=rng.randrange(1000))
            if kind == "h":
                lines = []
                for _ in range(bags):
                    bag_no += 1
                    lines.append(_line(rng, f"B{sn:02d}{i:04d}{bag_no:06d}", protocol))
                dept = rng.choice(route)
                s = replace(s, visit=Stop(dept, tuple(lines)))
                nurse = f"N{sn:02d}{DEPARTMENTS.index(dept):02d}{rng.randrange(NURSES):02d}"
                rtype, body = "handover", handover_body(s, nurse=nurse, at=at, auth=rng.choice(AUTH))
            elif kind in ("vb", "vr"):
                last = s.last_record
                assert last is not None and last.rtype == "handover"
                package = rng.choice([b for b in s.carried if b.record_id == last.record_id]).package_code \
                    if kind == "vb" else None
                code, words = rng.choice(VOID_BAG if kind == "vb" else VOID_RECORD)
                void = VoidScan(code, words, record_id=last.record_id, rtype="handover", package=package)
                s = replace(s, visit=void)
                approver = Signer(rng.choice(supervisors), "supervisor", rng.choice(AUTH))
                rtype, body = "void", void_body(s, rnd, at=at, void=void, approver=approver)
            elif kind == "s":
                keeper = Signer(rng.choice(keepers), "keeper", rng.choice(AUTH))
                room = _check_in(rng, s, rng.choice(rooms), keeper, protocol)
                s = replace(s, visit=room)
                rtype, body = "storage_in", storage_in_body(s, rnd, room, at, keeper)
            else:
                visit = Transfer(f"VAN{sn:02d}{rng.randrange(VEHICLES):02d}",
                                 manifest=f"{at:%Y}{city}{rng.randrange(10**6):06d}",  # national: YYYY PP CC serial
                                 driver=Signer(rng.choice(drivers), "transporter", rng.choice(AUTH)))
                s = replace(s, visit=visit)
                rtype, body = "transfer", transfer_body(s, rnd, visit, at)
            seq += 1
            env = wire.seal(wire.unsigned_envelope(
                record_id=wire.uuid7(_ms(at)), cart=cart, seq=seq, created_at=at.isoformat(timespec="milliseconds"),
                clock=wire.Clock("ntp", (seq * 997_331) % 2**40), rtype=rtype, body=body, prev_hash=prev), key)
            prev = env["hash"]
            s = replace(apply_record(s, env["id"], rtype, seq, body), visit=None)
            yield at.timestamp(), i, site, env


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _weighing(rng: random.Random, net: int, tare: int, protocol: str) -> dict[str, Any]:
    gross = net + tare
    return {"gross_g": gross, "tare_g": tare, "net_g": net, "stable": True, "protocol": protocol,
            "raw": f"ST,GS,+{gross // 1000:03d}.{gross % 1000:03d}kg"}


def _line(rng: random.Random, code: str, protocol: str) -> Line:
    """A bag: its category by ``CATEGORY_MIX``; a label note now and then where the note applies, and
    主要成分 always for chemical waste (the label must state them: both make the cart print the label)."""
    category, _, (low, high), tare = rng.choices(CATEGORY_MIX, weights=[c[1] for c in CATEGORY_MIX])[0]
    net = rng.randint(low, high)
    notes = [n.id for n in LABEL_NOTES if not n.categories or category in n.categories]
    noted = (rng.choice(notes),) if notes and rng.random() < NOTE_SHARE else ()
    components = rng.choice(COMPONENTS) if CATEGORY[category].needs_components else ""
    label = "printed" if noted or components else "scanned"
    return Line(code, category, net, _weighing(rng, net, tare, protocol), label, noted, components)


def _check_in(rng: random.Random, s: State, room: str, keeper: Signer, protocol: str) -> Storage:
    """The storage room's re-weighs: within the scale's noise mostly, 2 % off by more than the
    tolerance, one batch in ten; now and then one bag not found (only with two or more carried, and
    with bags already in storage, so that a transfer after this REJECTED check-in has bags to take)."""
    carried = list(s.carried)
    missing = rng.choice(carried).package_code if len(carried) >= 2 and rng.random() < 0.03 and s.stored else None
    present = [b for b in carried if b.package_code != missing]
    if len(present) >= 3 and rng.random() < 0.1:
        net = sum(b.weight_g for b in present) + rng.randint(-40, 40)
        codes = tuple(b.package_code for b in present)
        return Storage(room, batch=Batch(codes, net, _weighing(rng, net, 0, protocol)), keeper=keeper)
    reweighs = []
    for b in present:
        off = rng.randint(-30, 30) if rng.random() > 0.02 else rng.choice((-1, 1)) * rng.randint(300, 900)
        net = max(1, b.weight_g + off)
        reweighs.append(Reweigh(b.package_code, net, _weighing(rng, net, 0, protocol)))
    return Storage(room, reweighs=tuple(reweighs), keeper=keeper)


# the one store from the shards -------------------------------------------------------------------

_INDEXED = ("records", "ledger_records", "ledger_bags")


def _merge(db_path: Path, shards: list[Path]) -> None:
    """Shard after shard into a fresh ``SqliteStore`` file, secondary indexes built after filling."""
    SqliteStore(db_path).close()
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA cache_size = -1048576")  # KiB: the primary keys stay in memory while filling
        indexes = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                             f" AND tbl_name IN ({', '.join('?' * len(_INDEXED))})", _INDEXED).fetchall()
        db.execute("BEGIN")
        for name, _ in indexes:
            db.execute(f'DROP INDEX "{name}"')
        for n, shard in enumerate(shards):
            db.execute(f"ATTACH DATABASE ? AS s{n}", (str(shard),))
        for table in (*_INDEXED, "carts", "cart_keys"):
            for n in range(len(shards)):
                db.execute(f"INSERT INTO main.{table} SELECT * FROM s{n}.{table}")
        total = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES ('received', ?)", (total,))
        for _, sql in indexes:
            db.execute(sql)
        db.execute("COMMIT")
        for n in range(len(shards)):
            db.execute(f"DETACH DATABASE s{n}")
        db.execute("PRAGMA journal_mode = WAL")  # as the gateway keeps it
    finally:
        db.close()
