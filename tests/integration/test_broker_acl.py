"""Issue 12 on the broker: a real mosquitto started from the configuration `wastecart broker config`
writes (TLS with client certificates, CRL, per-holder ACL) refuses and mutes what it must.

A forbidden publish is answered with a PUBACK and silently dropped (MQTT 3.1.1), so "nothing
arrived" is proved with a barrier: a legitimate message sent after the forbidden one, on a path that
would have carried it first, must arrive and the forbidden one must not have come before it.

Measured on mosquitto 2.0.11 and written down here: it grants every SUBSCRIBE (SUBACK 0x01, even for
``#``) and checks read access on each message it delivers; a SIGHUP re-reads the ACL (open
connections included) and the CRL (new connections); an open connection of a revoked certificate
stays up until a restart.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge import wire
from edge.mqtt import Link
from edge.tls import TlsSettings
from gateway.ingest.worker import SUBSCRIPTIONS as GATEWAY_SUBSCRIPTIONS
from wastecart import broker_config, pki
from wastecart.broker import PrivateBroker

SITE = "H330100001"
A, B, GW, OPS = "CARTA", "CARTB", "GW1", "OPS1"
REVOKED, EXPIRED = "CARTR", "CARTX"
WAIT_S = 10.0  # s for any one message, CONNACK or SUBACK: far above what a loopback broker needs
# The smallest MQTT 3.1.1 CONNECT (client id "x", clean session, keepalive 30 s) for raw socket probes.
CONNECT = bytes([0x10, 13, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 30, 0, 1]) + b"x"


def t(cart: str, leaf: str) -> str:
    return wire.topic(SITE, cart, leaf)


@dataclass
class Site:
    """A PKI, the broker configuration written from it, and the broker started on it."""

    pki: Path
    out: Path
    broker: PrivateBroker

    @property
    def ca(self) -> Path:
        return self.pki / "ca.crt"

    def files(self, client: str) -> tuple[Path, Path]:
        return pki.client_files(self.pki, client)

    def regenerate(self) -> None:
        """`wastecart broker config` again, on the same folder and ports."""
        broker_config.write(self.pki, self.out, self.broker.port, plain_port=self.broker.plain_port,
                            bind="127.0.0.1")


def make_site(root: Path, out: Path, clients: dict[str, str], *, plain: bool = False) -> Site:
    pki.init(root, SITE)
    for client, role in clients.items():
        pki.issue(root, client, role)
    return Site(root, out, PrivateBroker.for_pki(root, out, plain=plain))


def broker_folder() -> tempfile.TemporaryDirectory[str]:
    """A folder the mosquitto user can reach (pytest's tmp folders are closed to it when we are root)."""
    return tempfile.TemporaryDirectory(prefix="wc-broker-acl-")


class Peer:
    """A paho client connected as one identity (its client id is the identity, as for a real cart,
    unless given); what it receives queues up in ``got``."""

    def __init__(self, site: Site, client: str | None, *, tls: bool = True, port: int | None = None,
                 username: str | None = None, client_id: str | None = None) -> None:
        self.name = client or "anonymous"
        self.got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.events: queue.Queue[tuple[str, ReasonCode]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311,
                                  client_id=client_id or client or f"peer-{uuid.uuid4().hex[:8]}")
        if tls:
            cert, key = site.files(client) if client else (None, None)
            self.client.tls_set(str(site.ca), str(cert) if cert else None, str(key) if key else None)
        if username:
            self.client.username_pw_set(username)
        self.client.on_message = lambda _c, _u, m: self.got.put(m)
        self.client.on_subscribe = lambda _c, _u, _mid, rcs, _p: self.subacks.put(rcs)
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self.events.put(("connack", rc))
        self.client.on_disconnect = lambda _c, _u, _f, rc, _p: self.events.put(("closed", rc))
        host = "localhost" if tls else "127.0.0.1"
        self.client.connect(host, port or site.broker.port)
        self.client.loop_start()
        kind, rc = self.events.get(timeout=WAIT_S)
        if kind != "connack" or rc.is_failure:
            self.close()
            raise AssertionError(f"{self.name}: not connected ({kind}: {rc})")

    def subscribe(self, *topics: str) -> list[ReasonCode]:
        self.client.subscribe([(topic, 1) for topic in topics])
        return self.subacks.get(timeout=WAIT_S)

    def publish(self, topic: str, payload: bytes | None = None) -> bytes:
        """Publish QoS 1 and wait for the PUBACK: the broker has handled it (delivered or dropped)."""
        payload = payload or uuid.uuid4().hex.encode()
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(WAIT_S)
        assert info.is_published(), f"{self.name}: no PUBACK for {topic}"
        return payload

    def until(self, barrier: bytes) -> list[str]:
        """The topics received before the message carrying ``barrier`` (which must arrive)."""
        before: list[str] = []
        while True:
            m = self.got.get(timeout=WAIT_S)
            if m.payload == barrier:
                return before
            before.append(m.topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def tls_alert(site: Site, client: str | None = None, files: tuple[Path, Path] | None = None) -> str:
    """Open TLS to the broker with ``client``'s certificate (or ``files``, or none) and read: return
    the reason of the TLS alert the broker answers with.  Nothing is sent after the handshake: data
    the broker left unread would make its close a TCP reset, which can discard the alert."""
    ctx = ssl.create_default_context(cafile=str(site.ca))
    cert_key = files or (site.files(client) if client else None)
    if cert_key:
        ctx.load_cert_chain(*cert_key)
    with socket.create_connection(("localhost", site.broker.port), timeout=WAIT_S) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                s.recv(4)  # TLS 1.3: the broker checks the client's certificate after our handshake ends
        except ssl.SSLError as exc:
            return str(exc.reason)
        except TimeoutError:
            pass  # it waits for our CONNECT: the certificate was accepted
    raise AssertionError(f"the broker accepted {client or files or 'no certificate'}: no TLS alert")


def first_event(c: mqtt.Client, host: str, port: int) -> str:
    """Connect ``c`` and drive its network loop in this thread (no background thread to wait out
    a reconnect back-off) until the broker answers: "connack: <reason>" or "closed: <reason>"."""
    events: queue.Queue[str] = queue.Queue()
    c.on_connect = lambda _c, _u, _f, rc, _p: events.put(f"connack: {rc}")
    c.on_disconnect = lambda _c, _u, _f, rc, _p: events.put(f"closed: {rc}")
    try:
        c.connect(host, port)
    except (ssl.SSLError, ConnectionError) as exc:
        return f"closed: connect raised {exc!r}"
    deadline = time.monotonic() + WAIT_S
    try:
        while events.empty() and time.monotonic() < deadline:
            if c.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS and events.empty():
                return "closed: network loop ended"
        return events.get_nowait()
    finally:
        c.disconnect()


def paho_refused(site: Site, client: str | None = None, files: tuple[Path, Path] | None = None) -> str:
    """Connect with paho as a client would; the connection must close (or the handshake fail)
    before any CONNACK; returns how."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"refused-{uuid.uuid4().hex[:8]}")
    cert, key = files or (site.files(client) if client else (None, None))
    c.tls_set(str(site.ca), str(cert) if cert else None, str(key) if key else None)
    outcome = first_event(c, "localhost", site.broker.port)
    assert outcome.startswith("closed"), f"{client or files}: paho got {outcome}"
    return outcome


# --------------------------------------------------------------------------------------------
# One site shared by the module: carts A and B, a gateway, an operator, a revoked and an expired cart


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("pki")
    with broker_folder() as out:
        s = make_site(root, Path(out), {A: "cart", B: "cart", GW: "gateway", OPS: "operator", REVOKED: "cart"},
                      plain=True)
        pki.revoke(root, REVOKED)
        now = datetime.now(UTC)
        pki.issue(root, EXPIRED, "cart", not_before=now - timedelta(days=3), not_after=now - timedelta(days=1))
        s.regenerate()
        with s.broker:
            yield s


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Cart A's id and site, but issued by another CA."""
    root = tmp_path_factory.mktemp("other-pki")
    pki.init(root, SITE)
    pki.issue(root, A, "cart")
    return pki.client_files(root, A)


@pytest.fixture
def peers(site: Site) -> Iterator[dict[str, Peer]]:
    """Cart A, cart B and the gateway connected; the gateway subscribed as the real gateway does."""
    got = {name: Peer(site, name) for name in (A, B, GW)}
    got[GW].subscribe(*(topic for topic, _ in GATEWAY_SUBSCRIPTIONS))
    got[A].subscribe(t(A, wire.ACK), t(A, f"{wire.CMD}/#"))
    got[B].subscribe(t(B, wire.ACK), t(B, f"{wire.CMD}/#"))
    yield got
    for p in got.values():
        p.close()


def test_the_generated_acl_names_every_valid_holder_and_grants_nobody_a_wildcard_read(site: Site) -> None:
    acl = (site.out / "acl").read_text()
    users = [line.split()[1] for line in acl.splitlines() if line.startswith("user ")]
    assert users == [A, B, GW, OPS]  # REVOKED and EXPIRED are left out
    rules = [line.split() for line in acl.splitlines() if line.startswith(("topic", "pattern"))]
    assert rules and all(kind == "topic" and rule.startswith(f"wc/v1/{SITE}/") for kind, _, rule in rules)
    assert not any(rule in ("#", "+/#") or rule.startswith("$") for _, _, rule in rules)


DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


def test_the_deploy_example_is_what_broker_config_writes() -> None:
    """deploy/mosquitto/ was generated by broker_config (its header says how): it must not drift."""
    conf = (DEPLOY / "mosquitto.conf").read_text()
    paths = broker_config.Paths(out=Path("/etc/wastecart/mosquitto"), data=Path("/var/lib/wastecart-mosquitto"))
    assert broker_config.render_conf(paths, 8883, log_stderr=True, header=conf.split("\n\n", 1)[0]) == conf
    far = datetime.now(UTC) + timedelta(days=365)
    sample = [pki.Holder(client=c, role=r, site=SITE, serial=1, not_before=far, not_after=far, revoked=c == "CART09",
                         cert=Path(), key=Path())
              for c, r in (("CART01", "cart"), ("CART02", "cart"), ("CART09", "cart"), ("GW1", "gateway"),
                           ("OPS1", "operator"))]

    def rules(text: str) -> list[str]:
        return [line for line in text.splitlines() if line and not line.startswith("#")]

    assert rules((DEPLOY / "acl").read_text()) == rules(broker_config.render_acl(sample, SITE))


def test_a_cart_cannot_publish_as_another_cart(peers: dict[str, Peer]) -> None:
    a, gw = peers[A], peers[GW]
    for leaf in (wire.RECORD, wire.STATUS, wire.TELEMETRY, wire.CMD_RESULT):
        a.publish(t(B, leaf), b"forged by A")
    barrier = a.publish(t(A, wire.RECORD))
    assert gw.until(barrier) == []


def test_a_cart_cannot_publish_acks_or_commands(peers: dict[str, Peer]) -> None:
    a, b, gw = peers[A], peers[B], peers[GW]
    for topic in (t(A, wire.ACK), wire.cmd_topic(SITE, A, "resend"), t(B, wire.ACK), wire.cmd_topic(SITE, B, "time")):
        a.publish(topic, b"forged by A")
    barrier_a, barrier_b = gw.publish(t(A, wire.ACK)), gw.publish(t(B, wire.ACK))
    assert a.until(barrier_a) == []
    assert b.until(barrier_b) == []


def test_a_cart_subscribing_to_everything_receives_only_its_own(site: Site, peers: dict[str, Peer]) -> None:
    a, b, gw = peers[A], peers[B], peers[GW]
    granted = a.subscribe("#", t(B, wire.ACK), t(B, f"{wire.CMD}/#"), f"wc/v1/{SITE}/+/{wire.RECORD}",
                          f"wc/v1/{SITE}/+/{wire.STATUS}")
    # mosquitto 2.0.11 grants them all (it checks read access per delivered message); a broker that
    # refuses them (SUBACK 0x80) is as good: either way nothing of B's may arrive below.
    assert len(granted) == 5
    for leaf in (wire.RECORD, wire.STATUS, wire.TELEMETRY, wire.CMD_RESULT):
        b.publish(t(B, leaf))
    gw.publish(t(B, wire.ACK))
    gw.publish(wire.cmd_topic(SITE, B, "resend"))
    barrier = gw.publish(t(A, wire.ACK))  # A may read its own acks: the last message in line for it
    before = a.until(barrier)
    assert all(topic == t(A, wire.ACK) for topic in before), before  # at most a copy of the barrier's topic


def test_the_gateway_reads_every_carts_records_and_writes_acks_and_commands(peers: dict[str, Peer]) -> None:
    a, b, gw = peers[A], peers[B], peers[GW]
    sent = {a.publish(t(A, wire.RECORD)): t(A, wire.RECORD), b.publish(t(B, wire.RECORD)): t(B, wire.RECORD),
            b.publish(t(B, wire.STATUS)): t(B, wire.STATUS), a.publish(t(A, wire.CMD_RESULT)): t(A, wire.CMD_RESULT)}
    received: dict[bytes, str] = {}
    while len(received) < len(sent):
        m = gw.got.get(timeout=WAIT_S)
        received[bytes(m.payload)] = m.topic
    assert received == sent
    ack_a, cmd_b = gw.publish(t(A, wire.ACK)), gw.publish(wire.cmd_topic(SITE, B, "resend"))
    assert a.got.get(timeout=WAIT_S).payload == ack_a
    assert b.got.get(timeout=WAIT_S).payload == cmd_b


def test_the_gateway_cannot_publish_as_a_cart(peers: dict[str, Peer]) -> None:
    gw, a = peers[GW], peers[A]
    gw.publish(t(A, wire.RECORD), b"forged by the gateway")
    gw.publish(t(A, wire.STATUS), b"forged by the gateway")
    barrier = a.publish(t(A, wire.RECORD))
    assert gw.until(barrier) == []


def test_the_operator_reads_status_and_telemetry_only_and_publishes_nothing(site: Site, peers: dict[str, Peer]) -> None:
    ops = Peer(site, OPS)
    try:
        b, gw = peers[B], peers[GW]
        ops.publish(t(B, wire.STATUS), b"forged by the operator")
        ops.publish(t(B, wire.RECORD), b"forged by the operator")
        assert gw.until(b.publish(t(B, wire.RECORD))) == []
        ops.subscribe(f"wc/v1/{SITE}/+/#")
        b.publish(t(B, wire.RECORD))
        b.publish(t(B, wire.CMD_RESULT))
        gw.publish(t(B, wire.ACK))
        b.publish(t(B, wire.TELEMETRY))
        barrier = b.publish(t(B, wire.STATUS))
        assert ops.until(barrier) == [t(B, wire.TELEMETRY)]  # no record, command result or ack
    finally:
        ops.close()


def test_a_user_name_sent_by_the_client_is_ignored(site: Site, peers: dict[str, Peer]) -> None:
    """The certificate's CN is the user name: cart A claiming to be the gateway gets cart A's rights."""
    peers[A].close()  # the same certificate is the same client id: two would take turns
    posing = Peer(site, A, username=GW)
    try:
        posing.subscribe(f"wc/v1/{SITE}/+/{wire.RECORD}", t(A, wire.ACK))
        peers[B].publish(t(B, wire.RECORD))
        barrier = peers[GW].publish(t(A, wire.ACK))
        assert posing.until(barrier) == []  # no record of B's came before A's own ack
    finally:
        posing.close()


def test_a_client_id_cannot_take_over_another_carts_session(site: Site, peers: dict[str, Peer]) -> None:
    """The CN is also the client id: cart A connecting with B's client id does not disconnect B."""
    peers[A].close()  # its own session is the one cart A may take over
    posing = Peer(site, A, client_id=B)
    try:
        barrier = peers[GW].publish(t(B, wire.ACK))
        assert peers[B].until(barrier) == []  # B still connected: it got the ack on the same connection
        assert peers[B].events.empty(), "cart B was disconnected by a client using its client id"
    finally:
        posing.close()


@pytest.mark.parametrize(("who", "alert"), [
    (None, "CERTIFICATE_REQUIRED"),
    (EXPIRED, "CERTIFICATE_EXPIRED"),
    (REVOKED, "CERTIFICATE_REVOKED"),  # revoked before the broker started: it read the CRL at start
])
def test_a_client_without_a_valid_certificate_is_refused(site: Site, who: str | None, alert: str) -> None:
    assert alert in tls_alert(site, who)
    assert paho_refused(site, who)


def test_a_certificate_from_another_ca_is_refused(site: Site, stranger: tuple[Path, Path]) -> None:
    assert "UNKNOWN_CA" in tls_alert(site, files=stranger)
    assert paho_refused(site, files=stranger)


def test_plain_mqtt_to_the_tls_listener_gets_no_connack(site: Site) -> None:
    with socket.create_connection(("127.0.0.1", site.broker.port), timeout=WAIT_S) as s:
        s.sendall(CONNECT)
        try:
            answer = s.recv(4)
        except ConnectionResetError:
            answer = b""
    assert answer == b"", f"the TLS listener answered plain MQTT with {answer!r}"
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"plain-{uuid.uuid4().hex[:8]}")
    assert first_event(c, "127.0.0.1", site.broker.port).startswith("closed")


# --------------------------------------------------------------------------------------------
# The plaintext listener


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp and tcp6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_plaintext_listener_is_bound_to_loopback_only(site: Site) -> None:
    assert site.broker.plain_port is not None
    assert f"listener {site.broker.plain_port} 127.0.0.1" in (site.out / "mosquitto.conf").read_text()
    assert listening_addresses(site.broker.plain_port) == {"0100007F"}  # 127.0.0.1, little-endian hex


@pytest.mark.parametrize("username", [None, GW])
def test_anonymous_on_the_plaintext_listener_reads_status_but_no_records(site: Site, peers: dict[str, Peer],
                                                                         username: str | None) -> None:
    """Anonymous gets the operator's reads; a client naming itself (no password there) gets nothing."""
    local = Peer(site, None, tls=False, port=site.broker.plain_port, username=username)
    try:
        a, gw = peers[A], peers[GW]
        local.publish(t(A, wire.RECORD), b"forged on the plaintext listener")
        local.publish(t(A, wire.STATUS), b"forged on the plaintext listener")
        assert gw.until(a.publish(t(A, wire.RECORD))) == []
        local.subscribe(f"wc/v1/{SITE}/+/#")
        a.publish(t(A, wire.RECORD))
        status = a.publish(t(A, wire.STATUS))
        if username is None:
            assert local.until(status) == []  # the status came, the record before it did not
        else:
            # No barrier can reach a client without any right: wait for what would come at once.
            with pytest.raises(queue.Empty):
                local.got.get(timeout=0.5)
    finally:
        local.close()


# --------------------------------------------------------------------------------------------
# Changes: a site of its own, since these tests revoke and restart


@pytest.fixture
def changing(tmp_path: Path) -> Iterator[Site]:
    with broker_folder() as out:
        s = make_site(tmp_path / "pki", Path(out), {GW: "gateway", A: "cart", REVOKED: "cart"})
        with s.broker:
            yield s


def test_revocation_takes_effect_on_reload_and_restart(changing: Site) -> None:
    gw, victim, other = Peer(changing, GW), Peer(changing, REVOKED), Peer(changing, A)
    try:
        gw.subscribe(f"wc/v1/{SITE}/+/{wire.RECORD}")
        assert gw.until(victim.publish(t(REVOKED, wire.RECORD))) == []  # it works before the revocation

        pki.revoke(changing.pki, REVOKED)
        changing.regenerate()
        changing.broker.reload()
        assert "CERTIFICATE_REVOKED" in tls_alert(changing, REVOKED)  # SIGHUP re-read the CRL
        # Its open connection survives the reload, but the reloaded ACL mutes it.
        assert victim.events.empty()
        victim.publish(t(REVOKED, wire.RECORD), b"after the revocation")
        assert gw.until(other.publish(t(A, wire.RECORD))) == []

        changing.broker.restart()
        assert victim.events.get(timeout=WAIT_S)[0] == "closed"  # a restart closes it
        assert "CERTIFICATE_REVOKED" in tls_alert(changing, REVOKED)
        assert paho_refused(changing, REVOKED)
    finally:
        for p in (gw, victim, other):
            p.close()


def test_a_cart_issued_later_gets_its_rights_on_reload(changing: Site) -> None:
    pki.issue(changing.pki, B, "cart")
    gw = Peer(changing, GW)
    late = Peer(changing, B)  # the CA is the same, so it connects; the old ACL gives it nothing
    try:
        gw.subscribe(f"wc/v1/{SITE}/+/{wire.RECORD}")
        late.publish(t(B, wire.RECORD), b"before the reload")
        changing.regenerate()
        changing.broker.reload()
        assert gw.until(late.publish(t(B, wire.RECORD))) == []  # the one before the reload was dropped
    finally:
        gw.close()
        late.close()


def test_a_revoked_cart_says_so_in_one_line_while_it_retries(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    """The cart's own client (``edge.mqtt.Link``, as the uplink builds it) with a revoked certificate:
    one ERROR line that names the identity, the files and the broker's verdict, however often paho
    retries; never a silent reconnect loop."""
    cert, key = site.files(REVOKED)
    link = Link(site.broker.url, f"wc-cart-{REVOKED}", tls=TlsSettings(ca=site.ca, cert=cert, key=key))
    with caplog.at_level(logging.INFO, logger="edge.mqtt"):
        link.start()
        try:
            assert link.wait_failures(3, timeout=30), "paho stopped retrying"
        finally:
            link.stop()
    errors = [r.getMessage() for r in caplog.records if r.name == "edge.mqtt" and r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert f"as {REVOKED}" in errors[0] and "certificate revoked" in errors[0] and str(cert) in errors[0]
