"""``wastecart demo``: the whole chain on simulated devices, nothing else running.

A private mosquitto on a free port, the simulated platform, the gateway, a virtual Toledo scale on
a pty, a folder camera showing generated QR codes, a simulated label printer, a simulated scale
slide-out, and one cart agent with its kiosk page — each the same code that runs in production,
wired by URLs.  A scripted collector then does N rounds through the real workflow, visible on the
kiosk: badge → department → bags (the slide-out extends, a load settles on the scale, the label is
seen by the camera — or, for the last bag, the category is tapped and a label printed) → nurse's
badge → handover committed → ... → the platform.  From two rounds on, the last round then takes the
bags to the storage room: each is re-weighed (its label seen on the scale) but one, which is reported
lost and confirmed by a supervisor (an ``incident`` record), then the keeper signs the check-in
(``storage_in``); at the transporter's vehicle the manifest number is typed twice and the driver signs
(``transfer``).  The people, rooms and vehicles are the demo's roster (``demo_roster``): who may
sign what, and the names the records carry.  ``pace`` slows the script down for a watcher.

``secure``: the chain on the deployed broker configuration (issue 12) — a site PKI in the data
folder (``pki/``), mosquitto from ``wastecart broker config`` (TLS with client certificates, a
per-client ACL, the CRL), and the cart and the gateway each with its own certificate.
"""

from __future__ import annotations

import logging
import random
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from edge import codes, wire
from edge.app import EdgeApp
from edge.config import ActuatorConfig, CameraConfig, EdgeConfig, KioskConfig, ScaleConfig, WorkflowConfig
from edge.devices.printer.settings import PrinterSettings
from edge.errors import CodeError
from edge.ledger.settings import UplinkSettings
from edge.roster import Carrier, Department, Person, Receiver, Room, Roster, Vehicle
from edge.version import software_version
from edge.workflow import REPLAYED, State, Step
from gateway.app import GatewayApp
from gateway.config import GatewayConfig
from gateway.console.auth import Passwords
from gateway.console.settings import CONSOLE_PORT, ConsoleConfig
from gateway.identity import load_or_create as gateway_identity
from gateway.store.schema import DB_NAME
from gateway.store.users import SqliteUsers
from sim_devices.camera import SimCamera
from sim_devices.platform import SimPlatform
from sim_devices.printer import SimPrinter
from sim_devices.scales import VirtualScale
from wastecart import pki
from wastecart.broker import PrivateBroker
from wastecart.errors import WastecartError
from wastecart.fleet import Fleet, fleet_cart_id

log = logging.getLogger(__name__)

ORG = "H330100001"  # a hospital's organisation code
CART = "CART-01"
GATEWAY_ID = "GW-DEMO"  # the gateway's certificate CN (and MQTT client id) with --secure
COLLECTOR = "COL-0001"
KEEPER, SUPERVISOR, DRIVER = "KEEP-01", "SUP-01", "DRV-01"  # badges of the demo's roster
ROOM, VEHICLE = "R01", "V01"  # the storage room's and the vehicle's codes
MANIFEST_AREA = "3301"  # 浙江省杭州市 (GB/T 2260), where the demo's hospital is: a manifest number's digits 5-8
# The demo's twelve departments (D01 … D12, each with its nurse NUR-D01 … NUR-D12) and their nurses' names.
DEPARTMENTS = ("心血管内科", "普外科", "检验科", "手术室", "重症医学科", "儿科", "妇产科", "急诊科", "骨科",
               "病理科", "药剂科", "口腔科")
NURSES = ("李芳", "赵敏", "刘洋", "陈静", "杨丽", "黄婷", "周燕", "吴娟", "徐霞", "孙颖", "马琳", "朱红")
STEP_TIMEOUT_S = 15.0  # one scripted step (a scan seen, a weight settled) must happen within this
DEMO_USER, DEMO_PASSWORD = "demo", "wastecart-demo"  # printed by the demo: a demo's console is not a secret
MAX_FLEET = 200  # --carts: each simulated cart is an MQTT connection and a SQLite file in this process
FLEET_TELEMETRY_S = 5.0  # s: the demo's simulated carts report often, so the console's charts fill in a minute
DRAIN_TIMEOUT_S = 60.0  # all committed records at the platform within this after the last round
# From this many rounds on, the last one also takes the bags to storage (one reported lost) and hands
# them to the transporter; `--rounds 1` stays one handover, the quickest check of the chain.
DELIVER_FROM = 2


