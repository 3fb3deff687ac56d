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

from pydantic import BaseModel, ConfigDict, Field


class StabilitySettings(BaseModel):
    """When readings without a motion flag count as stable: within ``tolerance_d`` divisions
    (``division_g`` each) of each other for ``window_s`` and ``min_readings`` frames (§8.4: identical
    or ±1 d).  Also the stability part of ``[scale]`` in the cart's config (``edge.config.ScaleConfig``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # For indicators without a motion flag (Yaohua tF=0, "=" formats …): readings within
    # tolerance_d divisions of each other for window_s (and min_readings frames) count as stable.
    division_g: int = Field(1, ge=1)  # the scale's display division e, in grams (a 150 kg cart scale: 50 g)
    tolerance_d: int = Field(1, ge=1)  # divisions
    window_s: float = Field(0.7, gt=0, le=10)  # s: §8.4 asks for 0.5–1 s of steady readings
    min_readings: int = Field(5, ge=1)  # §8.4: N ≥ 5 readings (≈ 0.5 s at 10 frames/s)

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
