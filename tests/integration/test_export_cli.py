"""``wastecart gateway export`` and ``wastecart verify`` as a person runs them: the installed command in
a subprocess, on a store filled with real signed records; exit codes and what is printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.export_fixtures import Ledger, fill

WASTECART = str(Path(sys.executable).parent / "wastecart")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WASTECART, *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ledger]:
    folder = tmp_path_factory.mktemp("cli")
    ledger = fill(folder)
    ledger.write_keys(folder / "keys")
    return folder, ledger


def test_xlsx_and_csv_exports_print_rows_file_and_seconds(data: tuple[Path, Ledger], tmp_path: Path) -> None:
    folder, ledger = data
    out = tmp_path / "ledger.xlsx"
    done = run("gateway", "export", "--data", folder, "--format", "xlsx", "--out", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"exported {len(ledger.bags)} rows to {out} (")
    assert done.stdout.rstrip().endswith(" s") and "\r[" not in done.stderr  # no bar when stderr is no terminal
    book = load_workbook(out, read_only=True)
    assert book.sheetnames == ["台账", "汇总", "说明"]
    assert sum(1 for _ in book["台账"].iter_rows()) == len(ledger.bags) + 1
    book.close()
    csv_out = tmp_path / "icu.csv"
    done = run("gateway", "export", "--data", folder, "--format", "csv", "--out", csv_out, "--department", "ICU",
               "--from", "2026-11-02", "--to", "2026-11-02")
    want = [b for b in ledger.bags if b.department == "ICU" and b.at.date().isoformat() == "2026-11-02"]
    assert done.returncode == 0 and done.stdout.startswith(f"exported {len(want)} rows")
    assert csv_out.read_bytes().startswith(b"\xef\xbb\xbf")


def test_jsonl_export_is_verified_and_a_changed_byte_is_named(data: tuple[Path, Ledger], tmp_path: Path) -> None:
    folder, ledger = data
    out = tmp_path / "ledger.jsonl"
    done = run("gateway", "export", "--data", folder, "--format", "jsonl", "--out", out,
               "--cart-keys-dir", folder / "keys")
    assert done.returncode == 0 and done.stdout.startswith(f"exported {len(ledger.envelopes)} records")
    checked = run("verify", out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"PROVEN: every hash, signature and chain link of {len(ledger.envelopes)} records of 2 carts" \
        in checked.stdout
    assert "cart CART-A: " in checked.stdout and "proven seqs 1-" in checked.stdout
    trusted = run("verify", out, "--keys", folder / "keys", "--json")
    report = json.loads(trusted.stdout)
    assert trusted.returncode == 0 and report["ok"] and report["carts"]["CART-A"]["key_source"].endswith("CART-A.pub")

    lines = out.read_bytes().splitlines(keepends=True)
    victim = json.loads(lines[10])["envelope"]
    lines[10] = lines[10].replace(b'"person_id":"C0001"', b'"person_id":"C0002"', 1)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(lines))
    failed = run("verify", bad)
    assert failed.returncode == 1
    assert f"FAIL line 11 record {victim['id']} cart {victim['cart']} seq {victim['seq']}: altered content" \
        in failed.stdout
    assert "NOT PROVEN: 1 failures" in failed.stdout


def test_a_jsonl_without_the_config_carries_the_keys_the_gateway_verified_with(data: tuple[Path, Ledger],
                                                                              tmp_path: Path) -> None:
    folder, _ = data
    out = tmp_path / "nokeys.jsonl"
    assert run("gateway", "export", "--data", folder, "--format", "jsonl", "--out", out).returncode == 0
    checked = run("verify", out)
    assert checked.returncode == 0 and "PROVEN" in checked.stdout, checked.stdout
    assert "key CART-A: " in checked.stdout and "(from file)" in checked.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "pdf"], "--format: 'pdf' is not one of xlsx, csv, jsonl"),
    (["--format", "csv", "--from", "2026-13-01"], "--from: '2026-13-01' is not a date (YYYY-MM-DD)"),
    (["--format", "csv", "--from", "2026-11-03", "--to", "2026-11-01"], "--to: 2026-11-01 is before from"),
    (["--format", "jsonl", "--department", "ICU"], "--department: a jsonl export takes only from, to and cart"),
    (["--format", "csv", "--category", "GLASS"], "--category: 'GLASS' is not a waste category"),
])
def test_bad_flags_are_one_line_naming_the_flag(data: tuple[Path, Ledger], tmp_path: Path, args: list[str],
                                                message: str) -> None:
    done = run("gateway", "export", "--data", data[0], "--out", tmp_path / "x", *args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def test_no_database_and_an_unwritable_out_are_clear(data: tuple[Path, Ledger], tmp_path: Path) -> None:
    done = run("gateway", "export", "--data", tmp_path, "--format", "csv", "--out", tmp_path / "x.csv")
    assert done.returncode == 2 and "no gateway database here" in done.stderr
    done = run("gateway", "export", "--data", data[0], "--format", "csv", "--out", tmp_path / "no" / "x.csv")
    assert done.returncode == 2 and "--out:" in done.stderr and "Traceback" not in done.stderr


def test_verify_of_an_unusable_file_exits_2(tmp_path: Path) -> None:
    done = run("verify", tmp_path / "missing.jsonl")
    assert done.returncode == 2 and "cannot read" in done.stderr
    (tmp_path / "other.jsonl").write_text("hello\n")
    done = run("verify", tmp_path / "other.jsonl")
    assert done.returncode == 2 and "not a wastecart ledger export" in done.stderr


def test_help_describes_every_flag() -> None:
    done = run("gateway", "export", "--help")
    for flag in ("--data", "--format", "--out", "--from", "--to", "--cart", "--department", "--category",
                 "--config", "--cart-keys-dir"):
        assert flag in done.stdout
    assert "--keys" in run("verify", "--help").stdout
