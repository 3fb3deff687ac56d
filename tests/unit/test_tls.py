"""Client TLS settings (``edge.tls``): each way the files can be wrong is one clear error naming the
file; the context verifies the broker against the site CA and presents our certificate; the config
sections and flags that carry them.

Certificates are made here with ``cryptography`` (a CA, another CA, a broker, clients valid, expired,
not yet valid), so every failure is a real file; handshakes run in memory (``ssl.MemoryBIO``).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from edge import tls, wire
from edge.app import preflight
from edge.config import EdgeConfig
from edge.errors import SetupError, UplinkError
from edge.ledger.settings import UplinkSettings
from edge.ledger.store import Ledger
from edge.ledger.uplink import Uplink
from edge.mqtt import Link
from edge.tls import TlsError, TlsSettings
from gateway.app import GatewayApp
from gateway.config import GatewayConfig
from gateway.errors import GatewayError
from wastecart.cli import build
from wastecart.cmd_edge import tls_overrides
from wastecart.config import ConfigError, load

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
CART = "CART-01"


@dataclass(frozen=True)
class Issuer:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "H1")])


def make_ca(cn: str, *, start: datetime = NOW - DAY, end: datetime = NOW + 3650 * DAY) -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Issuer(cert, key)


def make_leaf(ca: Issuer, cn: str, *, start: datetime = NOW - DAY, end: datetime = NOW + 800 * DAY,
              server: bool = False, key: ec.EllipticCurvePrivateKey | None = None) -> Issuer:
    key = key or ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.cert.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    return Issuer(b.sign(ca.key, hashes.SHA256()), key)


def write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def write_key(path: Path, key: ec.EllipticCurvePrivateKey, *, mode: int = 0o600,
              encryption: serialization.KeySerializationEncryption | None = None) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       encryption or serialization.NoEncryption()))
    path.chmod(mode)
    return path


@dataclass(frozen=True)
class Files:
    dir: Path
    ca: Issuer
    client: Issuer

    def settings(self, **given: object) -> TlsSettings:
        base: dict[str, object] = {"ca": self.dir / "ca.crt", "cert": self.dir / "client.crt",
                                   "key": self.dir / "client.key"}
        return TlsSettings.model_validate({**base, **given})


@pytest.fixture
def files(tmp_path: Path) -> Files:
    ca = make_ca("wastecart site CA H1")
    client = make_leaf(ca, CART)
    write_cert(tmp_path / "ca.crt", ca.cert)
    write_cert(tmp_path / "client.crt", client.cert)
    write_key(tmp_path / "client.key", client.key)
    return Files(tmp_path, ca, client)


# check(): one clear error per way a file can be wrong -----------------------------------------------

def test_good_files_pass_and_name_their_holder(files: Files) -> None:
    tls.check(files.settings())
    assert tls.identity(files.settings()) == CART
    assert tls.identity(None) == "(no client certificate)"


def test_a_missing_file_names_it(files: Files) -> None:
    for field in ("ca", "cert", "key"):
        gone = files.dir / f"gone-{field}.pem"
        with pytest.raises(TlsError) as info:
            tls.check(files.settings(**{field: gone}))
        assert info.value.field == field
        assert str(gone) in str(info.value) and "No such file" in str(info.value)


def test_a_key_others_may_read_is_refused(files: Files) -> None:
    (files.dir / "client.key").chmod(0o644)
    with pytest.raises(TlsError, match=r"client.key: private key is readable by others \(mode 0644\); "
                                       r"run `chmod 600 .*client.key`") as info:
        tls.check(files.settings())
    assert info.value.field == "key"


def test_files_that_are_not_pem_are_named(files: Files) -> None:
    junk = files.dir / "junk.pem"
    junk.write_text("this is not a certificate\n")
    with pytest.raises(TlsError, match=r"junk.pem: not a PEM CA certificate") as info:
        tls.check(files.settings(ca=junk))
    assert info.value.field == "ca"
    with pytest.raises(TlsError, match=r"junk.pem: not a PEM certificate") as info:
        tls.check(files.settings(cert=junk))
    assert info.value.field == "cert"
    junk.chmod(0o600)
    with pytest.raises(TlsError, match=r"junk.pem: not a PEM private key") as info:
        tls.check(files.settings(key=junk))
    assert info.value.field == "key"


def test_an_encrypted_key_is_refused(files: Files) -> None:
    locked = write_key(files.dir / "locked.key", files.client.key,
                       encryption=serialization.BestAvailableEncryption(b"secret"))
    with pytest.raises(TlsError, match=r"locked.key: the private key is encrypted"):
        tls.check(files.settings(key=locked))


def test_a_certificate_of_another_ca_is_named(files: Files) -> None:
    other = make_ca("wastecart site CA H2")
    stranger = make_leaf(other, CART)
    write_cert(files.dir / "stranger.crt", stranger.cert)
    write_key(files.dir / "stranger.key", stranger.key)
    with pytest.raises(TlsError, match=r"stranger.crt: not issued by the CA in .*ca.crt \(the certificate's issuer "
                                       r"is O=H1,CN=wastecart site CA H2, the CA is O=H1,CN=wastecart site CA H1\)") \
            as info:
        tls.check(files.settings(cert=files.dir / "stranger.crt", key=files.dir / "stranger.key"))
    assert info.value.field == "cert"
    # same subject, different key: the signature decides, not the name
    twin = make_ca("wastecart site CA H1")
    forged = make_leaf(twin, CART)
    write_cert(files.dir / "forged.crt", forged.cert)
    write_key(files.dir / "forged.key", forged.key)
    with pytest.raises(TlsError, match=r"forged\.crt: not issued by the CA"):
        tls.check(files.settings(cert=files.dir / "forged.crt", key=files.dir / "forged.key"))


def test_a_key_of_another_certificate_is_named(files: Files) -> None:
    other = make_leaf(files.ca, "CART-02")
    write_key(files.dir / "cart02.key", other.key)
    with pytest.raises(TlsError, match=r"cart02.key: not the key of the certificate .*client.crt") as info:
        tls.check(files.settings(key=files.dir / "cart02.key"))
    assert info.value.field == "key"


def test_expired_and_future_certificates_say_their_dates(files: Files) -> None:
    end = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    old = make_leaf(files.ca, CART, start=end - 800 * DAY, end=end, key=files.client.key)
    write_cert(files.dir / "old.crt", old.cert)
    with pytest.raises(TlsError, match=r"old.crt: certificate expired on 2025-03-01 12:00 UTC \(valid 2022-12-22 "
                                       r"12:00 to 2025-03-01 12:00 UTC\)") as info:
        tls.check(files.settings(cert=files.dir / "old.crt"))
    assert info.value.field == "cert"
    start = NOW + 10 * DAY
    early = make_leaf(files.ca, CART, start=start, end=start + DAY, key=files.client.key)
    write_cert(files.dir / "early.crt", early.cert)
    with pytest.raises(TlsError, match=rf"early.crt: certificate not valid yet, from {start:%Y-%m-%d %H:%M} UTC"):
        tls.check(files.settings(cert=files.dir / "early.crt"))
    tls.check(files.settings(cert=files.dir / "early.crt"), now=start + timedelta(hours=1))  # its time comes


def test_an_expired_ca_is_named(files: Files) -> None:
    ca = make_ca("wastecart site CA H1", start=NOW - 20 * DAY, end=NOW - DAY)
    write_cert(files.dir / "oldca.crt", ca.cert)
    with pytest.raises(TlsError, match=r"oldca.crt: certificate expired on") as info:
        tls.check(files.settings(ca=files.dir / "oldca.crt"))
    assert info.value.field == "ca"


# context(): what paho connects with -----------------------------------------------------------------

def handshake(client: ssl.SSLContext, server: ssl.SSLContext, host: str = "localhost") -> None:
    """A TLS handshake in memory, then the client's first read (where TLS 1.3 delivers the server's
    verdict on the client's certificate); raises what the client's side raises."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_hostname=host)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    client_done = server_done = refused = False
    while not (client_done and (server_done or refused)):
        if not client_done:
            client_done = _step(c.do_handshake)
        s_in.write(c_out.read())
        if not (server_done or refused):
            try:
                server_done = _step(s.do_handshake)
            except ssl.SSLError:
                refused = True  # the server refused us: its alert is on its way to the client
        c_in.write(s_out.read())
    if server_done:
        s.write(b"x")
        c_in.write(s_out.read())
    assert c.read(1) == b"x"


