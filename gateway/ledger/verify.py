"""``wastecart verify``: an inspector's offline check of a jsonl ledger export (``gateway.ledger.export``).

Needs only the file (and, to trust nothing in it, a folder of ``<CART>.pub`` keys obtained another
way, which then replace the file's keys).  For every record: its hash recomputed from its content
(``wire.record_hash``), its Ed25519 signature by its cart's key, its ``prev_hash`` against the hash
of the cart's record one seq before; seqs missing between two records of a cart are gaps (a record
removed from the middle is a gap AND a broken link at the record after it).  What is proven is said
per cart as seq ranges: within a range every record is unaltered, signed by that key, and linked to
the one before.

Hashing and signatures are independent per record, so a large file is checked in a process pool
(``PARALLEL_BYTES``); the chain is then walked in file order in this process.  Lines are parsed once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge import wire

KIND, VERSION = "wastecart-ledger-export", 1
CHUNK = 500  # record lines per task of the pool
PARALLEL_BYTES = 4 << 20  # files above this are checked in a process pool (below, starting it costs more)
LINE_MAX = 1 << 20  # bytes of one line: an envelope is a few KB; longer is not an export of ours

# one checked line: (line no, kind, cart, seq, record id, prev_hash, claimed hash, problem or None, end counts)
Checked = tuple[int, str, str, int, str, str, str, "str | None", "tuple[int, int] | None"]


class VerifyError(Exception):
    """The file cannot be read as an export at all (exit 2): missing, not ours, unusable --keys."""


@dataclass(frozen=True)
class Failure:
    line: int  # 0: the file as a whole (its end line missing, counts that disagree)
    cart: str
    seq: int | None
    record: str
    what: str

    def text(self) -> str:
        seq = f" seq {self.seq}" if self.seq is not None else ""
        rec = f" record {self.record}" if self.record else ""
        cart = f" cart {self.cart}" if self.cart else ""
        return f"{f'line {self.line}' if self.line else 'file'}{rec}{cart}{seq}: {self.what}"


@dataclass
class CartReport:
    cart: str
    key_source: str  # "file", "--keys DIR/CART.pub", or "none"
    fingerprint: str | None
    key_text: str | None = None  # the key used (base64), passed to the workers
    records: int = 0
    proven: list[list[int]] = field(default_factory=list)  # [first, last] seq ranges proven
    gaps: list[list[int]] = field(default_factory=list)  # [first, last] seqs missing between records
    failures: int = 0
    last_seq: int | None = None
    last_hash: str = ""
    run_open: bool = False


@dataclass
class Report:
    path: str
    header: dict[str, Any]
    carts: dict[str, CartReport] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    records: int = 0
    seconds: float = 0.0
    workers: int = 1

    @property
    def ok(self) -> bool:
        return not self.failures and bool(self.carts)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {"file": self.path, "ok": self.ok, "records": self.records, "seconds": round(self.seconds, 3),
                "records_per_s": round(self.rate), "workers": self.workers, "header": self.header,
                "carts": {c: {"key_source": r.key_source, "fingerprint": r.fingerprint, "records": r.records,
                              "proven": r.proven, "gaps": r.gaps, "failures": r.failures}
                          for c, r in self.carts.items()},
                "failures": [f.__dict__ for f in self.failures]}


def fingerprint(key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 of the raw 32-byte key: what a person compares by eye."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_keys_dir(folder: Path) -> dict[str, Ed25519PublicKey]:
    """Every ``<CART>.pub`` in ``folder``; VerifyError naming a file that holds no usable key."""
    if not folder.is_dir():
        raise VerifyError(f"--keys: {folder} is not a folder")
    keys: dict[str, Ed25519PublicKey] = {}
    for path in sorted(folder.glob("*.pub")):
        try:
            keys[path.stem] = wire.load_public_key(path.read_text("ascii").strip())
        except (OSError, UnicodeDecodeError, wire.ContractError) as exc:
            raise VerifyError(f"--keys: {path}: not a usable public key ({exc})") from exc
    return keys


def verify_file(path: Path, keys: dict[str, Ed25519PublicKey] | None = None, keys_label: str = "--keys",
                workers: int | None = None) -> Report:
    """Check every record of the export at ``path``; ``keys``: trusted keys replacing the file's.
    VerifyError if the file cannot be read as an export; every other problem is a Failure."""
    started = time.monotonic()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise VerifyError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    with handle:
        report = Report(str(path), _header(handle, path))
        lines = _numbered(handle, 2)
        pending: list[tuple[int, bytes]] = []
        texts: dict[str, str | None] = {}
        for number, line in lines:  # key lines, up to the first record
            obj = _json(line)
            if not isinstance(obj, dict) or obj.get("kind") != "key":
                pending.append((number, line))
                break
            cart, text = obj.get("cart"), obj.get("public_key")
            if not isinstance(cart, str) or not (text is None or isinstance(text, str)):
                report.failures.append(Failure(number, "", None, "", "malformed key line"))
                continue
            texts[cart] = text
        _use_keys(report, texts, keys, keys_label)
        chosen = {c: r.key_text for c, r in report.carts.items()}
        big = path.stat().st_size > PARALLEL_BYTES
        report.workers = (workers or os.cpu_count() or 1) if big else 1
        end: tuple[int, int] | None = None
        for checked in _check_all(chosen, _chain_lines(pending, lines), report.workers):
            end = _walk(report, checked) or end
    _finish(report, end)
    report.seconds = time.monotonic() - started
    return report


def _header(handle: BinaryIO, path: Path) -> dict[str, Any]:
    first = handle.readline(LINE_MAX)
    header = _json(first)
    if not isinstance(header, dict) or header.get("kind") != KIND:
        raise VerifyError(f"{path}: not a wastecart ledger export (line 1 is not its header)")
    if header.get("version") != VERSION:
        raise VerifyError(f"{path}: export version {header.get('version')!r}, this verifier reads {VERSION}")
    return header


def _numbered(handle: BinaryIO, start: int) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(handle, start):
        if line.strip():
            yield number, line


def _chain_lines(first: list[tuple[int, bytes]], rest: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    yield from first
    yield from rest


def _use_keys(report: Report, texts: dict[str, str | None], trusted: dict[str, Ed25519PublicKey] | None,
              label: str) -> None:
    """Per cart: the trusted key if given, else the file's; a cart without either is unverifiable."""
    for cart, text in texts.items():
        key: Ed25519PublicKey | None = None
        source = "none"
        if trusted is not None and cart in trusted:
            key, source = trusted[cart], f"{label}/{cart}.pub"
        elif text is not None:
            try:
                key, source = wire.load_public_key(text), "file"
            except wire.ContractError as exc:
                report.failures.append(Failure(0, cart, None, "", f"the file's public key is unusable ({exc})"))
        report.carts[cart] = CartReport(cart, source, fingerprint(key) if key else None,
                                        wire.public_key_text(key) if key else None)


