"""``gateway.ledger.verify``: a jsonl export is proven as exported, and every way of tampering with it
is a failure that names the line, the record and its seq — one byte changed, a record removed from
the middle, a key swapped, the file cut short."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from edge import wire
from gateway.ledger import verify as verify_mod
from gateway.ledger.export import export, open_readonly
from gateway.ledger.search import LedgerFilter
from gateway.ledger.verify import VerifyError, fingerprint, load_keys_dir, render, verify_file
from tests.export_fixtures import ZONE, Ledger, fill


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ledger]:
    folder = tmp_path_factory.mktemp("verify")
    ledger = fill(folder, carts=2, days=2)
    db: sqlite3.Connection = open_readonly(folder)
    try:
        export(db, LedgerFilter(), "jsonl", folder / "ledger.jsonl", ZONE, ledger.keys())
    finally:
        db.close()
    return folder / "ledger.jsonl", ledger


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def record_line(lines: list[bytes], cart: str, seq: int) -> int:
    """Index of the line holding ``cart``'s record ``seq``."""
    for i, line in enumerate(lines):
        obj = json.loads(line)
        if obj["kind"] == "record" and obj["envelope"]["cart"] == cart and obj["envelope"]["seq"] == seq:
            return i
    raise AssertionError(f"no record {cart} {seq}")


def test_an_untouched_export_is_proven(exported: tuple[Path, Ledger]) -> None:
    path, ledger = exported
    report = verify_file(path)
    assert report.ok and report.records == len(ledger.envelopes) and report.failures == []
    for cart in ledger.carts:
        assert report.carts[cart.cart].proven == [[1, cart.seq]] and report.carts[cart.cart].gaps == []
        assert report.carts[cart.cart].key_source == "file"
    text = render(report)
    assert "PROVEN: every hash, signature and chain link" in text and "records/s" in text


def test_one_byte_changed_names_the_record(exported: tuple[Path, Ledger], tmp_path: Path) -> None:
    path, ledger = exported
    lines = lines_of(path)
    i = record_line(lines, "CART-A", 5)
    target = json.loads(lines[i])["envelope"]
    lines[i] = lines[i].replace(b'"weight_g":', b'"weight_g":1', 1)  # one byte more: 800 g -> 1800 g
    bad = tmp_path / "altered.jsonl"
    bad.write_bytes(b"".join(lines))
    report = verify_file(bad)
    assert not report.ok
    assert [(f.line, f.record, f.seq) for f in report.failures] == [(i + 1, target["id"], 5)]
    assert report.failures[0].what.startswith("altered content")
    assert report.carts["CART-A"].proven == [[1, 4], [6, ledger.carts[0].seq]]
    assert f"FAIL line {i + 1} record {target['id']} cart CART-A seq 5: altered content" in render(report)


def test_a_changed_signature_is_a_bad_signature(exported: tuple[Path, Ledger], tmp_path: Path) -> None:
    path, _ = exported
    lines = lines_of(path)
    i = record_line(lines, "CART-B", 3)
    obj = json.loads(lines[i])
    sig = bytearray(obj["envelope"]["sig"].encode())
    sig[10] = ord("A") if sig[10] != ord("A") else ord("B")
    lines[i] = lines[i].replace(obj["envelope"]["sig"].encode(), bytes(sig))
    bad = tmp_path / "sig.jsonl"
    bad.write_bytes(b"".join(lines))
    failures = verify_file(bad).failures
    assert [(f.record, f.seq, f.what.split(":")[0]) for f in failures] == [(obj["envelope"]["id"], 3, "bad signature")]


def test_a_record_removed_from_the_middle_is_a_gap_and_a_broken_link(exported: tuple[Path, Ledger],
                                                                      tmp_path: Path) -> None:
    path, ledger = exported
    lines = lines_of(path)
    i = record_line(lines, "CART-A", 7)
    after = json.loads(lines[i + 1])["envelope"]
    del lines[i]
    bad = tmp_path / "removed.jsonl"
    bad.write_bytes(b"".join(lines))
    report = verify_file(bad)
    cart = report.carts["CART-A"]
    assert cart.gaps == [[7, 7]] and cart.proven == [[1, 6], [8, ledger.carts[0].seq]]
    link = [f for f in report.failures if f.what.startswith("chain break")]
    assert [(f.line, f.record, f.seq) for f in link] == [(i + 1, after["id"], 8)]
    assert "seqs 7-7 missing" in link[0].what
    assert any("the end line says" in f.what for f in report.failures)  # the count disagrees too


