"""The simulated platform over real HTTP: receipts, duplicates, 400s, injected faults, /control."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sim_devices.platform import SimPlatform
from tests.procs import running

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def platform() -> Iterator[SimPlatform]:
    with SimPlatform(seed=1) as p:
        yield p


@pytest.fixture
def http(platform: SimPlatform) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=platform.url, timeout=10) as c:
        yield c


def test_receipts_and_duplicates_are_counted(platform: SimPlatform, http: httpx.Client) -> None:
    r = http.post("/records", json={"id": "a", "seq": 1}, headers={"Idempotency-Key": "a"})
    assert (r.status_code, r.json()) == (201, {"id": "a", "status": "accepted"})
    r = http.post("/records", json={"id": "a", "seq": 1})
    assert (r.status_code, r.json()) == (200, {"id": "a", "status": "accepted", "duplicate": True})
    assert http.post("/records", json={"id": "b"}).status_code == 201

    listed = http.get("/records").json()
    assert [(i["id"], i["received_count"]) for i in listed] == [("a", 2), ("b", 1)]
    assert listed[0]["record"] == {"id": "a", "seq": 1}
    assert isinstance(listed[0]["first_received_at"], float)
    assert platform.records() == listed
    assert platform.counts() == {"distinct": 2, "receipts": 3, "duplicates": 1, "injected_errors": 0,
                                 "bad_requests": 0}


@pytest.mark.parametrize(("body", "headers", "reason"), [
    (b"{not json", {}, "not JSON"),
    (b"[1, 2]", {}, "non-empty string 'id'"),
    (b'{"id": ""}', {}, "non-empty string 'id'"),
    (b'{"seq": 1}', {}, "non-empty string 'id'"),
    (b'{"id": "x"}', {"Idempotency-Key": "y"}, "does not match"),
])
def test_bad_requests_get_400_with_a_reason(http: httpx.Client, platform: SimPlatform, body: bytes,
                                            headers: dict[str, str], reason: str) -> None:
    r = http.post("/records", content=body, headers={"Content-Type": "application/json", **headers})
    assert r.status_code == 400
    assert reason in r.json()["error"]
    assert platform.records() == []


def test_error_rate_one_fails_every_post_but_not_reads(platform: SimPlatform, http: httpx.Client) -> None:
    platform.error_rate = 1.0
    for _ in range(3):
        assert http.post("/records", json={"id": "a"}).status_code == 503
    assert http.get("/records").json() == []
    assert platform.counts()["injected_errors"] == 3


def test_error_rate_half_fails_about_half(platform: SimPlatform, http: httpx.Client) -> None:
    platform.set_faults(error_rate=0.5)
    codes = [http.post("/records", json={"id": f"r{i}"}).status_code for i in range(60)]
    assert 10 < codes.count(503) < 50
    assert codes.count(201) == len(platform.records())


def test_control_at_run_time(platform: SimPlatform, http: httpx.Client) -> None:
    assert http.get("/control").json() == {"error_rate": 0.0, "latency_ms": 0, "down": False}
    r = http.post("/control", json={"latency_ms": 50})
    assert r.json() == {"error_rate": 0.0, "latency_ms": 50, "down": False}
    r = http.post("/records", json={"id": "a"})
    assert r.status_code == 201
    assert r.elapsed.total_seconds() >= 0.05
    assert platform.faults == {"error_rate": 0.0, "latency_ms": 50, "down": False}


def test_down_refuses_connections_and_comes_back_on_the_same_port(platform: SimPlatform) -> None:
    url, port = platform.url, platform.port
    with httpx.Client(base_url=platform.control_url, timeout=10) as control:
        assert control.post("/control", json={"down": True}).json()["down"] is True
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{url}/records", json={"id": "a"}, timeout=5)
        assert control.get("/records").json() == []  # the control port still reads
        assert control.post("/records", json={"id": "a"}).status_code == 404  # but takes no records
        assert control.post("/control", json={"down": False}).json()["down"] is False
    assert platform.port == port
    assert httpx.post(f"{url}/records", json={"id": "a"}, timeout=5).status_code == 201


def test_down_from_the_main_port_and_at_start() -> None:
    with SimPlatform(down=True) as p:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{p.url}/records", timeout=5)
        p.down = False
        assert httpx.post(f"{p.url}/control", json={"down": True}, timeout=5).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{p.url}/control", timeout=5)
        assert httpx.post(f"{p.control_url}/control", json={"down": False}, timeout=5).status_code == 200
        assert httpx.get(f"{p.url}/records", timeout=5).json() == []


def test_idempotency_key_repeats_are_counted_not_stored_twice(platform: SimPlatform, http: httpx.Client) -> None:
    for expected in (201, 200, 200):
        r = http.post("/records", json={"id": "k1", "n": expected}, headers={"Idempotency-Key": "k1"})
        assert r.status_code == expected
    assert r.json() == {"id": "k1", "status": "accepted", "duplicate": True}
    item = platform.records()[0]
    assert (item["received_count"], item["record"]["n"]) == (3, 201)  # the first one stands
    assert http.get("/stats").json() == {"records": 1, "receipts": 3, "duplicates": 2, "injected_errors": 0,
                                         "bad_requests": 0}


@pytest.mark.parametrize("body", [
    {"error_rate": 1.5}, {"error_rate": "high"}, {"error_rate": True}, {"latency_ms": -1},
    {"latency_ms": 1.5}, {"down": "yes"}, {"speed": 1}, [1],
])
def test_control_rejects_bad_values(http: httpx.Client, platform: SimPlatform, body: object) -> None:
    r = http.post("/control", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]
    assert platform.faults == {"error_rate": 0.0, "latency_ms": 0, "down": False}


def test_bad_start_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        SimPlatform(error_rate=2)


def test_stop_closes_the_ports() -> None:
    p = SimPlatform().start()
    urls = [p.url, p.control_url]
    p.stop()
    for url in urls:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/records", timeout=5)


def test_cli_prints_where_it_listens_and_stops_on_sigterm() -> None:
    with running("sim", "platform", "--error-rate", "1", stderr=None) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("platform listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        control = proc.stdout.readline().strip()
        assert control.startswith("platform control on http://127.0.0.1:")
        assert httpx.post(f"{url}/records", json={"id": "a"}, timeout=5).status_code == 503
        assert httpx.get(f"{control.rsplit(' ', 1)[1]}/stats", timeout=5).json()["injected_errors"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
