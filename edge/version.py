"""The software version a cart reports in its status and telemetry (the operator console lists it
per cart, so an operator sees which carts still run an old release)."""

from __future__ import annotations

from functools import cache
from importlib import metadata


@cache
def software_version() -> str:
    """The installed package's version ("unknown" when run from a tree that is not installed)."""
    try:
        return metadata.version("wastecart")[:32]  # a `word` in the wire contract: at most 32 characters
    except metadata.PackageNotFoundError:
        return "unknown"