class DemoError(WastecartError):
    """A scripted step did not happen in time; the message names the step."""


def demo_roster() -> Roster:
    """Who the demo's cart meets: its collector, a nurse per department (badge ``NUR-D01`` signs for
    D01 only), the storage room's keeper, a supervisor (voids, losses), and the transporter's driver,
    vehicle, company and the licensed disposer with its method per category."""
    people = {COLLECTOR: Person(name="王建华", roles=("collector",)),
              KEEPER: Person(name="孙立新", roles=("keeper",)),
              SUPERVISOR: Person(name="周文斌", roles=("supervisor",)),
              DRIVER: Person(name="吴海涛", roles=("transporter",), carrier="HZYF")}
    departments = {}
    for i, (dept, nurse) in enumerate(zip(DEPARTMENTS, NURSES, strict=True), start=1):
        code = f"D{i:02d}"
        departments[code] = Department(name=dept)
        people[f"NUR-{code}"] = Person(name=nurse, roles=("nurse",), departments=(code,))
    steam = "高温蒸汽处理后焚烧"
    return Roster(
        version="demo-2026.1", org_name="杭州市示范人民医院", people=people, departments=departments,
        rooms={ROOM: Room(name="医疗废物暂存间（门诊楼负一层）")},
        vehicles={VEHICLE: Vehicle(plate="浙A·D7315", carrier="HZYF", receiver="HZCZ")},
        carriers={"HZYF": Carrier(name="杭州医废转运有限公司", uscc="91330100MA2CDEMO01",
                                  licence="浙交运管许可杭字330100000001号")},
        receivers={"HZCZ": Receiver(
            name="杭州医疗废物集中处置中心", uscc="91330100MA2CDEMO02", licence="浙危废经第3301000001号",
            address="杭州市余杭区示范路1号",
            disposal={"INFECTIOUS": steam, "SHARPS": steam, "PATHOLOGICAL": "焚烧",
                      "PHARMACEUTICAL": "焚烧", "CHEMICAL": "焚烧"})},
    )


