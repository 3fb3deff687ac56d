"""Stability for indicators whose frames carry no motion flag (reference §8.4).

Pure: the caller passes each reading's time (``ScaleReader`` passes its injected clock).  Rule:
the readings since the current *run* began all lie within ``tolerance_g`` of each other (max −
min, so a slow creep breaks the run too), the run spans at least ``window_s`` and holds at least
``min_readings`` readings → stable.  A reading outside the band starts a new run (unstable); a
frame without a weight (checksum error, overload, …) ends the run (§8.4: reset on any invalid
frame).

Where the indicator sends its own stable/motion flag, that flag always wins; this detector only
decides for protocols registered with ``stable_flag=False`` (or frames that carry no flag).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StabilitySettings:
    """``division_g``: the indicator's display division (d) in grams; ``tolerance_d``: how many
    divisions readings may spread and still count as one value (§8.4: identical or ±1 d)."""

    division_g: int = 1  # g: 1 g suits the small carts' 0.001 kg display; set per indicator
    tolerance_d: int = 1  # divisions
    window_s: float = 0.7  # s: §8.4 asks for 0.5–1 s of steady readings
    min_readings: int = 5  # §8.4: N ≥ 5 readings (≈ 0.5 s at 10 frames/s)

    def __post_init__(self) -> None:
        if self.division_g < 1:
            raise ValueError(f"division_g must be ≥ 1 g, got {self.division_g}")
        if self.tolerance_d < 0:
            raise ValueError(f"tolerance_d must be ≥ 0, got {self.tolerance_d}")
        if self.window_s <= 0:
            raise ValueError(f"window_s must be > 0 s, got {self.window_s}")
        if self.min_readings < 1:
            raise ValueError(f"min_readings must be ≥ 1, got {self.min_readings}")

    @property
    def tolerance_g(self) -> int:
        return self.division_g * self.tolerance_d


class StabilityDetector:
    """Feed every reading's weight (or None for a frame without one) with its time; get ``stable``."""

    def __init__(self, settings: StabilitySettings | None = None) -> None:
        self.settings = settings or StabilitySettings()
        self._since: float | None = None  # time of the run's first reading
        self._lo = self._hi = 0  # g: band of the current run
        self._count = 0

    def reset(self) -> None:
        self._since = None
        self._count = 0

    def update(self, weight_g: int | None, now: float) -> bool:
        if weight_g is None:
            self.reset()
            return False
        lo, hi = min(self._lo, weight_g), max(self._hi, weight_g)
        if self._since is None or hi - lo > self.settings.tolerance_g or now < self._since:
            self._since, self._lo, self._hi, self._count = now, weight_g, weight_g, 1
        else:
            self._lo, self._hi, self._count = lo, hi, self._count + 1
        return now - self._since >= self.settings.window_s and self._count >= self.settings.min_readings
