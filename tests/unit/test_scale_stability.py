"""The stability detector for indicators without a motion flag (reference §8.4): pure, clock injected."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.devices.scales.stability import StabilityDetector, StabilitySettings

WINDOW = 0.5


def run(det: StabilityDetector, stream: list[tuple[float, int | None]]) -> list[bool]:
    return [det.update(w, t) for t, w in stream]


@given(weight=st.integers(-10**6, 10**6), period_ms=st.integers(1, 300), n=st.integers(1, 60))
def test_a_constant_stream_becomes_stable_exactly_after_the_window(weight: int, period_ms: int, n: int) -> None:
    det = StabilityDetector(StabilitySettings(window_s=WINDOW, min_readings=1))
    times = [i * period_ms / 1000 for i in range(n)]
    assert run(det, [(t, weight) for t in times]) == [t >= WINDOW for t in times]


@given(
    start=st.integers(-10**5, 10**5),
    steps=st.lists(st.integers(3, 500).flatmap(lambda m: st.sampled_from([m, -m])), min_size=1, max_size=80),
    division=st.integers(1, 2),
    period_ms=st.integers(1, 2000),
)
def test_noise_beyond_the_tolerance_never_yields_stable(start: int, steps: list[int], division: int,
                                                        period_ms: int) -> None:
    """Every reading differs from the one before by more than 1 d: never stable, however long."""
    det = StabilityDetector(StabilitySettings(division_g=division, window_s=WINDOW, min_readings=1))
    weights = [start]
    for step in steps:
        weights.append(weights[-1] + step * division)
    assert not any(run(det, [(i * period_ms / 1000, w) for i, w in enumerate(weights)]))


@given(jitter=st.lists(st.integers(0, 5), min_size=20, max_size=40))
def test_readings_within_one_division_are_one_value(jitter: list[int]) -> None:
    det = StabilityDetector(StabilitySettings(division_g=5, window_s=WINDOW, min_readings=5))
    out = run(det, [(i * 0.1, 1000 + j) for i, j in enumerate(jitter)])
    assert out[:5] == [False] * 5 and all(out[5:])  # 0.5 s and 5 readings after the first


def test_the_minimum_count_holds_at_a_slow_rate() -> None:
    det = StabilityDetector(StabilitySettings(window_s=WINDOW, min_readings=5))
    assert run(det, [(i * 1.0, 700) for i in range(6)]) == [False] * 4 + [True, True]


def test_a_slow_creep_is_not_stable() -> None:
    """Each step is within 1 d of the last, but the band (max − min) outgrows it: restart."""
    det = StabilityDetector(StabilitySettings(division_g=1, window_s=WINDOW, min_readings=1))
    assert not any(run(det, [(i * 0.2, 1000 + i) for i in range(50)]))


def test_an_invalid_frame_restarts_the_window() -> None:
    det = StabilityDetector(StabilitySettings(window_s=WINDOW, min_readings=1))
    assert run(det, [(0.0, 5), (0.6, 5), (0.7, None), (0.8, 5), (1.2, 5), (1.3, 5)]) == [
        False, True, False, False, False, True]  # fmt: skip


def test_leaving_the_band_makes_it_unstable_at_once() -> None:
    det = StabilityDetector(StabilitySettings(window_s=WINDOW, min_readings=1))
    assert run(det, [(0.0, 5), (0.6, 5), (0.7, 9), (0.8, 5)]) == [False, True, False, False]


@pytest.mark.parametrize(("field", "value"), [("division_g", 0), ("tolerance_d", -1), ("window_s", 0.0),
                                             ("min_readings", 0)])
def test_bad_settings_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        StabilitySettings(**{field: value})