def _check_all(keys: dict[str, str | None], lines: Iterator[tuple[int, bytes]], workers: int) -> Iterator[Checked]:
    """``check_lines`` over every line, in file order: here, or in ``workers`` processes (a bounded
    number of chunks in flight, so a large file is never all in memory)."""
    if workers <= 1:
        yield from check_lines(keys, list(lines))
        return
    # spawn, not fork: the caller may have threads (a fork copies their locks held)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        flight: deque[Future[list[Checked]]] = deque()
        for chunk in _chunks(lines):
            flight.append(pool.submit(check_lines, keys, chunk))
            if len(flight) >= workers * 3:
                yield from flight.popleft().result()
        while flight:
            yield from flight.popleft().result()


def _chunks(lines: Iterator[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for item in lines:
        chunk.append(item)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_LOADED: dict[str, Ed25519PublicKey] = {}  # per process: keys by their text


def check_lines(keys: dict[str, str | None], lines: list[tuple[int, bytes]]) -> list[Checked]:
    """Hash and signature of each record line (pure; runs in a pool's worker)."""
    out: list[Checked] = []
    for number, line in lines:
        obj = _json(line)
        if not isinstance(obj, dict):
            out.append((number, "bad", "", 0, "", "", "", "malformed line (not a JSON object)", None))
            continue
        kind = obj.get("kind")
        if kind == "end":
            counts = (obj.get("records"), obj.get("carts"))
            ok = all(isinstance(n, int) for n in counts)
            out.append((number, "end", "", 0, "", "", "", None if ok else "malformed end line",
                        (int(counts[0]), int(counts[1])) if ok else None))  # type: ignore[arg-type]
            continue
        env = obj.get("envelope")
        if kind != "record" or not isinstance(env, dict):
            out.append((number, "bad", "", 0, "", "", "", f"malformed line (kind {kind!r} here)", None))
            continue
        cart, seq, rid = env.get("cart"), env.get("seq"), env.get("id")
        prev, claimed = env.get("prev_hash"), env.get("hash")
        if not (isinstance(cart, str) and isinstance(seq, int) and isinstance(rid, str) and isinstance(prev, str)
                and isinstance(claimed, str)):
            out.append((number, "bad", str(cart or ""), seq if isinstance(seq, int) else 0, str(rid or ""), "", "",
                        "malformed record (cart, seq, id, prev_hash or hash missing)", None))
            continue
        out.append((number, "record", cart, seq, rid, prev, claimed, _seal_problem(env, keys.get(cart)), None))
    return out


def _seal_problem(env: dict[str, Any], key_text: str | None) -> str | None:
    try:
        expected = wire.record_hash(env)
    except (ValueError, TypeError) as exc:
        return f"malformed record ({exc})"
    if expected != env["hash"]:
        return "altered content: the hash does not match the record's content"
    if key_text is None:
        return "unverifiable: no public key for this cart"
    key = _LOADED.get(key_text)
    if key is None:
        key = _LOADED[key_text] = wire.load_public_key(key_text)
    try:
        key.verify(base64.b64decode(str(env.get("sig", "")), validate=True), expected.encode("ascii"))
    except (InvalidSignature, ValueError, binascii.Error):
        return "bad signature: not signed by this cart's key"
    return None


def _walk(report: Report, checked: Checked) -> tuple[int, int] | None:
    """The chain, in file order: links, gaps, order, proven ranges; returns the end line's counts."""
    number, kind, cart_id, seq, rid, prev, claimed, problem, end = checked
    if kind == "end":
        if problem:
            report.failures.append(Failure(number, "", None, "", problem))
        return end
    if kind == "bad":
        report.failures.append(Failure(number, cart_id, seq or None, rid, problem or "malformed line"))
        return None
    report.records += 1
    cart = report.carts.get(cart_id)
    if cart is None:
        cart = report.carts[cart_id] = CartReport(cart_id, "none", None)
        problem = problem or "unverifiable: no public key line for this cart"
    cart.records += 1
    link_ok = True
    if cart.last_seq is None:
        if seq == 1 and prev != wire.GENESIS_HASH:
            link_ok = False
            _fail(report, cart, Failure(number, cart_id, seq, rid, "chain break: seq 1 does not start the chain"))
    elif seq <= cart.last_seq:
        _fail(report, cart, Failure(number, cart_id, seq, rid, f"seq {seq} out of order (after seq {cart.last_seq})"))
        return None
    else:
        if seq > cart.last_seq + 1:
            cart.gaps.append([cart.last_seq + 1, seq - 1])
        if prev != cart.last_hash:
            link_ok = False
            missing = f" (seqs {cart.last_seq + 1}-{seq - 1} missing)" if seq > cart.last_seq + 1 else ""
            _fail(report, cart, Failure(number, cart_id, seq, rid,
                                        f"chain break: prev_hash is not the hash of seq {cart.last_seq}{missing}"))
    if problem:
        _fail(report, cart, Failure(number, cart_id, seq, rid, problem))
        cart.run_open = False
    elif link_ok and cart.run_open:
        cart.proven[-1][1] = seq
    else:
        cart.proven.append([seq, seq])
        cart.run_open = True
    cart.last_seq, cart.last_hash = seq, claimed
    return None


def _fail(report: Report, cart: CartReport, failure: Failure) -> None:
    cart.failures += 1
    report.failures.append(failure)


def _finish(report: Report, end: tuple[int, int] | None) -> None:
    if end is None:
        report.failures.append(Failure(0, "", None, "", "the file has no end line: it was cut short"))
    elif end != (report.records, len(report.carts)):
        report.failures.append(Failure(0, "", None, "", f"the end line says {end[0]} records of {end[1]} carts; "
                                       f"the file holds {report.records} of {len(report.carts)}"))
    for cart in report.carts.values():
        if cart.records == 0:
            _fail(report, cart, Failure(0, cart.cart, None, "", "a key but no records"))


def _json(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def render(report: Report, shown_max: int = 100) -> str:
    """What was proven, per cart, and each failure (the first ``shown_max``; --json has them all)."""
    h = report.header
    out = [f"export {report.path}: created {h.get('created_at')}, zone {h.get('zone')}, "
           f"filter {json.dumps(h.get('filter'), ensure_ascii=False)}"]
    for cart in report.carts.values():
        source = "no key" if cart.key_source == "none" else f"from {cart.key_source}"
        out.append(f"key {cart.cart}: {cart.fingerprint or '-'} ({source})")
    for cart in report.carts.values():
        proven = ", ".join(_span(a, b) for a, b in cart.proven) or "nothing"
        gaps = ", ".join(_span(a, b) for a, b in cart.gaps) or "none"
        out.append(f"cart {cart.cart}: {cart.records} records; proven seqs {proven}; gaps {gaps}; "
                   f"{cart.failures} failures")
    for failure in report.failures[:shown_max]:
        out.append(f"FAIL {failure.text()}")
    if len(report.failures) > shown_max:
        out.append(f"… and {len(report.failures) - shown_max} more failures (--json lists them all)")
    if not report.records:
        out.append("NOT PROVEN: the file holds no records")
    elif report.ok:
        out.append(f"PROVEN: every hash, signature and chain link of {report.records} records of "
                   f"{len(report.carts)} carts")
    else:
        out.append(f"NOT PROVEN: {len(report.failures)} failures in {report.records} records")
    out.append(f"checked {report.records} records in {report.seconds:.2f} s ({report.rate:,.0f} records/s, "
               f"{report.workers} process{'es' if report.workers > 1 else ''})")
    return "\n".join(out)


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"