def test_a_swapped_key_fails_every_record_of_that_cart(exported: tuple[Path, Ledger], tmp_path: Path) -> None:
    path, ledger = exported
    a, b = ledger.carts
    text = path.read_text("utf-8").replace(a.public_key, b.public_key, 1)  # CART-A's key line now holds B's key
    bad = tmp_path / "swapped.jsonl"
    bad.write_text(text, "utf-8")
    report = verify_file(bad)
    assert {(f.cart, f.what.split(":")[0]) for f in report.failures} == {("CART-A", "bad signature")}
    assert len(report.failures) == a.seq and report.carts["CART-B"].failures == 0
    assert report.carts["CART-A"].proven == []
    # the inspector's own keys replace the file's: proven again, and said where each key came from
    trusted = ledger.write_keys(tmp_path / "keys")
    report = verify_file(bad, load_keys_dir(trusted), keys_label=str(trusted))
    assert report.ok and report.carts["CART-A"].key_source == f"{trusted}/CART-A.pub"
    assert report.carts["CART-A"].fingerprint == fingerprint(a.key.public_key())


def test_a_trusted_key_of_another_cart_fails(exported: tuple[Path, Ledger], tmp_path: Path) -> None:
    path, ledger = exported
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "CART-B.pub").write_text(ledger.carts[0].public_key)  # A's key given as B's
    report = verify_file(path, load_keys_dir(folder))
    assert {f.cart for f in report.failures} == {"CART-B"} and report.carts["CART-A"].key_source == "file"


def test_a_cut_file_and_a_malformed_line_are_failures(exported: tuple[Path, Ledger], tmp_path: Path) -> None:
    path, _ = exported
    lines = lines_of(path)
    bad = tmp_path / "cut.jsonl"
    bad.write_bytes(b"".join(lines[:-1]) + b"{not json\n")
    whats = [(f.line, f.what) for f in verify_file(bad).failures]
    assert whats == [(len(lines), "malformed line (not a JSON object)"),
                     (0, "the file has no end line: it was cut short")]


def test_a_file_that_is_not_an_export_is_unreadable(tmp_path: Path) -> None:
    other = tmp_path / "x.jsonl"
    other.write_text('{"kind":"something else"}\n')
    with pytest.raises(VerifyError, match="not a wastecart ledger export"):
        verify_file(other)
    with pytest.raises(VerifyError, match="cannot read"):
        verify_file(tmp_path / "missing.jsonl")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "C.pub").write_text("not a key")
    with pytest.raises(VerifyError, match=r"C\.pub: not a usable public key"):
        load_keys_dir(tmp_path / "keys")


def test_the_process_pool_finds_the_same(exported: tuple[Path, Ledger], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = exported
    lines = lines_of(path)
    i = record_line(lines, "CART-B", 4)
    del lines[i]
    bad = tmp_path / "removed.jsonl"
    bad.write_bytes(b"".join(lines))
    monkeypatch.setattr(verify_mod, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(verify_mod, "CHUNK", 7)
    pooled = verify_file(bad, workers=2)
    assert pooled.workers == 2
    single = verify_file(bad, workers=1)
    assert pooled.failures == single.failures and pooled.carts.keys() == single.carts.keys()
    assert [c.proven for c in pooled.carts.values()] == [c.proven for c in single.carts.values()]


def test_fingerprint_is_the_first_16_hex_of_the_raw_key_hash(exported: tuple[Path, Ledger]) -> None:
    key = exported[1].carts[0].key.public_key()
    raw = wire.load_public_key(wire.public_key_text(key))
    assert fingerprint(raw) == hashlib.sha256(base64.b64decode(wire.public_key_text(key))).hexdigest()[:16]


def test_a_cart_without_a_key_is_unverifiable_not_proven(exported: tuple[Path, Ledger], tmp_path: Path) -> None:
    path, ledger = exported
    lines = lines_of(path)
    for i, line in enumerate(lines):
        obj = json.loads(line)
        if obj["kind"] == "key" and obj["cart"] == "CART-A":
            lines[i] = (json.dumps({**obj, "public_key": None}) + "\n").encode()
    bare = tmp_path / "nokey.jsonl"
    bare.write_bytes(b"".join(lines))
    report = verify_file(bare)
    assert not report.ok and report.carts["CART-A"].proven == []
    assert len(report.failures) == ledger.carts[0].seq
    assert all(f.cart == "CART-A" and "no public key" in f.what for f in report.failures)
    assert report.carts["CART-B"].proven == [[1, ledger.carts[1].seq]]