@dataclass
class Demo:
    rounds: int
    bags_per_round: int = 3
    seed: int = 1
    data: Path | None = None
    broker_url: str | None = None  # use this broker instead of starting a private mosquitto
    kiosk_port: int = 0  # 0 = a free port
    pace: float = 0.0  # s paused after each scripted step, so a person can follow it on the kiosk
    secure: bool = False  # TLS with client certificates, a per-client ACL and a CRL (a PKI in DATA/pki)
    carts: int = 0  # simulated carts besides the scripted one (the real ledger and uplink, as `sim fleet`)
    console_port: int = CONSOLE_PORT  # the operator console (a free port if this one is taken; 0 = free)
    parts: list[Any] = field(default_factory=list)
    bag_base: int = 0  # records already in the cart's ledger at start (a second run on the same data)
    stored_base: int = 0  # records already in the gateway's store at start
    roster: Roster = field(default_factory=demo_roster)  # who may sign what; names in records and on labels

    def __post_init__(self) -> None:
        self._tmp = None if self.data else tempfile.TemporaryDirectory(prefix="wastecart-demo-")
        self.root = self.data or Path(self._tmp.name)  # type: ignore[union-attr]
        self.rng = random.Random(self.seed)

    # wiring ------------------------------------------------------------------------------------

    def start(self) -> dict[str, str]:
        """Start every part; returns where each listens."""
        cart_tls = gateway_tls = None
        if self.secure:
            if self.broker_url is not None:
                raise DemoError("--secure starts its own broker from the generated configuration: drop --broker")
            pki_dir = self._site_pki()
            self.root.chmod(0o755)  # mosquitto reads its folder as its own user when we are root
            broker = PrivateBroker.for_pki(pki_dir, self.root / "broker-tls")
            self.broker_url = self._up(broker, PrivateBroker.start).url
            cart_tls, gateway_tls = pki.tls_settings(pki_dir, CART), pki.tls_settings(pki_dir, GATEWAY_ID)
        elif self.broker_url is None:
            self.broker_url = self._up(PrivateBroker(data_dir=self._dir("broker")), PrivateBroker.start).url
        self.platform = self._up(SimPlatform(), SimPlatform.start)
        self.scale = self._up(VirtualScale("toledo", rate_hz=20.0, seed=self.seed), VirtualScale.start)
        self.camera = SimCamera(self._dir("camera"))
        self.printer = self._up(SimPrinter(self._dir("printer")), SimPrinter.start)
        # The gateway's key, made now (its `gateway run` would make the same one): the cart believes
        # only acks and commands it signed.
        gateway_key = wire.public_key_text(gateway_identity(self._dir("gateway")).public_key())
        edge_cfg = EdgeConfig(
            org=ORG, cart=CART, data=self._dir("cart"), broker=self.broker_url,
            scale=ScaleConfig(port=self.scale.path, protocol="toledo"),
            camera=CameraConfig(url=self.camera.url, fps=20.0, repeat_s=0.0),
            printer=PrinterSettings(url=self.printer.tcp_url, language="tspl"),
            actuator=ActuatorConfig(kind="sim", travel_s=0.2),
            kiosk=KioskConfig(port=self.kiosk_port if _port_free(self.kiosk_port) else 0),
            uplink=UplinkSettings(gateway_keys=(gateway_key,), tls=cart_tls),
            workflow=WorkflowConfig(), roster=self.roster,
        )
        self.cart = EdgeApp(edge_cfg)
        pub = wire.public_key_text(self.cart.key.public_key())
        fleet = self._fleet(gateway_key) if self.carts else None
        self.gateway = self._up(GatewayApp(GatewayConfig(
            broker=self.broker_url, client_id=GATEWAY_ID if self.secure else "wc-gateway-demo",
            data=self._dir("gateway"), platform=self.platform.url, cart_keys={CART: pub},
            cart_keys_dir=fleet.keys_dir if fleet else None, tls=gateway_tls,
            console=ConsoleConfig(port=self.console_port if _port_free(self.console_port) else 0))),
            GatewayApp.start)
        _demo_user(self.root / "gateway")
        self._up(self.cart, EdgeApp.start)
        if fleet is not None:
            self._up(_LiveFleet(fleet), _LiveFleet.start)
        # `--data DIR` again: bag labels of this run must not repeat the bags the ledger already holds,
        # and the summary counts this run (the platform is new each run; the gateway's store is not)
        self.bag_base = self.cart.ledger.head()
        self.stored_base = int(self.gateway.stats().get("stored", 0))
        return {
            "broker": str(self.broker_url) + (f" (TLS, client certificates from {self.root / 'pki'})"
                                              if self.secure else ""),
            "platform": f"{self.platform.url}/records",
            "gateway": f"{self.root / 'gateway'} (SQLite)", "scale": f"{self.scale.path} (toledo)",
            "camera": self.camera.url,
            "printer": f"{self.printer.tcp_url} (TSPL; jobs {self.printer.control_url}/jobs)",
            "cart": f"{self.cart.ledger.path} (ledger)",
            "kiosk": f"{self.cart.kiosk.url if self.cart.kiosk else '-'}  <- open in a browser",
            "dashboard": f"{self.gateway.console_url}  <- the operator console: log in as {DEMO_USER} / "
                         f"{DEMO_PASSWORD}",
        }

    def _fleet(self, gateway_key: str) -> Fleet:
        """``carts`` simulated carts in DATA/fleet: online, reporting plausible devices, no records of
        their own (the summary counts the scripted cart's rounds)."""
        return Fleet(broker=str(self.broker_url), data=self._dir("fleet"), carts=self.carts, records=0, org=ORG,
                     gateway_keys=(gateway_key,), settings=UplinkSettings(telemetry_s=FLEET_TELEMETRY_S),
                     pki=self.root / "pki" if self.secure else None, devices=_sim_devices)

    def _site_pki(self) -> Path:
        """DATA/pki: the site CA and a certificate for the cart and the gateway (kept across runs)."""
        pki_dir = self.root / "pki"
        if not (pki_dir / "ca.crt").exists():
            pki.init(pki_dir, ORG)
        issued = {h.client for h in pki.holders(pki_dir) if not h.revoked}
        fleet = [(fleet_cart_id(i), "cart") for i in range(1, self.carts + 1)]
        for client, role in ((CART, "cart"), (GATEWAY_ID, "gateway"), *fleet):
            if client not in issued:
                pki.issue(pki_dir, client, role)
        return pki_dir

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
                            f"(workflow at {s.step}, error {str(s.error)!r})")
        if self.pace:
            time.sleep(self.pace)  # only for a human watching the kiosk; 0 in tests

    def _show(self, kind: str, ident: str, extra: str = "", org: str = ORG) -> None:
        self.camera.show(codes.encode(codes.Code(kind, org, ident, extra)))

    def round(self, n: int, *, close: bool = True) -> None:
        """Handover round ``n``: the collector's badge, department D01 … D12, the bags, its nurse's
        badge; then (``close``) the collector's badge ends the round — else it stays open for
        ``check_in`` and ``transfer``, and ``close_round`` ends it."""
        dept = f"D{n % 12 + 1:02d}"
        saved = self.cart.state.saved
        self._show("S", COLLECTOR)
        self._wait("collector badge", lambda s: s.step is Step.ROUND)
        if n == 1:  # show that a code of another organisation is refused, with a reason
            self._show("D", "D99", org="H999999999")
            self._wait("foreign code refused", lambda s: "其他机构" in s.error)
        self._show("D", dept)
        self._wait("department code", lambda s: s.step is Step.STOP and s.department == dept)
        self._wait("scale slide-out extended", lambda s: s.actuator == "extended")
        for i in range(self.bags_per_round):
            grams = self.rng.randrange(200, 8000)
            letter = self.rng.choice("IIIISP")
            self.scale.set_load(grams, settle_s=0.3, noise_g=25)
            self._wait(f"bag {i + 1} settles at {grams} g", partial(_settled_at, grams))
            if i == self.bags_per_round - 1:  # a bag without a label: tap its category, print one
                self.cart.agent.act("choose:INFECTIOUS", None)
                self._wait("category chosen", lambda s: s.pending is not None)
                self.cart.agent.act("print_label", None)
                self._wait(f"bag {i + 1} label printed", partial(_lines_are, i + 1))
            else:
                self._show("B", f"B{self.bag_base + n:04d}{i + 1:02d}", letter)
                self._wait(f"bag {i + 1} label", partial(_lines_are, i + 1))
            self.scale.remove_load()
            self._wait("scale emptied", lambda s: s.armed)
        self._show("S", f"NUR-{dept}")
        self._wait("nurse confirms, handover saved", lambda s: s.saved == saved + 1)
        if close:
            self.close_round()

    def close_round(self) -> None:
        self._show("S", COLLECTOR)
        self._wait("round closed", lambda s: s.step is Step.IDLE)

    def check_in(self, *, lose_one: bool = True) -> dict[str, Any]:
        """At the storage room (in an open round): every bag on the cart re-weighed, its label seen on
        the scale — but one (``lose_one``), reported lost and confirmed by the supervisor (an
        incident) — then the keeper's badge and finish: the storage_in record."""
        saved = self.cart.state.saved
        self._show("R", ROOM)
        self._wait("storage room code", lambda s: s.step is Step.STORAGE and s.place == ROOM)
        self._wait("scale slide-out extended", lambda s: s.actuator == "extended")
        bags = self.cart.state.carried
        lost = bags[0] if lose_one and len(bags) > 1 else None  # the oldest bag: the longest way on the cart
        weighed = 0
        for bag in bags:
            if lost is not None and bag.package_code == lost.package_code:
                continue
            grams = max(bag.weight_g + self.rng.randrange(-40, 41), 100)  # within the re-weigh tolerance
            self.scale.set_load(grams, settle_s=0.3, noise_g=25)
            self._wait(f"bag {bag.package_code} settles at {grams} g", partial(_settled_at, grams))
            self._show("B", bag.package_code, codes.LETTER_OF[bag.category])
            weighed += 1
            self._wait(f"bag {bag.package_code} re-weighed", partial(_reweighed, weighed))
            self.scale.remove_load()
            self._wait("scale emptied", lambda s: s.armed)
        if lost is not None:
            where = self.roster.department_name(lost.department)
            self.cart.agent.act("report_lost", f"入库复称时未找到{lost.package_code}（{where}），已沿收集路线查找未果")
            self._wait("loss reported", lambda s: s.storage is not None and s.storage.lost is not None)
            self._show("S", SUPERVISOR)
            self._wait("supervisor confirms the loss, incident saved",
                       lambda s: s.storage is not None and len(s.storage.incidents) == 1)
        self._show("S", KEEPER)
        self._wait("keeper signs", lambda s: s.storage is not None and s.storage.keeper is not None)
        self.cart.agent.act("finish", None)
        self._wait("check-in saved", lambda s: s.step is Step.ROUND and s.saved == saved + 1 + (lost is not None))
        return {"room": ROOM, "bags": len(bags), "reweighed": weighed,
                "lost": [lost.package_code] if lost is not None else []}

    def manifest_number(self) -> str:
        """A national manifest number as the platform issues them: this year (the cart's zone), the
        province and city of the hospital, a six-digit serial."""
        year = datetime.now(self.cart.state.zone).year
        serial = (self.rng.randrange(10**6) + self.bag_base) % 10**6  # a second run on the same data: another
        return f"{year}{MANIFEST_AREA}{serial:06d}"

    def transfer(self) -> dict[str, Any]:
        """At the vehicle (in an open round): the manifest number typed twice, the driver's badge,
        finish: the transfer record of every bag in storage."""
        saved = self.cart.state.saved
        self._show("V", VEHICLE)
        self._wait("vehicle code", lambda s: s.step is Step.TRANSFER and s.place == VEHICLE)
        number = self.manifest_number()
        self.cart.agent.act("manifest", number)
        self._wait("manifest number typed once", lambda s: s.transfer is not None and s.transfer.first is not None)
        self.cart.agent.act("manifest", number)
        self._wait("manifest number typed again, confirmed", lambda s: s.manifest == number)
        self._show("S", DRIVER)
        self._wait("driver signs", lambda s: s.transfer is not None and s.transfer.driver is not None)
        bags = len(self.cart.state.stored)
        self.cart.agent.act("finish", None)
        self._wait("transfer saved", lambda s: s.step is Step.ROUND and s.saved == saved + 1)
        return {"vehicle": VEHICLE, "manifest": number, "bags": bags}

    # a person at the terminal drives the simulated devices while watching the kiosk ------------

    CONSOLE_HELP = ("drive the cart from here while watching the kiosk: `load 1200` (grams on the scale), "
                    "`empty`, `badge COL-0001`, `dept D01`, `bag B0001 I` (with its category letter I/S/P/D/C), "
                    f"`nurse NUR-D01`, `room {ROOM}`, `vehicle {VEHICLE}`, `badge {KEEPER}` (keeper), "
                    f"`badge {SUPERVISOR}` (supervisor), `badge {DRIVER}` (driver), or any payload for the camera; "
                    "the manifest number and a loss report are typed on the kiosk")

    def console(self, line: str) -> str:
        """One typed command → the simulated devices; returns what happened (or why not)."""
        words = line.split()
        if not words:
            return ""
        cmd, args = words[0].lower(), words[1:]
        kinds = {"badge": "S", "nurse": "S", "dept": "D", "bag": "B", "room": "R", "vehicle": "V"}
        if cmd == "load" and len(args) == 1 and args[0].isdigit():
            self.scale.set_load(int(args[0]), settle_s=0.8, noise_g=40)
            return f"scale: {args[0]} g, settling"
        if cmd == "empty" and not args:
            self.scale.remove_load()
            return "scale: emptied"
        if cmd in kinds and 1 <= len(args) <= 2:
            try:
                payload = codes.encode(codes.Code(kinds[cmd], ORG, args[0].upper(), (args[1:] or [""])[0].upper()))
            except CodeError as exc:
                return f"not a valid code: {exc}"
            self.camera.show(payload)
            return f"camera shows {payload}"
        self.camera.show(line.strip())
        return f"camera shows {line.strip()!r}"

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
        made = Counter(rtype for _id, rtype, seq, _body in self.cart.ledger.bodies(REPLAYED) if seq > self.bag_base)
        return {
            "rounds": self.rounds,
            "committed": self.cart.ledger.head() - self.bag_base,
            "records": {rtype: made[rtype] for rtype in REPLAYED if made[rtype]},  # this run's, by type
            "stored_at_gateway": int(self.gateway.stats().get("stored", 0)) - self.stored_base,
            "accepted_by_platform": len(received),
            "duplicates_at_platform": sum(r["received_count"] - 1 for r in received),
            "unsynced_on_cart": self.cart.ledger.backlog()[0],
            "bags": self.rounds * self.bags_per_round,
            "seconds": round(seconds, 2),
        }