def _step(do: Callable[[], object]) -> bool:
    try:
        do()
    except ssl.SSLWantReadError:
        return False
    return True


def server_context(files: Files, ca: Issuer | None = None, *, require_cert: bool = True) -> ssl.SSLContext:
    issuer = ca or files.ca
    server = make_leaf(issuer, "broker", server=True)
    write_cert(files.dir / "server.crt", server.cert)
    write_key(files.dir / "server.key", server.key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files.dir / "server.crt", files.dir / "server.key")
    ctx.load_verify_locations(files.dir / "ca.crt")
    ctx.verify_mode = ssl.CERT_REQUIRED if require_cert else ssl.CERT_NONE
    return ctx


def test_the_context_trusts_the_site_ca_and_presents_our_certificate(files: Files) -> None:
    ctx = tls.context(files.settings())
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert not tls.context(files.settings(check_hostname=False)).check_hostname
    handshake(ctx, server_context(files))  # the broker requires our certificate: it gets one it trusts


def test_a_broker_of_another_ca_fails_the_handshake_in_plain_words(files: Files) -> None:
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        handshake(tls.context(files.settings()), server_context(files, make_ca("other CA")))
    assert tls.failure(info.value).startswith("certificate verify failed: ")
    assert "the broker's certificate is not from this CA" in tls.failure(info.value)


