"""Auto-detection scoring (reference §8.2) over canned byte streams made by the simulators."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.devices.scales import PROTOCOLS
from edge.devices.scales.detect import ACCEPT, Candidate, harmless_request, rank, score
from sim_devices.scales import SIMS, ScaleState
from sim_devices.scales.base import even_parity_7e1, uart_resample

COVERED = sorted(set(SIMS) & set(PROTOCOLS))


def stream(protocol: str, n: int = 12, cut: int = 5) -> bytes:
    """``n`` frames of a settled load, starting ``cut`` bytes into the first (joined mid-frame);
    a command-mode indicator's frames are its answers to the probe detection would send."""
    sim = SIMS[protocol]()
    request = harmless_request(PROTOCOLS[protocol])

    def one(s: ScaleState) -> bytes:
        if sim.streaming or request is None:
            return sim.frame(s)
        return sim.answer(request.rstrip(b"\r\n"), s) or b""

    return b"".join(one(ScaleState(12_340 + 10 * (i // 4), motion=False)) for i in range(n))[cut:]


SEVEN_BIT = [p for p in COVERED if max(stream(p), default=0) < 0x80]  # binary fields do not survive 7E1


@pytest.mark.parametrize("protocol", COVERED)
def test_each_simulated_protocol_is_recognised(protocol: str) -> None:
    found = rank(score(stream(protocol)))
    assert found.best is not None, found.as_json()
    assert protocol == found.best.protocol or protocol in found.ambiguous_with, found.as_json()
    assert found.best.confidence >= ACCEPT and found.best.errors == 0


@pytest.mark.parametrize("protocol", SEVEN_BIT)
def test_a_7e1_indicator_read_as_8n1_is_recognised_and_labelled(protocol: str) -> None:
    found = rank(score(even_parity_7e1(stream(protocol))))
    assert found.best is not None and found.best.framing == "7E1", found.as_json()
    assert protocol == found.best.protocol or protocol in found.ambiguous_with


@pytest.mark.parametrize("protocol", COVERED)
@pytest.mark.parametrize(("sent", "read"), [(2400, 9600), (9600, 2400), (1200, 4800)])
def test_the_wrong_baud_recognises_nothing(protocol: str, sent: int, read: int) -> None:
    found = rank(score(uart_resample(stream(protocol), sent, read)))
    assert found.best is None, found.as_json()


def test_toledo_with_and_without_checksum_cannot_be_told_apart_from_an_18_byte_stream() -> None:
    found = rank(score(stream("toledo")))
    assert found.best is not None and found.best.protocol == "toledo"  # the checked reading is preferred
    assert "toledo-nochk" in found.ambiguous_with
    assert found.as_json()["ambiguous_with"] == found.ambiguous_with


def test_a_17_byte_stream_is_toledo_without_checksum_only() -> None:
    found = rank(score(stream("toledo-nochk")))
    assert found.best is not None and found.best.protocol == "toledo-nochk"
    assert "toledo" not in found.ambiguous_with


@pytest.mark.skipif(not {"yaohua-eq-r", "yaohua-eq-f"} <= set(SIMS) & set(PROTOCOLS), reason="not landed")
def test_reversed_and_forward_eq_formats_are_reported_ambiguous_when_the_digits_allow() -> None:
    """Both read the other's frames (with other digits): only a reference mass decides (§8.2.3)."""
    for protocol in ("yaohua-eq-r", "yaohua-eq-f"):
        found = rank(score(stream(protocol)))
        assert found.best is not None
        assert {found.best.protocol, *found.ambiguous_with} >= {"yaohua-eq-r", "yaohua-eq-f"}, found.as_json()


def test_nothing_is_recognised_in_silence_or_noise() -> None:
    assert rank(score(b"")).best is None
    noise = random.Random(1).randbytes(2000)
    assert rank(score(noise)).best is None


@settings(max_examples=50)
@given(st.binary(max_size=400))
def test_scoring_never_crashes_and_stays_in_range(data: bytes) -> None:
    for c in score(data):
        assert 0.0 <= c.confidence <= 1.0 and 0.0 <= c.coverage <= 1.0 and c.frames >= 1


def test_the_best_candidate_wins_across_bauds() -> None:
    low = Candidate("toledo", 4800, "8N1", 2, 1, 0.5, 0.3)
    high = Candidate("toledo", 9600, "8N1", 9, 0, 1.0, 1.0)
    other = Candidate("toledo-nochk", 9600, "8N1", 9, 0, 0.5, 0.5)
    found = rank([low, other, high])
    assert found.best == high and found.ambiguous_with == []
    assert [c.protocol for c in found.candidates] == ["toledo", "toledo-nochk"]


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_probes_are_only_harmless_requests(protocol: str) -> None:
    spec = PROTOCOLS[protocol]
    request = harmless_request(spec)
    assert request in (None, spec.poll, spec.start)
    if request is not None:
        assert all(request not in (s.zero, s.tare) for s in PROTOCOLS.values())
