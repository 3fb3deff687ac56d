"""Client TLS against a real mosquitto whose TLS listener requires client certificates.

The certificates come from the site PKI (``wastecart.pki``: one CA for the broker and the clients,
and a second site's CA for the wrong ones); the broker runs the configuration ``wastecart broker
config`` writes for it (``PrivateBroker.for_pki``; what that configuration permits is tested in
test_broker_acl).

What is shown: records go from a real Uplink to a subscriber over TLS with client certificates; the
simulated fleet and the gateway deliver and acknowledge over TLS; a wrong CA, a missing client
certificate, a certificate of another site and a plaintext URL to the TLS port are each ONE clear
line while paho keeps retrying, and a recovery is one line too; TLS settings with an ``mqtt://`` URL
and a key others may read stop ``edge run`` and ``gateway run`` with one line naming the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge import wire
from edge.ledger.settings import UplinkSettings
from edge.ledger.store import Ledger
from edge.ledger.uplink import Uplink
from edge.mqtt import Link
from edge.tls import TlsSettings
from gateway.app import GatewayApp
from gateway.config import GatewayConfig
from sim_devices.platform import SimPlatform
from wastecart import pki
from wastecart.broker import PrivateBroker, free_port
from wastecart.errors import WastecartError
from wastecart.fleet import Fleet, handover_body

SITE = "H1"
CART = "CART-01"
GATEWAY = "GATEWAY-1"  # the gateway certificate's CN (its MQTT client id stays its own)
OBSERVER = "OBSERVER"
FLEET = ("FLEET-001", "FLEET-002")
WAIT_S = 20.0  # upper bound of one wait; the happy path takes milliseconds
START_S = 10.0  # s for mosquitto to listen
RETRIES = 3  # failed attempts watched (paho waits 1, 2 s between them): the cause is said once, not thrice
GATEWAY_KEY = Ed25519PrivateKey.generate()  # the gateway key a cart needs to start (no acks in most tests)

def tls_url(broker: PrivateBroker) -> str:
    return f"mqtts://127.0.0.1:{broker.port}"  # 127.0.0.1 is in the broker certificate's SAN


@contextlib.contextmanager
def broker_folder() -> Iterator[Path]:
    """A folder the mosquitto user can reach (pytest's tmp folders are closed to it when we are root)."""
    with tempfile.TemporaryDirectory(prefix="wc-tls-link-") as out:
        Path(out).chmod(0o755)
        yield Path(out) / "broker"


def settings_for(dir: Path, client: str, ca: Path | None = None) -> TlsSettings:
    settings = pki.tls_settings(dir, client)
    return settings.model_copy(update={"ca": ca}) if ca else settings


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site PKI: the broker's certificate, a cart, the gateway, an observer (it reads records: a
    gateway's rights), the fleet's carts."""
    dir = tmp_path_factory.mktemp("pki") / "site"
    pki.init(dir, SITE)
    for client, role in ((CART, "cart"), (GATEWAY, "gateway"), (OBSERVER, "gateway"),
                         *((c, "cart") for c in FLEET)):
        pki.issue(dir, client, role)
    return dir


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another site's PKI: a CA the broker does not know, with a cart of the same id."""
    dir = tmp_path_factory.mktemp("pki") / "elsewhere"
    pki.init(dir, "H2")
    pki.issue(dir, CART, "cart")
    return dir


@pytest.fixture(scope="module")
def tls_broker(site: Path) -> Iterator[PrivateBroker]:
    with broker_folder() as out, PrivateBroker.for_pki(site, out) as b:
        yield b


def uplink_settings(tls: TlsSettings | None, **given: Any) -> UplinkSettings:
    return UplinkSettings(gateway_keys=(wire.public_key_text(GATEWAY_KEY.public_key()),), tls=tls, **given)


def fail_a_few_times(link: Link) -> None:
    """Start ``link`` and let paho fail ``RETRIES`` connection attempts (each cause must be said once)."""
    link.start()
    try:
        assert link.wait_failures(RETRIES, WAIT_S)
    finally:
        link.stop()


def errors_of(caplog: pytest.LogCaptureFixture, logger: str = "edge.mqtt") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno >= logging.ERROR]


# delivery over TLS -------------------------------------------------------------------------------

def test_an_uplink_delivers_records_to_a_subscriber_over_tls(
        tmp_path: Path, site: Path, tls_broker: PrivateBroker, caplog: pytest.LogCaptureFixture) -> None:
    got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    subscribed = threading.Event()
    observer = Link(tls_url(tls_broker), "wc-observer", tls=settings_for(site, OBSERVER))
    observer.client.on_connect = lambda c, *_: c.subscribe(wire.topic(SITE, CART, wire.RECORD), qos=1)
    observer.client.on_subscribe = lambda *_: subscribed.set()
    observer.client.on_message = lambda _c, _u, m: got.put(m)
    observer.start()
    ledger = Ledger(tmp_path, CART, Ed25519PrivateKey.generate())
    uplink = Uplink(ledger, site=SITE, broker=tls_url(tls_broker), settings=uplink_settings(settings_for(site, CART)))
    try:
        assert subscribed.wait(WAIT_S)
        assert uplink.link.identity == CART and observer.identity == OBSERVER
        uplink.start()
        now = datetime.now().astimezone()
        committed = [ledger.commit("handover", handover_body(CART, SITE, n, now), now=now,
                                   clock=wire.Clock("ntp", n)).id for n in range(1, 6)]
        uplink.wake()
        seen = [json.loads(got.get(timeout=WAIT_S).payload) for _ in committed]
        assert [e["id"] for e in seen] == committed
        assert uplink.connected.is_set()
    finally:
        uplink.stop()
        observer.stop()
        ledger.close()
    assert not errors_of(caplog)


