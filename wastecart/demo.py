"""``wastecart demo``: the whole chain on simulated devices, nothing else running.

A private mosquitto on a free port, the simulated platform, the gateway, a virtual Toledo scale on
a pty, a folder camera showing generated QR codes, and one cart agent — each the same code that
runs in production, wired by URLs.  A scripted collector then does N rounds through the real
workflow: badge → department → bags (load settles on the scale, label seen by the camera) →
nurse's badge → handover committed → ... → the platform.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from edge import codes, wire
from edge.app import EdgeApp
from edge.config import CameraConfig, EdgeConfig, ScaleConfig
from edge.workflow import State, Step
from gateway.app import GatewayApp
from gateway.config import GatewayConfig
from sim_devices.camera import SimCamera
from sim_devices.platform import SimPlatform
from sim_devices.scales import VirtualScale
from wastecart.broker import PrivateBroker
from wastecart.errors import WastecartError

log = logging.getLogger(__name__)

ORG = "H330100001"  # a hospital's organisation code
CART = "CART-01"
COLLECTOR = "COL-0001"
STEP_TIMEOUT_S = 15.0  # one scripted step (a scan seen, a weight settled) must happen within this
DRAIN_TIMEOUT_S = 60.0  # all committed records at the platform within this after the last round


class DemoError(WastecartError):
    """A scripted step did not happen in time; the message names the step."""


@dataclass
class Demo:
    rounds: int
    bags_per_round: int = 3
    seed: int = 1
    data: Path | None = None
    broker_url: str | None = None  # use this broker instead of starting a private mosquitto
    parts: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._tmp = None if self.data else tempfile.TemporaryDirectory(prefix="wastecart-demo-")
        self.root = self.data or Path(self._tmp.name)  # type: ignore[union-attr]
        self.rng = random.Random(self.seed)

    # wiring ------------------------------------------------------------------------------------

    def start(self) -> dict[str, str]:
        """Start every part; returns where each listens."""
        if self.broker_url is None:
            self.broker_url = self._up(PrivateBroker(data_dir=self._dir("broker")), PrivateBroker.start).url
        self.platform = self._up(SimPlatform(), SimPlatform.start)
        self.scale = self._up(VirtualScale("toledo", rate_hz=20.0, seed=self.seed), VirtualScale.start)
        self.camera = SimCamera(self._dir("camera"))
        edge_cfg = EdgeConfig(
            org=ORG, cart=CART, data=self._dir("cart"), broker=self.broker_url,
            scale=ScaleConfig(port=self.scale.path, protocol="toledo"),
            camera=CameraConfig(url=self.camera.url, fps=20.0, repeat_s=0.0),
        )
        self.cart = EdgeApp(edge_cfg)
        pub = wire.public_key_text(self.cart.key.public_key())
        self.gateway = self._up(GatewayApp(GatewayConfig(
            broker=self.broker_url, client_id="wc-gateway-demo", data=self._dir("gateway"),
            platform=self.platform.url, cart_keys={CART: pub})), GatewayApp.start)
        self._up(self.cart, EdgeApp.start)
        return {
            "broker": str(self.broker_url), "platform": f"{self.platform.url}/records",
            "gateway": f"{self.root / 'gateway'} (SQLite)", "scale": f"{self.scale.path} (toledo)",
            "camera": self.camera.url, "cart": f"{self.cart.ledger.path} (ledger)",
        }

    def _dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _up(self, part: Any, start: Callable[[Any], Any]) -> Any:
        start(part)
        self.parts.append(part)
        return part

    def stop(self) -> None:
        for part in reversed(self.parts):
            try:
                part.stop()
            except Exception:  # shutting down: one part failing to stop must not leave the others running
                log.exception("stopping %s failed", type(part).__name__)
        self.parts.clear()
        if self._tmp:
            self._tmp.cleanup()

    # the scripted collector --------------------------------------------------------------------

    def _wait(self, what: str, predicate: Callable[[State], bool]) -> None:
        if not self.cart.wait_until(predicate, STEP_TIMEOUT_S):
            s = self.cart.state
            raise DemoError(f"demo step '{what}' did not happen within {STEP_TIMEOUT_S:.0f} s "
                            f"(workflow at {s.step}, error {s.error!r})")

    def _show(self, kind: str, ident: str, extra: str = "", org: str = ORG) -> None:
        self.camera.show(codes.encode(codes.Code(kind, org, ident, extra)))

    def round(self, n: int) -> None:
        dept = f"D{n % 12 + 1:02d}"
        saved = self.cart.state.saved
        self._show("S", COLLECTOR)
        self._wait("collector badge", lambda s: s.step is Step.ROUND)
        if n == 1:  # show that a code of another organisation is refused, with a reason
            self._show("D", "D99", org="H999999999")
            self._wait("foreign code refused", lambda s: "其他机构" in s.error)
        self._show("D", dept)
        self._wait("department code", lambda s: s.step is Step.STOP and s.department == dept)
        for i in range(self.bags_per_round):
            grams = self.rng.randrange(200, 8000)
            letter = self.rng.choice("IIIISP")
            self.scale.set_load(grams, settle_s=0.3, noise_g=25)
            self._wait(f"bag {i + 1} settles at {grams} g", partial(_settled_at, grams))
            self._show("B", f"B{n:04d}{i + 1:02d}", letter)
            self._wait(f"bag {i + 1} label", partial(_lines_are, i + 1))
            self.scale.remove_load()
            self._wait("scale emptied", lambda s: s.armed)
        self._show("S", f"NUR-{dept}")
        self._wait("nurse confirms, handover saved", lambda s: s.saved == saved + 1)
        self._show("S", COLLECTOR)
        self._wait("round closed", lambda s: s.step is Step.IDLE)

    def drain(self) -> None:
        """Wait until every committed record is acknowledged at the cart and accepted at the platform."""
        head = self.cart.ledger.head()
        if not self.gateway.wait_until(lambda st: st.get("accepted", 0) >= head, DRAIN_TIMEOUT_S):
            raise DemoError(f"only {self.gateway.stats().get('accepted')} of {head} records reached the "
                            f"platform within {DRAIN_TIMEOUT_S:.0f} s")
        if not self.cart.uplink.wait_synced(DRAIN_TIMEOUT_S):
            raise DemoError("the cart did not receive the gateway's acks in time")

    def summary(self, seconds: float) -> dict[str, Any]:
        received = self.platform.records()
        return {
            "rounds": self.rounds,
            "committed": self.cart.ledger.head(),
            "stored_at_gateway": self.gateway.stats().get("stored", 0),
            "accepted_by_platform": len(received),
            "duplicates_at_platform": sum(r["received_count"] - 1 for r in received),
            "unsynced_on_cart": self.cart.ledger.backlog()[0],
            "bags": self.rounds * self.bags_per_round,
            "seconds": round(seconds, 2),
        }


def _settled_at(grams: int, s: State) -> bool:
    return s.weight is not None and s.weight.stable and s.weight.net_g == grams


def _lines_are(count: int, s: State) -> bool:
    return len(s.lines) == count


def run(rounds: int, *, out: TextIO, emit: Callable[[dict[str, Any]], None], data: Path | None = None,
        broker: str | None = None, keep_running: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run the demo: where each part listens goes to ``out``, the summary to ``emit``; then, if
    ``keep_running`` is given, everything stays up until it returns (Ctrl-C)."""
    demo = Demo(rounds=rounds, data=data, broker_url=broker)
    t0 = time.monotonic()
    try:
        where = demo.start()
        for name, place in where.items():
            print(f"{name:9s} {place}", file=out, flush=True)
        for n in range(1, rounds + 1):
            demo.round(n)
            print(f"round {n}/{rounds}: handover committed", file=out, flush=True)
        demo.drain()
        summary = demo.summary(time.monotonic() - t0)
        emit(summary)
        if keep_running is not None:
            print("demo still running (scale, camera, platform, broker above); Ctrl-C to stop",
                  file=out, flush=True)
            keep_running()
        return summary
    finally:
        demo.stop()
