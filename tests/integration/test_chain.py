"""The walking skeleton end to end: virtual scale on a pty → camera frames → cart workflow →
SQLite ledger → real mosquitto → gateway → simulated platform over HTTP, and back (acks)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge import wire
from edge.ledger.export import read_ledger
from wastecart.broker import PrivateBroker
from wastecart.demo import Demo


def test_rounds_reach_the_platform_exactly_once(broker: PrivateBroker, tmp_path: Path) -> None:
    demo = Demo(rounds=2, bags_per_round=2, data=tmp_path, broker_url=broker.url)
    try:
        demo.start()
        for n in (1, 2):
            demo.round(n)
        demo.drain()
        summary = demo.summary(0.0)
        at_platform = {r["id"]: r for r in demo.platform.records()}
        public_key = demo.cart.key.public_key()
        gateway_stats = demo.gateway.stats()
    finally:
        demo.stop()

    assert summary["committed"] == summary["stored_at_gateway"] == summary["accepted_by_platform"] == 2
    assert summary["duplicates_at_platform"] == 0
    assert gateway_stats["quarantined"] == 0
    ledger = read_ledger(tmp_path / "cart")
    assert [row["seq"] for row in ledger] == [1, 2]
    assert all(row["synced"] for row in ledger)  # acked by the gateway, not just PUBACKed
    assert set(at_platform) == {row["id"] for row in ledger}
    prev = wire.GENESIS_HASH
    for row in ledger:
        env = row["record"]
        wire.verify_seal(env, public_key)
        assert env["prev_hash"] == prev
        prev = env["hash"]
        body = env["body"]
        assert body["org"] == "H330100001"
        assert body["from_party"]["person_id"].startswith("NUR-")
        assert body["to_party"] == {"person_id": "COL-0001", "name": "王建华", "device_id": "CART-01"}
        assert len(body["lines"]) == 2
        assert sum(t["weight_g"] for t in body["totals"]) == sum(ln["weight_g"] for ln in body["lines"])
        for line in body["lines"]:
            assert line["weighing"]["stable"] is True
            assert line["weighing"]["protocol"] == "toledo"
        forwarded = at_platform[row["id"]]["record"]
        assert forwarded["hash"] == env["hash"]
        assert forwarded["body"] == body


def test_demo_command_prints_a_consistent_json_summary(tmp_path: Path) -> None:
    """`wastecart demo --rounds 1 --exit --json` with nothing running: its own broker and all."""
    proc = subprocess.run(
        [sys.executable, "-m", "wastecart.cli", "demo", "--rounds", "1", "--exit", "--json",
         "--data", str(tmp_path)], capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rounds"] == 1
    assert summary["committed"] == summary["stored_at_gateway"] == summary["accepted_by_platform"] == 1
    assert summary["duplicates_at_platform"] == 0
    assert summary["seconds"] > 0
    for part in ("broker", "platform", "gateway", "scale", "camera", "cart"):
        assert part in proc.stderr
    ledger = subprocess.run(
        [sys.executable, "-m", "wastecart.cli", "edge", "ledger", "--data", str(tmp_path / "cart"), "--json"],
        capture_output=True, text=True, timeout=30, check=True)
    rows = [json.loads(line) for line in ledger.stdout.splitlines()]
    assert [(r["seq"], r["type"], r["synced"]) for r in rows] == [(1, "handover", True)]
    assert set(rows[0]) == {"id", "seq", "type", "created_at", "synced", "rejected"}


def _demo(*args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "wastecart.cli", "demo", "--rounds", "1", "--exit", "--json",
                           "--port", "0", *args], capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr
    summary: dict[str, Any] = json.loads(proc.stdout)
    summary["stderr"] = proc.stderr
    return summary


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A data folder the ``mosquitto`` user can reach (pytest's tmp_path lives under a 0700 folder)."""
    path = Path(tempfile.mkdtemp(prefix="wc-test-demo-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_demo_secure_runs_on_the_generated_broker_config_and_again_on_the_same_data(open_folder: Path) -> None:
    """`demo --secure`: a site PKI in DATA/pki, mosquitto from `broker config` (TLS, client certificates,
    per-client ACL); run twice on the same folder, the second run delivers its own round too (new bag
    labels, fresh camera frames, a summary of this run)."""
    tmp_path = open_folder
    for _ in range(2):
        summary = _demo("--secure", "--data", str(tmp_path))
        assert summary["committed"] == summary["stored_at_gateway"] == summary["accepted_by_platform"] == 1
        assert "mqtts://localhost:" in summary["stderr"] and "TLS, client certificates" in summary["stderr"]
    conf = (tmp_path / "broker-tls" / "mosquitto.conf").read_text()
    assert "require_certificate true" in conf and "use_identity_as_username true" in conf
    acl = (tmp_path / "broker-tls" / "acl").read_text()
    assert "user CART-01" in acl and "user GW-DEMO" in acl and "topic read #" not in acl
    ledger = subprocess.run(
        [sys.executable, "-m", "wastecart.cli", "edge", "ledger", "--data", str(tmp_path / "cart"), "--json"],
        capture_output=True, text=True, timeout=30, check=True)
    assert [(r["seq"], r["synced"]) for r in map(json.loads, ledger.stdout.splitlines())] == [(1, True), (2, True)]
