"""``wastecart sim fleet``: N carts committing M handovers each through the real ledger and uplink.

No hardware: each cart is an ``edge.ledger.store.Ledger`` in ``DIR/<cart>/`` and an ``edge.ledger.uplink.Uplink``
— the exact code of a cart agent below the workflow.  Killed (even with SIGKILL) and started again
on the same DIR it carries on from each ledger's head, so fault tests can kill it at random and
then check that every committed record arrived exactly once.  Each cart's public key is written
to ``DIR/keys/<cart>.pub`` for the gateway's ``cart_keys_dir``.  The carts believe acks and commands
signed by the gateway keys given (``uplink.gateway_keys``), as a cart agent does.  With a PKI folder
(``--pki DIR``) each cart connects over TLS with its own client certificate, DIR/clients/<cart>/,
whose CN is its cart id: what a broker with a per-cart ACL requires.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from edge import keys, wire, workflow
from edge.errors import DiskFullError, StoreError
from edge.ledger.settings import UplinkSettings
from edge.ledger.store import Ledger
from edge.ledger.uplink import Uplink
from edge.tls import TlsError, TlsSettings, check
from wastecart.errors import WastecartError

log = logging.getLogger(__name__)

DISK_RETRY_S = 1.0  # a cart whose disk is full tries again this often (s)


def handover_body(cart: str, org: str, n: int, at: datetime) -> dict[str, Any]:
    """A plausible 3-bag handover (the workflow's own body builder, no scanning or weighing)."""
    grams = 1200 + n % 500
    weigh = {"gross_g": grams, "tare_g": 0, "net_g": grams, "stable": True, "protocol": "toledo",
             "raw": "\x02;0  1200     0\r"}
    state = workflow.State(
        org=org, cart=cart, step=workflow.Step.STOP,
        round=workflow.Round(collector="COL-0001", id=wire.uuid7(), started_at=at),
        visit=workflow.Stop(department=f"D{n % 12 + 1:02d}",
                            lines=tuple(workflow.Line(f"{cart}-{n:06d}-{i}", cat, grams, weigh)
                                        for i, cat in enumerate(("INFECTIOUS", "INFECTIOUS", "SHARPS")))))
    return workflow.handover_body(state, nurse="NUR-0001", at=at)


def fleet_cart_id(n: int) -> str:
    """The id of the fleet's n-th cart (from 1): the same in every run, so a restart carries on."""
    return f"FLEET-{n:03d}"


@dataclass
class Cart:
    id: str
    ledger: Ledger
    uplink: Uplink


class Fleet:
    def __init__(self, *, broker: str, data: Path, carts: int, records: int, rate: float = 0.0,
                 org: str = "H330100001", settings: UplinkSettings | None = None, min_free_mb: int = 0,
                 gateway_keys: Sequence[str] = (), pki: Path | None = None, check_hostname: bool = True,
                 devices: Callable[[str], dict[str, Any]] | None = None) -> None:
        """``pki``: a ``wastecart pki`` folder; each cart connects with its own certificate (CN = its
        id, as the broker's ACL wants), all checked before any cart starts.  ``devices(cart)``: the
        device states a cart reports in its status and telemetry (none by default: no hardware)."""
        self.broker, self.data, self.records, self.rate, self.org = broker, data, records, rate, org
        settings = settings or UplinkSettings()
        if gateway_keys:  # validated as in a config file
            settings = UplinkSettings.model_validate({**settings.model_dump(), "gateway_keys": tuple(gateway_keys)})
        ids = [fleet_cart_id(i) for i in range(1, carts + 1)]
        tls = {cid: cart_tls(pki, cid, check_hostname) for cid in ids} if pki is not None else {}
        self.keys_dir = data / "keys"
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        self.carts: list[Cart] = []
        for cid in ids:
            key = keys.load_or_create(data / cid)
            _write_atomic(self.keys_dir / f"{cid}.pub", wire.public_key_text(key.public_key()) + "\n")
            ledger = Ledger(data / cid, cid, key, min_free_mb=min_free_mb)
            own = settings.model_copy(update={"tls": tls[cid]}) if cid in tls else settings
            status = (lambda c=cid: devices(c)) if devices is not None else dict
            self.carts.append(Cart(cid, ledger, Uplink(ledger, site=org, broker=broker, settings=own,
                                                       status=status)))
        self.stop = threading.Event()
        self.disk_full = 0  # commits refused for lack of space (each retried)

    def committed(self) -> int:
        return sum(c.ledger.head() for c in self.carts)

    def synced(self) -> int:
        return sum(c.ledger.head() - c.ledger.unsynced_count() - c.ledger.rejected_count() for c in self.carts)

    def rejected(self) -> int:
        """Records the gateway refused for good (never sent again; they do not hold the fleet up)."""
        return sum(c.ledger.rejected_count() for c in self.carts)

    def run(self, progress: TextIO | None = None) -> bool:
        """Commit until every cart has ``records``, then wait for every ack.  False if stopped."""
        for c in self.carts:
            c.uplink.start()
        try:
            self._commit_all(progress)
            while not self.stop.is_set():
                if all(c.uplink.wait_synced(0.5) for c in self.carts):
                    _progress(progress, self)
                    return True
                _progress(progress, self)
            return False
        finally:
            for c in self.carts:
                c.uplink.stop()

    def close(self) -> None:
        for c in self.carts:
            c.ledger.close()

    def _commit_all(self, progress: TextIO | None) -> None:
        period = 1.0 / self.rate if self.rate > 0 else 0.0
        next_at = time.monotonic()
        last_report = 0.0
        while not self.stop.is_set():
            todo = [c for c in self.carts if c.ledger.head() < self.records]
            if not todo:
                return
            for c in todo:
                if period and self.stop.wait(max(0.0, next_at - time.monotonic())):
                    return
                next_at += period
                self._commit_one(c)
            if time.monotonic() - last_report > 0.5:
                _progress(progress, self)
                last_report = time.monotonic()

    def _commit_one(self, c: Cart) -> None:
        now = datetime.now().astimezone()
        try:
            c.ledger.commit("handover", handover_body(c.id, self.org, c.ledger.head() + 1, now), now=now,
                            clock=wire.Clock("ntp", time.monotonic_ns() // 1_000_000))
        except DiskFullError as exc:
            self.disk_full += 1
            if self.disk_full == 1 or self.disk_full % 30 == 0:
                log.error("cart %s: %s (retrying every %.0f s; nothing committed is lost)", c.id, exc,
                          DISK_RETRY_S)
            self.stop.wait(DISK_RETRY_S)
            return
        except StoreError as exc:
            log.error("cart %s: %s (retrying)", c.id, exc)
            self.stop.wait(DISK_RETRY_S)
            return
        c.uplink.wake()


def cart_tls(pki: Path, cart: str, check_hostname: bool = True) -> TlsSettings:
    """The TLS settings of simulated cart ``cart`` from a PKI folder, checked (``edge.tls.check``);
    ``WastecartError`` naming the file, or the `pki issue` command when the cart has no certificate."""
    from wastecart import pki as pkilib

    try:
        settings = pkilib.tls_settings(pki, cart, check_hostname=check_hostname)
    except pkilib.PkiError as exc:
        raise WastecartError(f"cart {cart} has no client certificate in {pki}: run "
                             f"`wastecart pki issue --dir {pki} --client {cart} --role cart`") from exc
    try:
        check(settings)
    except TlsError as exc:
        raise WastecartError(f"cart {cart}: {exc}") from exc
    return settings


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _progress(out: TextIO | None, fleet: Fleet) -> None:
    if out is None:
        return
    total = len(fleet.carts) * fleet.records
    done, synced = fleet.committed(), fleet.synced()
    width = 30
    bar = "#" * (width * synced // max(total, 1))
    out.write(f"\r[{bar:<{width}}] committed {done}/{total}  acknowledged {synced}/{total}")
    out.flush()


def progress_stream() -> TextIO | None:
    """A progress bar only where a person watches (a terminal)."""
    return sys.stderr if sys.stderr.isatty() else None
