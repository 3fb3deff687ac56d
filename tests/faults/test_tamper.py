"""Another client on the broker injects records for a real cart while its fleet runs: an altered
copy, a forged signature, replays of seq 1 with other content, and garbage.  The gateway must raise
the matching alerts, none of it may reach the platform, and the real records still arrive once."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from edge import wire
from gateway.store.schema import ALERT_KINDS_V3
from tests.faults.harness import Stack, cart_name, poll_until

pytestmark = [pytest.mark.fault, pytest.mark.open_broker]

FINISH_S = 60.0
PUBLISH_TIMEOUT_S = 10.0


def _bump_a_number(body: dict[str, Any]) -> dict[str, Any]:
    """The body with one integer changed (a weight if there is one), still schema-valid."""
    out = copy.deepcopy(body)
    found: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            if isinstance(v, int) and not isinstance(v, bool):
                found.append((node, k))
            else:
                walk(v)

    walk(out)
    assert found, f"no integer in the body to alter: {body}"
    weights = [(n, k) for n, k in found if isinstance(k, str) and "weight" in k]
    node, key = (weights or found)[0]
    node[key] += 1
    return out


def _cart_key(stack: Stack, cart: str) -> Ed25519PrivateKey:
    """The cart's own signing key, read from its data folder: what a thief of the cart would have."""
    key = serialization.load_pem_private_key((stack.fleet_dir / cart / "cart.key").read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def _publish_all(stack: Stack, topic: str, payloads: list[bytes]) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="wc-faults-intruder")
    host, port, _ = wire.broker_address(stack.broker.url)
    client.connect(host, port)
    client.loop_start()
    try:
        for payload in payloads:
            info = client.publish(topic, payload, qos=1)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish failed: {info.rc}"
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
            assert info.is_published(), "the broker did not PUBACK the injected message"
    finally:
        client.disconnect()
        client.loop_stop()


def test_tampered_record_is_detected(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(carts=2, records=150, rate=60).start()
    victim = cart_name(1)
    topic = wire.topic(stack.org, victim, wire.RECORD)
    # The real seq 1 must be stored first: a replay that arrives before the original is, to the
    # gateway, the original (no gateway can tell without another source of truth).
    poll_until(f"{victim} seq 1 stored at the gateway",
               lambda: True if stack.summary()["carts"].get(victim, {}).get("upto_seq", 0) >= 1 else None,
               30, on_timeout=stack.diagnostics)
    real = stack.ledger(victim)[0]["record"]
    assert real["seq"] == 1

    altered = {**real, "body": _bump_a_number(real["body"])}  # hash and sig of the original
    intruder = Ed25519PrivateKey.generate()
    forged = wire.seal({k: v for k, v in altered.items() if k not in ("hash", "sig")}, intruder)
    thief = _cart_key(stack, victim)
    replay_same_id = wire.seal({k: v for k, v in altered.items() if k not in ("hash", "sig")}, thief)
    replay_new_id = wire.seal({**{k: v for k, v in altered.items() if k not in ("hash", "sig")},
                               "id": wire.uuid7()}, thief)
    injected = {
        "ALTERED": [wire.encode(altered)],
        "FORGED": [wire.encode(forged)],
        "REPLAYED": [wire.encode(replay_same_id), wire.encode(replay_new_id)],
        "MALFORMED": [b"\x00\xff garbage {not json"],
    }
    _publish_all(stack, topic, [p for payloads in injected.values() for p in payloads])
    stack.note("injected: " + ", ".join(f"{k} x{len(v)}" for k, v in injected.items()))

    stack.wait_fleet_done(FINISH_S)
    stack.wait_delivered()
    facts = stack.assert_exactly_once()  # also: no injected id / content at the platform, no chain break

    def alerts_raised() -> dict[str, int] | None:
        kinds: dict[str, int] = {}  # alerts of one kind and cart are one row with a count
        for alert in stack.summary().get("alerts", []):
            kinds[alert["kind"]] = kinds.get(alert["kind"], 0) + int(alert.get("count") or 1)
        return kinds if all(kinds.get(k, 0) >= len(v) for k, v in injected.items()) else None

    kinds = poll_until("an alert for every injected payload", alerts_raised, 15,
                       on_timeout=lambda: f"alerts: {stack.summary().get('alerts')}\n{stack.diagnostics()}")
    assert set(kinds) <= set(ALERT_KINDS_V3), f"alert kinds outside the gateway's: {kinds}"
    signed = [a for a in facts["summary"]["alerts"] if a["kind"] in ("ALTERED", "FORGED", "REPLAYED")]
    assert all(a.get("cart") == victim for a in signed), f"alerts name the wrong cart: {signed}"
    assert not any(a["kind"] == "CHAIN_BREAK" for a in stack.summary()["alerts"]), (
        "a rejected injection broke the real cart's chain at the gateway")
    at_platform = {item["id"] for item in stack.platform_records()}
    assert replay_new_id["id"] not in at_platform
