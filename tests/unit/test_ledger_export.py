"""`wastecart edge ledger`: the records read through sqlite-utils (read-only), as text, JSON and CSV."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from edge.errors import StoreError
from edge.ledger import export
from edge.ledger.store import LEDGER_FILE, Ledger
from wastecart.cli import main

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
CLOCK = wire.Clock("unsynced", 1)
DEPARTMENTS = ("心内科", "急诊科", "检验科")


@pytest.fixture
def cart(tmp_path: Path) -> Path:
    """A cart's data folder with three records, the first one acknowledged by the gateway."""
    led = Ledger(tmp_path, "CART-01", Ed25519PrivateKey.generate())
    for n, dept in enumerate(DEPARTMENTS):
        led.commit("handover", {"department": dept, "n": n}, now=NOW, clock=CLOCK)
    led.mark_synced(1, [], NOW)
    led.close()
    return tmp_path


def test_json_lines_keep_their_keys(cart: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "ledger", "--data", str(cart), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [list(r) for r in rows] == [["id", "seq", "type", "created_at", "synced", "rejected"]] * 3
    assert [(r["seq"], r["type"], r["synced"]) for r in rows] == [(1, "handover", True), (2, "handover", False),
                                                                 (3, "handover", False)]
    assert rows[0]["created_at"] == "2026-11-28T09:00:00.000+00:00"


def test_json_full_has_the_signed_record_with_its_chinese(cart: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "ledger", "--data", str(cart), "--json", "--full"]) == 0
    out = capsys.readouterr().out
    assert "心内科" in out  # as itself, not \u escapes
    rows = [json.loads(line) for line in out.splitlines()]
    assert list(rows[0]) == ["id", "seq", "type", "created_at", "synced", "rejected", "synced_at", "rejected_at",
                             "rejected_detail", "record"]
    assert rows[0]["synced_at"] == "2026-11-28T09:00:00.000+00:00" and rows[1]["synced_at"] is None
    assert [r["record"]["body"]["department"] for r in rows] == list(DEPARTMENTS)


def test_text_listing(cart: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "ledger", "--data", str(cart)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].split()[0] == "1" and lines[0].endswith("synced")
    assert lines[2].split()[0] == "3" and lines[2].endswith("UNSENT")


def test_csv_export_to_a_file(cart: Path, tmp_path: Path) -> None:
    out = tmp_path / "export" / "ledger.csv"
    out.parent.mkdir()
    assert main(["edge", "ledger", "--data", str(cart), "--csv", "--full", "--out", str(out)]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: a spreadsheet reads the rest as UTF-8
    with out.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["id", "seq", "type", "created_at", "synced", "rejected", "synced_at",
                                     "rejected_at", "rejected_detail", "record"]
        rows = list(reader)
    assert len(rows) == 3
    assert [(r["seq"], r["synced"]) for r in rows] == [("1", "true"), ("2", "false"), ("3", "false")]
    assert [json.loads(r["record"])["body"]["department"] for r in rows] == list(DEPARTMENTS)
    # The record column is the exact text that was signed: the seal still verifies from the CSV.
    for r in rows:
        env = json.loads(r["record"])
        assert r["record"].encode("utf-8") == wire.encode(env)
    assert not list(out.parent.glob(".*.tmp"))  # written through a temporary file, then renamed


def test_csv_to_stdout_has_the_brief_columns(cart: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "ledger", "--data", str(cart), "--csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["id", "seq", "type", "created_at", "synced", "rejected"]
    assert len(rows) == 1 + 3


def test_an_empty_ledger_exports_a_header_only(tmp_path: Path) -> None:
    Ledger(tmp_path, "CART-01", Ed25519PrivateKey.generate()).close()
    buf = io.StringIO()
    assert export.write_csv(export.listing(tmp_path), buf) == 0
    assert buf.getvalue() == "id,seq,type,created_at,synced,rejected\n"


def test_reading_never_writes(cart: Path) -> None:
    """Read-only connection: the export cannot change the ledger it reads (same bytes after)."""
    before = (cart / LEDGER_FILE).read_bytes()
    assert len(export.read_ledger(cart)) == 3
    assert (cart / LEDGER_FILE).read_bytes() == before


def test_a_missing_ledger_and_an_unwritable_out_are_one_line_errors(
        tmp_path: Path, cart: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(StoreError, match="no ledger at"):
        export.listing(tmp_path / "nope")
    assert main(["edge", "ledger", "--data", str(tmp_path / "nope"), "--csv"]) == 2
    assert "no ledger at" in capsys.readouterr().err
    assert main(["edge", "ledger", "--data", str(cart), "--csv", "--out", str(tmp_path / "no" / "x.csv")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_a_rejected_record_shows_its_reason_everywhere(cart: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A record the gateway rejected: the reason in --json, a column in --csv, REJECTED in the listing."""
    led = Ledger(cart, "CART-01", Ed25519PrivateKey.generate())
    second = led.unsynced()[0]
    sha = hashlib.sha256(second.payload).hexdigest()
    assert led.mark_rejected(second.id, second.seq, sha, "ALTERED", "hash mismatch", NOW) == "marked"
    led.close()
    assert main(["edge", "ledger", "--data", str(cart), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["seq"], r["synced"], r["rejected"]) for r in rows] == [(1, True, None), (2, False, "ALTERED"),
                                                                     (3, False, None)]
    assert main(["edge", "ledger", "--data", str(cart), "--csv"]) == 0
    assert [r["rejected"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))] == ["", "ALTERED", ""]
    assert main(["edge", "ledger", "--data", str(cart)]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith("REJECTED ALTERED")
    full = export.listing(cart, full=True)[1]
    assert (full["rejected_detail"], full["rejected_at"]) == ("hash mismatch", "2026-11-28T09:00:00.000+00:00")


def test_a_ledger_from_before_rejects_is_listed_read_only(cart: Path) -> None:
    """A ledger the upgraded agent has not opened yet (no migration 2): listed, rejected None, untouched."""
    with sqlite_utils.Database(cart / LEDGER_FILE) as db:
        db.execute("PRAGMA user_version=1")
        db.execute("DROP INDEX records_unsent")
        for column in ("rejected_reason", "rejected_detail", "rejected_at"):
            db.execute(f"ALTER TABLE records DROP COLUMN {column}")
    before = (cart / LEDGER_FILE).read_bytes()
    assert [r["rejected"] for r in export.listing(cart)] == [None, None, None]
    assert (cart / LEDGER_FILE).read_bytes() == before
