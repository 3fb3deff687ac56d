"""The attacker of issue 11, for the fault tests: a broker client with no key of any cart or of the
gateway, and what it can do with nothing but network access — listen, forge, replay.

``Intruder`` is one paho client on the stack's broker: it records every message on the topics it
subscribed (``heard``; a test waits on it with ``wait_for``, never by polling), publishes what it
forges or captured (QoS 1, waiting for the broker's PUBACK), and can answer what it hears from its
own thread (``answer``: fake acks while the gateway is down).  ``forge`` builds the signed form of
``edge.wire.signed`` with a key of the intruder's own and without the schema check (a forger need
not respect the bounds); ``forged_record`` a structurally valid record sealed by such a key.

The real processes are the harness's (``tests.faults.harness.Stack``); this module only adds what
issue 11 needs around them: the gateway's public key (``gateway keygen``) given to the fleet
(``--gateway-key``), the read-only CLI views a test asserts on (``edge ledger --json``, ``gateway
status --json``) and a check that a process printed no traceback.
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge import wire
from tests.faults.harness import Proc, Stack, poll_until
from wastecart.fleet import handover_body

# How long a one-shot CLI command (keygen, ledger, status) may take (s): Python start-up + imports.
CLI_TIMEOUT_S = 60.0
# How long the broker may take to PUBACK one injected message or to SUBACK a subscription (s).
BROKER_TIMEOUT_S = 15.0
# Injected messages published before waiting for their PUBACKs (count): paho queues the rest.
PUBLISH_CHUNK = 500
SIGNED_VERSION = 1  # "v" of edge.wire.signed's form


# ------------------------------------------------------------------------------------------------
# What the intruder hears


@dataclass(frozen=True)
class Heard:
    """One message the intruder received."""

    topic: str
    payload: bytes
    retain: bool
    at: float  # time.monotonic() when paho handed it over

    @property
    def cart(self) -> str:
        return self.topic.split("/")[3] if self.topic.count("/") >= 4 else ""

    @property
    def leaf(self) -> str:
        return "/".join(self.topic.split("/")[4:])

    def json(self) -> Any:
        """The payload parsed, or None if it is not JSON."""
        try:
            return json.loads(self.payload)
        except ValueError:
            return None

    def signed(self) -> dict[str, Any] | None:
        """The signed message's fields (NOT verified: ``wire.peek_message``), or None if it is not one."""
        try:
            return wire.peek_message(self.payload)
        except ValueError:  # ContractError is one; so is a too-long integer
            return None

    def body(self) -> dict[str, Any]:
        """The body of a signed message ({} if it is not one)."""
        msg = self.signed()
        return dict(msg["body"]) if msg else {}

    def record(self) -> dict[str, Any] | None:
        """The record envelope (a dict with ``seq``), or None."""
        obj = self.json()
        return obj if isinstance(obj, dict) and isinstance(obj.get("seq"), int) else None