def _demo_user(gateway_data: Path) -> None:
    """The console's demo login (an admin), added once; a second run on the same data keeps it."""
    users = SqliteUsers(gateway_data / DB_NAME)
    try:
        if users.user(DEMO_USER) is None:
            users.add_user(DEMO_USER, "admin", Passwords().hash(DEMO_PASSWORD), time.time())
    finally:
        users.close()


def _sim_devices(cart: str) -> dict[str, Any]:
    """What a simulated cart of the demo's fleet reports: healthy devices, a clock a little off."""
    return {"scale": "ok", "camera": "ok", "printer": "ok", "actuator": "retracted", "clock": "ntp",
            "version": software_version(),
            "clock_offset_ms": sum(map(ord, cart)) % 40 - 20}


class _LiveFleet:
    """The demo's simulated carts, connected until the demo stops (``Fleet.run`` would return once
    its records are acknowledged; these have none, and should stay on the fleet page)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def start(self) -> None:
        for c in self.fleet.carts:
            c.uplink.start()

    def stop(self) -> None:
        for c in self.fleet.carts:
            c.uplink.stop()
        self.fleet.close()


def _read_console(demo: Demo, out: TextIO) -> None:
    for line in sys.stdin:
        said = demo.console(line)
        if said:
            print(said, file=out, flush=True)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _settled_at(grams: int, s: State) -> bool:
    return s.weight is not None and s.weight.stable and s.weight.net_g == grams


def _lines_are(count: int, s: State) -> bool:
    return len(s.lines) == count


def _reweighed(count: int, s: State) -> bool:
    return len(s.reweighs) == count


def run(rounds: int, *, out: TextIO, emit: Callable[[dict[str, Any]], None], data: Path | None = None,
        broker: str | None = None, keep_running: Callable[[], None] | None = None, kiosk_port: int = 0,
        pace: float = 0.0, secure: bool = False, carts: int = 0, console_port: int = CONSOLE_PORT) -> dict[str, Any]:
    """Run the demo: where each part listens goes to ``out``, the summary to ``emit``; then, if
    ``keep_running`` is given, everything stays up until it returns (Ctrl-C)."""
    demo = Demo(rounds=rounds, data=data, broker_url=broker, kiosk_port=kiosk_port, pace=pace, secure=secure,
                carts=carts, console_port=console_port)
    t0 = time.monotonic()
    try:
        where = demo.start()
        for name, place in where.items():
            print(f"{name:9s} {place}", file=out, flush=True)
        for n in range(1, rounds + 1):
            deliver = n == rounds and rounds >= DELIVER_FROM
            demo.round(n, close=not deliver)
            print(f"round {n}/{rounds}: handover committed", file=out, flush=True)
            if deliver:
                stored = demo.check_in()
                lost = "、".join(stored["lost"])
                print(f"round {n}/{rounds}: storage {stored['room']}: {stored['reweighed']} of {stored['bags']} bags "
                      f"re-weighed and checked in" + (f", {lost} reported lost (incident)" if lost else ""),
                      file=out, flush=True)
                left = demo.transfer()
                print(f"round {n}/{rounds}: transfer on {left['vehicle']}: {left['bags']} bags, manifest "
                      f"{left['manifest']}", file=out, flush=True)
                demo.close_round()
        demo.drain()
        summary = demo.summary(time.monotonic() - t0)
        emit(summary)
        if keep_running is not None:
            print("demo still running (scale, camera, printer, platform, broker, kiosk above); Ctrl-C to stop",
                  file=out, flush=True)
            print(demo.CONSOLE_HELP, file=out, flush=True)
            threading.Thread(target=_read_console, args=(demo, out), name="demo-console", daemon=True).start()
            keep_running()
        return summary
    finally:
        demo.stop()
