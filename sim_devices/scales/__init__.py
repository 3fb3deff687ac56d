"""Virtual scales: one module per protocol family, registered in ``SIMS`` (imported explicitly)."""

from sim_devices.scales import ad, cas, mtsics, ohaus, toledo, yaohua  # noqa: F401  (they register)
from sim_devices.scales.base import SIMS, ScaleState, SimProtocol, VirtualScale

__all__ = ["SIMS", "ScaleState", "SimProtocol", "VirtualScale"]