class Intruder:
    """A broker client without any key of ours: hears, forges, replays.  ``close()`` always."""

    def __init__(self, broker_url: str, name: str = "wc-faults-intruder") -> None:
        self.host, self.port, _ = wire.broker_address(broker_url)
        self.name = name
        self.heard: list[Heard] = []
        self.published = 0
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self._subacks: dict[int, threading.Event] = {}
        self._answers: queue.Queue[Heard | None] = queue.Queue()
        self._responder: threading.Thread | None = None
        self._answer: Callable[[Heard], Iterable[tuple[str, bytes]]] | None = None
        self.answer_errors: list[str] = []
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=name)
        self.client.max_queued_messages_set(0)  # unbounded: a flood is queued, not refused
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.connect(self.host, self.port)
        self.client.loop_start()
        if not self._connected.wait(BROKER_TIMEOUT_S):
            self.close()
            raise AssertionError(f"intruder could not connect to {broker_url}")

    # paho callbacks (its network thread): record and hand over only

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        if not rc.is_failure:
            self._connected.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, rcs: list[ReasonCode],
                      props: Any) -> None:
        with self._cond:
            event = self._subacks.setdefault(mid, threading.Event())
        event.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            topic = repr(msg._topic)
        heard = Heard(topic, bytes(msg.payload), bool(msg.retain), time.monotonic())
        with self._cond:
            self.heard.append(heard)
            self._cond.notify_all()
        if self._answer is not None:
            self._answers.put(heard)

    # listening

    def subscribe(self, *filters: str) -> Intruder:
        """Subscribe (QoS 1) and wait for the broker's SUBACK: from now on nothing is missed."""
        rc, mid = self.client.subscribe([(f, 1) for f in filters])
        assert rc == mqtt.MQTT_ERR_SUCCESS and mid is not None, f"subscribe failed: {mqtt.error_string(rc)}"
        with self._cond:
            event = self._subacks.setdefault(mid, threading.Event())
        assert event.wait(BROKER_TIMEOUT_S), f"no SUBACK for {filters}"
        return self

    def messages(self, pred: Callable[[Heard], bool] = lambda h: True) -> list[Heard]:
        with self._cond:
            return [h for h in self.heard if pred(h)]

    def wait_for(self, what: str, done: Callable[[list[Heard]], bool], timeout: float) -> bool:
        """Wait (woken by each message) until ``done(heard)``; False at the deadline."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done(self.heard):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def must_hear(self, what: str, done: Callable[[list[Heard]], bool], timeout: float,
                  on_timeout: Callable[[], str] = lambda: "") -> None:
        if not self.wait_for(what, done, timeout):
            raise AssertionError(f"the intruder did not hear {what} within {timeout:.0f} s\n{on_timeout()}")

    # answering (fake acks): one thread of ours, never paho's

    def answer(self, respond: Callable[[Heard], Iterable[tuple[str, bytes]]]) -> None:
        """From now on, publish what ``respond(heard)`` returns for each message heard."""
        self._answer = respond
        self._responder = threading.Thread(target=self._respond_loop, name=f"{self.name}-answers", daemon=True)
        self._responder.start()

    def _respond_loop(self) -> None:
        while True:
            heard = self._answers.get()
            if heard is None or self._answer is None:
                return
            for topic, payload in self._answer(heard):
                info = self.client.publish(topic, payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    self.answer_errors.append(f"{topic}: {mqtt.error_string(info.rc)}")
                else:
                    self.published += 1

    def stop_answering(self) -> None:
        if self._responder is not None:
            self._answers.put(None)
            self._responder.join(BROKER_TIMEOUT_S)
            self._responder = None
        self._answer = None

    # injecting

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> None:
        self.publish_all([(topic, payload)], retain=retain, qos=qos)

    def publish_all(self, items: Sequence[tuple[str, bytes]], *, retain: bool = False, qos: int = 1,
                    chunk: int = PUBLISH_CHUNK) -> None:
        """Publish each ``(topic, payload)`` in order and wait until the broker has them all (``chunk``
        at a time: what paho holds in memory)."""
        for start in range(0, len(items), chunk):
            infos = []
            for topic, payload in items[start:start + chunk]:
                info = self.client.publish(topic, payload, qos=qos, retain=retain)
                assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish to {topic} failed: {mqtt.error_string(info.rc)}"
                infos.append(info)
            for info in infos:
                if qos > 0:
                    info.wait_for_publish(BROKER_TIMEOUT_S)
                    assert info.is_published(), "the broker did not PUBACK an injected message"
            self.published += len(infos)

    def __enter__(self) -> Intruder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.stop_answering()
        with contextlib.suppress(OSError):
            self.client.disconnect()
        self.client.loop_stop()


# ------------------------------------------------------------------------------------------------
# Forging


def forge(kind: str, site: str, cart: str, body: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """The signed-message form (edge/wire/signed.py) signed by ``key`` — the intruder's, so it
    verifies with no trusted key — and without the schema check, so bodies out of bounds go too."""
    signed = wire.canonical({"v": SIGNED_VERSION, "kind": kind, "site": site, "cart": cart, "body": body})
    sig = base64.b64encode(key.sign(signed)).decode("ascii")
    return wire.canonical({"v": SIGNED_VERSION, "kind": kind, "site": site, "cart": cart, "body": body,
                           "sig": sig})


def resign(payload: bytes, key: Ed25519PrivateKey, **changes: Any) -> bytes:
    """A captured signed message with fields changed (site, cart, body, kind) and signed again by ``key``."""
    msg = json.loads(payload)
    msg.update(changes)
    return forge(msg["kind"], msg["site"], msg["cart"], msg["body"], key)


def forged_record(org: str, cart: str, seq: int, key: Ed25519PrivateKey, *, prev_hash: str = wire.GENESIS_HASH,
                  n: int = 1) -> dict[str, Any]:
    """A structurally valid record envelope (any seq, even far beyond the schema's bound) sealed by ``key``."""
    now = datetime.now().astimezone()
    body = handover_body(cart, org, n, now)
    return wire.seal(wire.unsigned_envelope(
        record_id=wire.uuid7(), cart=cart, seq=seq, created_at=now.isoformat(timespec="milliseconds"),
        clock=wire.Clock("ntp", 1), rtype="handover", body=body, prev_hash=prev_hash), key)


def status_body(state: str, seq_head: int, boot_id: str | None = None) -> dict[str, Any]:
    return {"state": state, "boot_id": boot_id or wire.uuid7(), "seq_head": seq_head}


# ------------------------------------------------------------------------------------------------
# The real processes around the harness


def cli(*args: str, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """``wastecart ARGS…`` as its own process; AssertionError with its output if it fails."""
    done = subprocess.run([sys.executable, "-m", "wastecart.cli", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (f"wastecart {' '.join(args)} exited {done.returncode}\n"
                                  f"--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-3000:]}")
    return done


def gateway_key(stack: Stack) -> str:
    """The gateway's public key: ``gateway keygen --data`` creates it if absent; its LAST line."""
    stack.gateway_dir.mkdir(parents=True, exist_ok=True)
    lines = cli("gateway", "keygen", "--data", str(stack.gateway_dir)).stdout.strip().splitlines()
    assert lines, "gateway keygen printed nothing"
    key = lines[-1].strip()
    wire.load_public_key(key)  # a ContractError here says the last line is not the key
    return key


def arm_fleet(stack: Stack, *, records: int | None = None, rate: float | None = None, data: Path | None = None,
              extra: Sequence[str] = ()) -> Proc:
    """The stack's next fleet run with another record count, rate, data folder or more flags (the
    harness's arguments otherwise, ``--gateway-key`` included); ``stack.start_fleet()`` starts it and
    ``stack.wait_fleet_done`` waits for it."""
    args = stack.fleet_args()
    if records is not None:
        args[args.index("--records") + 1] = str(records)
    if rate is not None:
        args[args.index("--rate") + 1] = str(rate)
    if data is not None:
        args[args.index("--data") + 1] = str(data)
    args += list(extra)
    if stack.fleet is not None:
        stack.fleet.terminate()  # reaped: its exit codes stay with the old Proc
    stack.fleet = Proc("fleet", args, stack.logs)
    return stack.fleet


def extra_gateway_config(stack: Stack, toml: str) -> None:
    """Make the stack's gateway start with ``toml`` appended to the harness's config (a section
    such as ``[quarantine]`` that ``Stack(ingest=…)`` cannot express).  Call before it first starts."""
    assert stack.gateway is None, "the gateway was already started with the harness's config"
    path = stack.gateway_config()
    path.write_text(path.read_text(encoding="utf-8") + "\n" + toml.strip() + "\n", encoding="utf-8")
    stack.gateway = Proc("gateway", [
        "gateway", "run", "--config", str(path), "--broker", stack.broker.url, "--data", str(stack.gateway_dir),
        "--platform", stack.platform_url, "--client-id", "wc-gateway-faults"], stack.logs)


def ledger_rows(data: Path) -> list[dict[str, Any]]:
    """``wastecart edge ledger --data DATA --json``: one dict per record (id, seq, synced, …)."""
    out = cli("edge", "ledger", "--data", str(data), "--json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def gateway_status(stack: Stack) -> dict[str, Any]:
    """``wastecart gateway status --data … --json`` (read-only; safe while the gateway runs)."""
    summary: dict[str, Any] = json.loads(cli("gateway", "status", "--data", str(stack.gateway_dir), "--json").stdout)
    return summary


def store_bytes(stack: Stack) -> int:
    """Bytes on disk of the gateway's database: the file, its WAL and shared memory."""
    return sum(p.stat().st_size for p in stack.gateway_dir.glob("gateway.sqlite*") if p.is_file())


def tracebacks(proc: Proc) -> list[str]:
    """Each traceback ``proc`` wrote to stderr (all runs): its outer and inner frames, the exception line."""
    if not proc.err_path.exists():
        return []
    rows = proc.err_path.read_text(encoding="utf-8", errors="replace").splitlines()
    found = []
    for i, row in enumerate(rows):
        if not row.startswith("Traceback"):
            continue
        end = next((j for j in range(i + 1, len(rows)) if not rows[j].startswith(" ")), len(rows) - 1)
        frames = rows[i + 1:end]
        shown = frames if len(frames) <= 16 else [*frames[:10], "    …", *frames[-4:]]
        found.append("\n".join([row, *shown, rows[end]]))
    return found


_markers = iter(range(1, 10**6))
# How long one marker is waited for when the gateway may not have subscribed yet (s).
MARKER_RETRY_S = 1.0


def wait_taken(stack: Stack, intruder: Intruder, timeout: float = 60.0, *, first_start: bool = False) -> None:
    """Until the gateway has handled everything ``intruder`` published before: a garbage marker on a
    made-up cart's record topic, published after it, reaches its quarantine (one client's messages
    arrive in order, and the gateway handles them in order).  ``first_start``: the gateway may not
    have subscribed yet (a marker published before that is lost), so a new marker goes out every
    MARKER_RETRY_S until one lands."""
    deadline = time.monotonic() + timeout
    while True:
        cart = f"MARK-{next(_markers):04d}"
        topic = wire.topic(stack.org, cart, wire.RECORD)
        intruder.publish(topic, f"marker {cart}".encode())

        def landed(topic: str = topic) -> bool | None:
            return True if any(q.get("topic") == topic for q in stack.summary().get("quarantine", [])) else None

        left = deadline - time.monotonic()
        try:
            poll_until(f"the gateway to quarantine marker {cart}", landed,
                       min(MARKER_RETRY_S, left) if first_start else left, on_timeout=stack.diagnostics)
            return
        except AssertionError:
            if not first_start or time.monotonic() >= deadline:
                raise
