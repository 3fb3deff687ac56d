"""The complete registry of indicator protocols: every protocol module, imported explicitly.

Each protocol module registers its ids in ``base.PROTOCOLS`` when imported; importing this module
is what makes the registry complete (DESIGN §2: explicit registry).  Pure parsers only, no port
and no thread: the config's protocol check imports this, not the reader.
"""

from __future__ import annotations

from edge.devices.scales import ad, cas, mtsics, ohaus, toledo, yaohua  # noqa: F401  (they register protocols)
from edge.devices.scales.base import PROTOCOLS, get_protocol

__all__ = ["PROTOCOLS", "get_protocol"]
