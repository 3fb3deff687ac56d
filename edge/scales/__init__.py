"""The scale: indicator protocols (pure parsers), the registry, and the reader thread.

Import from here: ``from edge.scales import PROTOCOLS, Reading, ScaleReader``.  Every protocol
module is imported below, explicitly, so the registry is complete (DESIGN §2: explicit registry).
"""

from edge.scales import ad, cas, mtsics, ohaus, toledo, yaohua  # noqa: F401  (they register protocols)
from edge.scales.base import PROTOCOLS, Parser, ProtocolSpec, Reading, get_protocol
from edge.scales.reader import ScaleReader, open_port
from edge.scales.stability import StabilityDetector, StabilitySettings

__all__ = ["PROTOCOLS", "Parser", "ProtocolSpec", "Reading", "ScaleReader", "StabilityDetector",
           "StabilitySettings", "get_protocol", "open_port"]