def test_the_fleet_and_the_gateway_deliver_and_acknowledge_over_tls(
        tmp_path: Path, site: Path, tls_broker: PrivateBroker) -> None:
    """``sim fleet --pki``: each cart its own certificate; the gateway ingests and acks over TLS
    (its acks go out on the same TLS client), so every record ends synced on its cart."""
    keys_dir = tmp_path / "fleet" / "keys"  # where the fleet writes its carts' public keys
    keys_dir.mkdir(parents=True)
    (tmp_path / "gw").mkdir()
    with SimPlatform(seed=3) as platform:
        app = GatewayApp(GatewayConfig(broker=tls_url(tls_broker), client_id="wc-gateway-tls", data=tmp_path / "gw",
                                       platform=platform.url, cart_keys_dir=keys_dir,
                                       tls=settings_for(site, GATEWAY)))
        fleet = Fleet(broker=tls_url(tls_broker), data=tmp_path / "fleet", carts=len(FLEET), records=20, org=SITE,
                      settings=UplinkSettings(resend_after_s=5), gateway_keys=(app.public_key,), pki=site)
        assert [c.uplink.link.identity for c in fleet.carts] == list(FLEET)
        app.start()
        result: list[bool] = []
        runner = threading.Thread(target=lambda: result.append(fleet.run()))
        try:
            assert app.wait_until(lambda s: s.get("subscribed") == 1, WAIT_S)
            runner.start()
            runner.join(WAIT_S)
            assert result == [True], f"fleet synced {fleet.synced()} of {fleet.committed()}"
            assert app.wait_until(lambda s: s["stored"] == len(FLEET) * 20, WAIT_S)
        finally:
            fleet.stop.set()
            if runner.is_alive():
                runner.join(WAIT_S)
            app.stop()
            fleet.close()


def test_a_fleet_cart_without_a_certificate_names_the_command_that_issues_it(tmp_path: Path, site: Path) -> None:
    with pytest.raises(WastecartError, match=rf"cart FLEET-003 has no client certificate in {site}: run "
                                             rf"`wastecart pki issue --dir {site} --client FLEET-003 --role cart`"):
        Fleet(broker="mqtts://127.0.0.1:8883", data=tmp_path, carts=3, records=1, pki=site)


# one clear line per cause, while paho retries -------------------------------------------------------

def test_a_wrong_ca_is_one_error_line_while_retrying(
        tmp_path: Path, site: Path, elsewhere: Path, tls_broker: PrivateBroker,
        caplog: pytest.LogCaptureFixture) -> None:
    wrong = settings_for(site, CART, ca=elsewhere / "ca.crt")
    ledger = Ledger(tmp_path, CART, Ed25519PrivateKey.generate())
    uplink = Uplink(ledger, site=SITE, broker=tls_url(tls_broker), settings=uplink_settings(wrong))
    with caplog.at_level(logging.INFO):
        uplink.start()
        try:
            assert uplink.link.wait_failures(RETRIES, WAIT_S)
        finally:
            uplink.stop()
            ledger.close()
    assert errors_of(caplog) == [
        f"TLS to broker 127.0.0.1:{tls_broker.port} as {CART} failed: certificate verify failed: self-signed "
        f"certificate in certificate chain: the broker's certificate is not from this CA (ca {elsewhere}/ca.crt, "
        f"cert {site}/clients/{CART}/client.crt); retrying (back-off up to 30 s)"]
    assert not [r for r in caplog.records if r.name == "edge.ledger.uplink" and r.levelno >= logging.WARNING]
    assert not uplink.connected.is_set()


