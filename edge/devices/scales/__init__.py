"""The scale: indicator protocols (pure parsers), the registry, and the reader thread.

Import from here: ``from edge.devices.scales import PROTOCOLS, Reading, ScaleReader``.  The registry
is complete once ``protocols`` (which imports every protocol module, explicitly) is imported.
"""

from edge.devices.scales.base import Parser, ProtocolSpec, Reading
from edge.devices.scales.protocols import PROTOCOLS, get_protocol
from edge.devices.scales.reader import ScaleReader, open_port
from edge.devices.scales.stability import StabilityDetector, StabilitySettings

__all__ = ["PROTOCOLS", "Parser", "ProtocolSpec", "Reading", "ScaleReader", "StabilityDetector",
           "StabilitySettings", "get_protocol", "open_port"]
