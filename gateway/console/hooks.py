"""What the console's pages and actions need of the running gateway besides its store.

The gateway app builds one ``GatewayHooks`` (``GatewayApp.start``); tests build their own around a
real store.  Nothing here is a mock of the gateway: each field is the gateway's own object or call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.ingest.checks import KeyRing
from gateway.ledger.settings import LedgerConfig


def _no_command(site: str, cart: str, name: str, args: Mapping[str, Any], requested_by: str) -> int | None:
    return None


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class GatewayHooks:
    # the cart public keys the gateway checks with: a record page's signature verdict, releasing quarantine
    keys: KeyRing
    # the gateway's folder (exports are written under DATA/exports)
    data_dir: Path
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    # log, sign and publish a command to a cart (``Replies.command``): its counter, or None if not sent
    command: Callable[[str, str, str, Mapping[str, Any], str], int | None] = _no_command
    # a dead letter put back in the outbox: the forwarder looks again now, not at its next tick
    wake_forwarder: Callable[[], None] = _nothing
    # GatewayConfig.cart_keys_dir: where the console enrolls cart keys (<CART>.pub); None: no enrollment
    cart_keys_dir: Path | None = None