def test_no_client_certificate_is_one_error_line(
        site: Path, tls_broker: PrivateBroker, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """mqtts:// without TLS settings: the system's CA store (here OpenSSL's SSL_CERT_FILE, the site
    CA) and no certificate: TLS 1.3 lets the handshake finish, then the broker's alert arrives."""
    monkeypatch.setenv("SSL_CERT_FILE", str(site / "ca.crt"))
    link = Link(tls_url(tls_broker), "wc-cart-anon")
    fail_a_few_times(link)
    assert errors_of(caplog) == [
        f"TLS to broker 127.0.0.1:{tls_broker.port} as wc-cart-anon failed: tlsv13 alert certificate required: "
        "the broker requires a client certificate (ca: the system's CA store, no client certificate); "
        "retrying (back-off up to 30 s)"]


def test_a_certificate_of_another_site_is_one_error_line(
        site: Path, elsewhere: Path, tls_broker: PrivateBroker, caplog: pytest.LogCaptureFixture) -> None:
    stranger = settings_for(elsewhere, CART, ca=site / "ca.crt")  # trusts the broker; the broker not it
    link = Link(tls_url(tls_broker), "wc-cart-x", tls=stranger)
    fail_a_few_times(link)
    [line] = errors_of(caplog)
    assert f"as {CART} failed: tlsv1 alert unknown ca: the broker does not know the CA that issued" in line
    assert f"cert {elsewhere}/clients/{CART}/client.crt" in line


def test_a_plaintext_url_to_the_tls_listener_is_one_error_line(
        tls_broker: PrivateBroker, caplog: pytest.LogCaptureFixture) -> None:
    link = Link(f"mqtt://127.0.0.1:{tls_broker.port}", "wc-cart-plain")
    fail_a_few_times(link)
    assert errors_of(caplog) == [
        f"broker 127.0.0.1:{tls_broker.port} closed the connection of wc-cart-plain before answering it (is the port "
        "a TLS listener? then use mqtts://); retrying (back-off up to 30 s)"]


def test_a_broker_that_comes_later_is_one_warning_then_one_recovery_line(
        site: Path, caplog: pytest.LogCaptureFixture) -> None:
    connected = threading.Event()
    with broker_folder() as out:
        late = PrivateBroker.for_pki(site, out, port=free_port())
        link = Link(tls_url(late), "wc-cart-late", tls=settings_for(site, CART))
        link.client.on_connect = lambda *_: connected.set()
        with caplog.at_level(logging.INFO, logger="edge.mqtt"):
            link.start()
            try:
                assert link.wait_failures(2, WAIT_S)
                late.start()
                assert connected.wait(WAIT_S + 30)  # paho's back-off may have grown to its next step
            finally:
                link.stop()
                late.stop()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "edge.mqtt"]
    assert lines == [
        ("WARNING", f"cannot connect to broker 127.0.0.1:{late.port}: Connection refused; retrying (back-off up "
                    "to 30 s)"),
        ("INFO", f"connected to broker 127.0.0.1:{late.port} as {CART} again (was: Connection refused)")]


# start-up: one line, exit 2 ----------------------------------------------------------------------------

def wastecart(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wastecart.cli", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_edge_run_with_a_key_others_may_read_stops_with_one_line(tmp_path: Path, site: Path) -> None:
    cert, key = pki.client_files(site, CART)
    leaky = tmp_path / "client.key"
    leaky.write_bytes(key.read_bytes())
    leaky.chmod(0o644)
    roster = tmp_path / "edge.toml"  # a cart needs its roster before anything else is checked
    roster.write_text('roster = { version = "t1", org_name = "测试医院" }\n')
    done = wastecart("edge", "run", "--config", str(roster), "--org", SITE, "--cart", CART,
                     "--data", str(tmp_path / "data"),
                     "--broker", "mqtts://127.0.0.1:1", "--gateway-key",
                     wire.public_key_text(GATEWAY_KEY.public_key()), "--port", "0",
                     "--tls-ca", str(site / "ca.crt"), "--tls-cert", str(cert), "--tls-key", str(leaky))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"wastecart: error: 配置项 uplink.tls.key：{leaky}: private key is readable by others (mode 0644); "
        f"run `chmod 600 {leaky}` (setting uplink.tls.key: {leaky}: private key is readable by others (mode 0644); "
        f"run `chmod 600 {leaky}`)"]
    assert not (tmp_path / "data").exists()  # stopped before it opened anything


def test_gateway_run_with_a_key_others_may_read_stops_with_one_line(tmp_path: Path, site: Path) -> None:
    cert, key = pki.client_files(site, GATEWAY)
    leaky = tmp_path / "gateway-client.key"
    leaky.write_bytes(key.read_bytes())
    leaky.chmod(0o640)
    done = wastecart("gateway", "run", "--data", str(tmp_path), "--platform", "http://127.0.0.1:9",
                     "--broker", "mqtts://127.0.0.1:1", "--tls-ca", str(site / "ca.crt"), "--tls-cert", str(cert),
                     "--tls-key", str(leaky))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"wastecart: error: setting tls.key: {leaky}: private key is readable by others (mode 0640); "
        f"run `chmod 600 {leaky}`"]


def test_tls_flags_with_a_plaintext_broker_url_stop_with_one_line(tmp_path: Path, site: Path) -> None:
    cert, key = pki.client_files(site, GATEWAY)
    done = wastecart("gateway", "run", "--data", str(tmp_path), "--platform", "http://127.0.0.1:9",
                     "--broker", "mqtt://127.0.0.1:1883", "--tls-ca", str(site / "ca.crt"), "--tls-cert", str(cert),
                     "--tls-key", str(key))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "[tls] is set but broker is 'mqtt://127.0.0.1:1883': use mqtts://" in line