def test_host_name_checking_is_on_unless_switched_off(files: Files) -> None:
    server = server_context(files)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        handshake(tls.context(files.settings()), server, host="broker.example")
    assert "does not name this host (check_hostname / --tls-no-hostname-check)" in tls.failure(info.value)
    handshake(tls.context(files.settings(check_hostname=False)), server, host="broker.example")


def test_the_brokers_verdict_on_our_certificate_is_named(files: Files, monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS 1.3: the client finishes its handshake first; the broker's alert comes on the first read.
    No settings: the system's CA store (here: OpenSSL's SSL_CERT_FILE) and no client certificate."""
    monkeypatch.setenv("SSL_CERT_FILE", str(files.dir / "ca.crt"))
    with pytest.raises(ssl.SSLError) as info:
        handshake(tls.context(None), server_context(files))
    assert tls.failure(info.value) == "tlsv13 alert certificate required: the broker requires a client certificate"


def test_the_context_refuses_what_check_refuses(files: Files) -> None:
    (files.dir / "client.key").chmod(0o640)
    with pytest.raises(TlsError, match="readable by others"):
        tls.context(files.settings())
    (files.dir / "client.key").chmod(0o600)
    write_key(files.dir / "other.key", make_leaf(files.ca, "x").key)
    with pytest.raises(TlsError, match=r"cannot load the certificate and key \(key values mismatch\)"):
        tls.context(files.settings(key=files.dir / "other.key"))


# Link and Uplink: TLS settings need an mqtts:// URL -------------------------------------------------

def test_tls_settings_with_a_plaintext_url_are_refused(files: Files, tmp_path: Path) -> None:
    with pytest.raises(wire.ContractError, match=r"TLS settings are given but the broker URL is "
                                                 r"mqtt://127.0.0.1:1883: use mqtts://127.0.0.1:1883"):
        Link("mqtt://127.0.0.1:1883", "c", tls=files.settings())
    link = Link("mqtts://localhost:8883", "c", tls=files.settings())
    assert link.identity == CART and link.port == 8883
    ledger = Ledger(tmp_path / "cart", CART, Ed25519PrivateKey.generate())
    try:
        key = wire.public_key_text(Ed25519PrivateKey.generate().public_key())
        with pytest.raises(UplinkError, match="use mqtts://"):
            Uplink(ledger, site="H1", broker="mqtt://127.0.0.1:1883",
                   settings=UplinkSettings(gateway_keys=(key,), tls=files.settings()))
    finally:
        ledger.close()


# config: [uplink.tls] and [tls], flags, start-up checks ----------------------------------------------

def edge_toml(tmp_path: Path, text: str, broker: str = "mqtts://localhost:8883") -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(f'org = "H1"\ncart = "{CART}"\ndata = "{tmp_path / "data"}"\nbroker = "{broker}"\n'
                    'roster = { version = "t1", org_name = "测试医院" }\n' + text)
    return path


def tls_section(files: Files, name: str = "uplink.tls", **extra: str) -> str:
    lines = [f"[{name}]", f'ca = "{files.dir / "ca.crt"}"', f'cert = "{files.dir / "client.crt"}"',
             f'key = "{files.dir / "client.key"}"', *(f"{k} = {v}" for k, v in extra.items())]
    return "\n".join(lines) + "\n"


def test_the_uplink_tls_section(files: Files, tmp_path: Path) -> None:
    cfg = load(EdgeConfig, edge_toml(tmp_path, tls_section(files, check_hostname="false")))
    assert cfg.uplink.tls == files.settings(check_hostname=False)
    assert load(EdgeConfig, edge_toml(tmp_path, "")).uplink.tls is None


@pytest.mark.parametrize(("section", "url", "message"), [
    ("[uplink.tls]\ncafile = \"x\"\n", "mqtts://h", "uplink.tls.cafile: Extra inputs are not permitted"),
    ("[uplink.tls]\nca = \"x\"\nkey = \"y\"\n", "mqtts://h", "uplink.tls.cert: Field required"),
    ("[uplink.tls]\nca = \"x\"\ncert = \"y\"\nkey = \"z\"\ncheck_hostname = \"maybe\"\n", "mqtts://h",
     "uplink.tls.check_hostname: Input should be a valid boolean"),
    ("[uplink.tls]\nca = \"x\"\ncert = \"y\"\nkey = \"z\"\n", "mqtt://h:1883",
     "[uplink.tls] is set but broker is 'mqtt://h:1883': use mqtts://"),
])
def test_bad_tls_settings_name_the_key(tmp_path: Path, section: str, url: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(EdgeConfig, edge_toml(tmp_path, section, url))
    assert message in str(info.value)


def test_flags_override_the_tls_section(files: Files, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    args = build().parser.parse_args(["edge", "run", "--tls-key", str(other / "k.pem"), "--tls-no-hostname-check"])
    cfg = load(EdgeConfig, edge_toml(tmp_path, tls_section(files)), tls_overrides(args, "uplink.tls"))
    assert cfg.uplink.tls is not None
    assert (cfg.uplink.tls.key, cfg.uplink.tls.ca, cfg.uplink.tls.check_hostname) == \
        (other / "k.pem", files.dir / "ca.crt", False)
    args = build().parser.parse_args(["gateway", "run", "--tls-ca", "a.crt", "--tls-cert", "b.crt",
                                      "--tls-key", "b.key"])
    gw = load(GatewayConfig, None, {"data": str(tmp_path), "platform": "http://p", "broker": "mqtts://h",
                                    **tls_overrides(args, "tls")})
    assert gw.tls == TlsSettings(ca=Path("a.crt"), cert=Path("b.crt"), key=Path("b.key"))
    args = build().parser.parse_args(["gateway", "run"])  # no flag: the file's section stays as it is
    assert not {k: v for k, v in tls_overrides(args, "tls").items() if v is not None}


def test_start_up_checks_name_the_tls_setting_and_file(files: Files, tmp_path: Path) -> None:
    key = wire.public_key_text(Ed25519PrivateKey.generate().public_key())
    cfg = load(EdgeConfig, edge_toml(tmp_path, f'[uplink]\ngateway_keys = ["{key}"]\n' + tls_section(files)))
    preflight(cfg)  # good files, issued to this cart
    (files.dir / "client.key").chmod(0o644)
    with pytest.raises(SetupError, match=rf"setting uplink.tls.key: {files.dir}/client.key: private key is "
                                         r"readable by others \(mode 0644\)"):
        preflight(cfg)
    (files.dir / "client.key").chmod(0o600)
    cart02 = make_leaf(files.ca, "CART-02", key=files.client.key)
    write_cert(files.dir / "client.crt", cart02.cert)
    with pytest.raises(SetupError, match=r"setting uplink.tls.cert: .*client.crt: issued to 'CART-02', not to "
                                         r"this cart 'CART-01'.*`wastecart pki issue --dir DIR --client CART-01 "
                                         r"--role cart`"):
        preflight(cfg)


def test_the_gateway_checks_its_tls_files_before_anything_starts(files: Files, tmp_path: Path) -> None:
    (tmp_path / "gw.toml").write_text(f'data = "{tmp_path / "gw"}"\nplatform = "http://127.0.0.1:9"\n'
                                      f'broker = "mqtts://localhost:8883"\n' + tls_section(files, "tls"))
    cfg = load(GatewayConfig, tmp_path / "gw.toml")
    (tmp_path / "gw").mkdir()
    (files.dir / "client.key").chmod(0o604)
    with pytest.raises(GatewayError, match=r"setting tls.key: .*client.key: private key is readable by others"):
        GatewayApp(cfg)
    assert not (tmp_path / "gw" / "gateway.key").exists()  # stopped before it made anything
    with pytest.raises(ConfigError, match=r"\[tls\] is set but broker is 'mqtt://127.0.0.1:1883': use mqtts://"):
        load(GatewayConfig, tmp_path / "gw.toml", {"broker": "mqtt://127.0.0.1:1883"})



@pytest.mark.parametrize(("example", "section", "model"), [
    ("edge.example.toml", "[uplink.tls]", EdgeConfig), ("gateway.example.toml", "[tls]", GatewayConfig)])
def test_the_example_tls_sections_are_valid_when_uncommented(
        tmp_path: Path, example: str, section: str, model: type[EdgeConfig | GatewayConfig]) -> None:
    text = (Path(__file__).parents[2] / "deploy" / example).read_text("utf-8")
    block = text[text.index(f"# {section}"):].split("\n\n")[0]
    (tmp_path / "keys").mkdir()
    path = tmp_path / example
    path.write_text(text + "\n" + "\n".join(line.removeprefix("# ") for line in block.splitlines()) + "\n")
    cfg = load(model, path, {"broker": "mqtts://broker.example:8883", "cart_keys_dir": str(tmp_path / "keys")}
               if model is GatewayConfig else {"broker": "mqtts://broker.example:8883"})
    settings = cfg.uplink.tls if isinstance(cfg, EdgeConfig) else cfg.tls
    assert settings is not None and settings.check_hostname and settings.key.name == "client.key"
