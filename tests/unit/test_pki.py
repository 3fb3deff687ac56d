"""The site PKI (wastecart.pki, ``wastecart pki``): certificates that chain to the site CA and say who
and what their holder is, keys that stay private, a CRL that remembers every revocation and warns
before it expires, and (with OpenSSL through ``ssl``) a handshake that lets in exactly our clients."""

from __future__ import annotations

import json
import queue
import socket
import ssl
import stat
import threading
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.tls import TlsError, check_private
from wastecart import pki
from wastecart.cli import main

SITE = "SITE1"
TLS_WAIT_S = 5.0  # s for a loopback TLS handshake; only a hang would come near it


@pytest.fixture
def d(tmp_path: Path) -> Path:
    """A fresh PKI whose broker is also reachable as broker.example and 10.1.2.3."""
    pki.init(tmp_path / "pki", SITE, ["broker.example", "10.1.2.3"])
    return tmp_path / "pki"


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def crl(d: Path) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl((d / "crl.pem").read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def subject(c: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    return str(c.subject.get_attributes_for_oid(oid)[0].value)


# --------------------------------------------------------------------------------------------
# init


def test_init_makes_a_p256_ca_that_may_only_sign(d: Path) -> None:
    ca = cert(d / "ca.crt")
    ca.verify_directly_issued_by(ca)
    assert subject(ca, NameOID.COMMON_NAME) == f"wastecart site CA {SITE}"
    assert subject(ca, NameOID.ORGANIZATION_NAME) == SITE
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value == x509.BasicConstraints(True, 0)
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert isinstance(ca.signature_hash_algorithm, hashes.SHA256)
    assert ca.not_valid_after_utc - datetime.now(UTC) > timedelta(days=pki.CA_DAYS - 1)
    assert pki.site_of(d) == SITE and mode(d / "ca.key") == mode(d / "server.key") == 0o600
    assert pki.holders(d) == [] and list(crl(d)) == []
    assert crl(d).is_signature_valid(key)


def test_the_broker_certificate_names_its_hosts_plus_localhost(d: Path) -> None:
    server = cert(d / "server.crt")
    server.verify_directly_issued_by(cert(d / "ca.crt"))
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.example", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ip_address("10.1.2.3"), ip_address("127.0.0.1")]
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ski = cert(d / "ca.crt").extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = server.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest


def test_init_never_overwrites_a_ca(d: Path) -> None:
    before = (d / "ca.key").read_bytes()
    with pytest.raises(pki.PkiError, match=r"ca\.crt: .* already has a site CA"):
        pki.init(d, SITE)
    (d / "ca.crt").unlink()  # a key without its certificate is still a CA not to lose
    with pytest.raises(pki.PkiError, match=r"ca\.key"):
        pki.init(d, SITE)
    assert (d / "ca.key").read_bytes() == before


@pytest.mark.parametrize(("site", "hosts"), [("site/1", ()), ("#", ()), ("S1", ("bad host",)), ("S1", ("",))])
def test_init_refuses_bad_sites_and_host_names(tmp_path: Path, site: str, hosts: tuple[str, ...]) -> None:
    with pytest.raises(pki.PkiError, match=r"site|server-host"):
        pki.init(tmp_path / "p", site, hosts)
    assert not (tmp_path / "p" / "ca.key").exists()


# --------------------------------------------------------------------------------------------
# issue, holders, client_files


@pytest.mark.parametrize("role", pki.ROLES)
def test_an_issued_certificate_says_who_and_what_and_chains_to_the_ca(d: Path, role: str) -> None:
    h = pki.issue(d, "CART-01", role)
    c = cert(h.cert)
    c.verify_directly_issued_by(cert(d / "ca.crt"))
    assert (subject(c, NameOID.COMMON_NAME), subject(c, NameOID.ORGANIZATION_NAME),
            subject(c, NameOID.ORGANIZATIONAL_UNIT_NAME)) == ("CART-01", SITE, role)
    assert list(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert (h.client, h.role, h.site, h.serial, h.revoked) == ("CART-01", role, SITE, c.serial_number, False)
    assert h.not_after - h.not_before > timedelta(days=pki.CLIENT_DAYS)
    key = serialization.load_pem_private_key(h.key.read_bytes(), password=None)
    assert key.public_key() == c.public_key() and mode(h.key) == 0o600 and mode(h.cert) == 0o644
    assert pki.holders(d) == [h]
    assert pki.client_files(d, "CART-01") == (h.cert, h.key) == (d / "clients/CART-01/client.crt",
                                                                  d / "clients/CART-01/client.key")


def test_holders_lists_every_client_with_distinct_random_serials(d: Path) -> None:
    issued = [pki.issue(d, cid, role) for cid, role in [("GW", "gateway"), ("C2", "cart"), ("OPS", "operator")]]
    assert [h.client for h in pki.holders(d)] == ["C2", "GW", "OPS"]
    assert sorted(pki.holders(d), key=lambda h: h.serial) == sorted(issued, key=lambda h: h.serial)
    assert len({h.serial for h in issued}) == 3 and all(h.serial.bit_length() > 64 for h in issued)


def test_a_client_id_is_unique_across_roles(d: Path) -> None:
    first = pki.issue(d, "C1", "cart")
    for role in pki.ROLES:
        with pytest.raises(pki.PkiError, match=r"client C1: already holds a cart certificate .*pki revoke"):
            pki.issue(d, "C1", role)
    assert pki.holders(d) == [first]


@pytest.mark.parametrize(("client", "role", "why"), [
    ("c/1", "cart", "client id"), ("+", "cart", "client id"), ("C1", "admin", "role 'admin'"), ("x" * 40, "cart", "id"),
])
def test_issue_refuses_ids_that_are_no_topic_level_and_unknown_roles(d: Path, client: str, role: str, why: str) -> None:
    with pytest.raises(pki.PkiError, match=why):
        pki.issue(d, client, role)
    assert pki.holders(d) == []


def test_issue_and_revoke_refuse_a_ca_key_others_may_read(d: Path) -> None:
    first = pki.issue(d, "C1", "cart")
    (d / "ca.key").chmod(0o644)
    with pytest.raises(TlsError) as expected:
        check_private(d / "ca.key")
    with pytest.raises(pki.PkiError) as got:
        pki.issue(d, "C2", "cart")
    assert str(got.value) == str(expected.value) and "ca.key" in str(got.value) and "chmod 600" in str(got.value)
    with pytest.raises(pki.PkiError, match=r"ca\.key: private key is readable"):
        pki.revoke(d, "C1")
    assert pki.holders(d) == [first]


def test_an_expired_certificate_can_be_made_and_then_replaced(d: Path) -> None:
    now = datetime.now(UTC)
    old = pki.issue(d, "OLD", "cart", not_before=now - timedelta(days=10), not_after=now - timedelta(days=1))
    assert old.not_after < now and cert(old.cert).not_valid_after_utc == old.not_after
    new = pki.issue(d, "OLD", "cart")  # an expired certificate lets no one in: no revocation needed
    assert new.not_after > now and (d / f"clients/OLD/expired-{old.serial:x}.crt").exists()


def test_a_certificate_may_not_outlive_the_ca_nor_end_before_it_starts(d: Path) -> None:
    with pytest.raises(pki.PkiError, match=r"outlive the site CA"):
        pki.issue(d, "C1", "cart", days=pki.CA_DAYS + 1)
    now = datetime.now(UTC)
    with pytest.raises(pki.PkiError, match=r"not after"):
        pki.issue(d, "C1", "cart", not_before=now, not_after=now - timedelta(seconds=1))
    assert pki.holders(d) == []


def test_missing_files_name_the_command_that_makes_them(tmp_path: Path, d: Path) -> None:
    with pytest.raises(pki.PkiError, match=r"client C9: .*client\.crt is missing; run `wastecart pki issue"):
        pki.client_files(d, "C9")
    with pytest.raises(pki.PkiError, match=r"nope/site: no site file.*pki init"):
        pki.holders(tmp_path / "nope")


# --------------------------------------------------------------------------------------------
# revoke and the CRL


def test_revocation_accumulates_in_a_signed_crl_and_holders_flags_it(d: Path) -> None:
    c1, c2, keep = pki.issue(d, "C1", "cart"), pki.issue(d, "C2", "cart"), pki.issue(d, "GW", "gateway")
    r1 = pki.revoke(d, "C1")
    assert r1.revoked and r1.serial == c1.serial
    pki.revoke(d, "C2", crl_days=3)
    revoked = crl(d)
    assert {e.serial_number for e in revoked} == {c1.serial, c2.serial}  # the earlier entry is kept
    ca_key = cert(d / "ca.crt").public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey) and revoked.is_signature_valid(ca_key)
    assert revoked.next_update_utc is not None
    assert timedelta(days=2, hours=23) < revoked.next_update_utc - datetime.now(UTC) <= timedelta(days=3)
    assert {h.client: h.revoked for h in pki.holders(d)} == {"C1": True, "C2": True, "GW": False}
    assert keep in pki.holders(d)
    with pytest.raises(pki.PkiError, match=r"client C1: .* already revoked"):
        pki.revoke(d, "C1")
    with pytest.raises(pki.PkiError, match=r"client NOBODY: no certificate"):
        pki.revoke(d, "NOBODY")


def test_a_revoked_id_gets_a_new_certificate_and_stays_in_the_crl(d: Path) -> None:
    old = pki.revoke(d, pki.issue(d, "C1", "cart").client)
    new = pki.issue(d, "C1", "cart")
    assert new.serial != old.serial and not new.revoked
    assert (d / f"clients/C1/revoked-{old.serial:x}.crt").read_bytes() != new.cert.read_bytes()
    assert [e.serial_number for e in crl(d)] == [old.serial]
    assert pki.holders(d) == [new]


def test_renewing_the_crl_keeps_its_entries_and_moves_its_next_update(d: Path) -> None:
    gone = pki.revoke(d, pki.issue(d, "C1", "cart").client, crl_days=2)
    number = crl(d).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    update = pki.renew_crl(d, crl_days=60)
    assert update == pki.crl_next_update(d) and update - datetime.now(UTC) > timedelta(days=59)
    assert [e.serial_number for e in crl(d)] == [gone.serial]
    assert crl(d).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number + 1
    with pytest.raises(pki.PkiError, match=r"at least 1"):
        pki.renew_crl(d, crl_days=0)


def test_the_crl_warning_comes_before_and_after_expiry(d: Path) -> None:
    update = pki.crl_next_update(d)
    assert pki.crl_warning(d) is None  # 30 days ahead
    assert pki.crl_warning(d, now=update - timedelta(days=8)) is None
    near = pki.crl_warning(d, now=update - timedelta(days=3, minutes=1))
    assert near and "in 3 days" in near and f"wastecart pki crl --dir {d}" in near and "refuses every client" in near
    assert pki.crl_warning(d, within_days=2, now=update - timedelta(days=3)) is None
    late = pki.crl_warning(d, now=update + timedelta(hours=1))
    assert late and "expired at" in late and "\n" not in late


# --------------------------------------------------------------------------------------------
# The command line


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "PRIVATE KEY" not in out + err  # a key is never printed
    return rc, out, err


def test_the_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "pki")
    rc, out, err = run(capsys, "pki", "init", "--dir", d, "--site", SITE, "--server-host", "gw.example")
    assert rc == 0 and f"wrote {d}/ca.key" in out and "gw.example, localhost, 127.0.0.1" in out and err == ""
    rc, out, _ = run(capsys, "pki", "issue", "--dir", d, "--client", "C1", "--role", "cart")
    assert rc == 0 and f"wrote {d}/clients/C1/client.key" in out and "[uplink.tls]" in out and "--tls-key" in out
    assert "wastecart broker config --pki" in out and "reload mosquitto" in out
    rc, out, _ = run(capsys, "pki", "issue", "--dir", d, "--client", "GW", "--role", "gateway", "--days", "5")
    assert rc == 0 and "[tls]" in out and "wastecart gateway run" in out
    rc, out, _ = run(capsys, "pki", "revoke", "--dir", d, "--client", "C1")
    assert rc == 0 and f"wrote {d}/crl.pem" in out and "revoked the cart certificate of C1" in out
    rc, out, _ = run(capsys, "pki", "list", "--dir", d)
    lines = out.splitlines()
    assert rc == 0 and "CRL next update" in lines[-1]
    assert [ln.split()[0] for ln in lines[2:-1]] == ["C1", "GW"]
    assert lines[2].endswith("revoked") and "expires in 4 days" in lines[3]
    rc, out, _ = run(capsys, "pki", "list", "--dir", d, "--json")
    listed = json.loads(out)
    assert rc == 0 and listed["site"] == SITE and [(h["client"], h["revoked"]) for h in listed["holders"]] == [
        ("C1", True), ("GW", False)]
    assert int(listed["holders"][0]["serial"], 16) == pki.holders(Path(d))[0].serial


def test_cli_errors_are_one_line_with_exit_2(d: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki.issue(d, "C1", "cart")
    for argv, what in [(["init", "--dir", str(d), "--site", SITE], "already has a site CA"),
                       (["issue", "--dir", str(d), "--client", "C1", "--role", "operator"], "already holds"),
                       (["issue", "--dir", str(d), "--client", "a/b", "--role", "cart"], "client id 'a/b'"),
                       (["revoke", "--dir", str(d), "--client", "C7"], "C7: no certificate"),
                       (["list", "--dir", str(d / "missing")], "missing/site")]:
        rc, out, err = run(capsys, "pki", *argv)
        assert (rc, out) == (2, "") and err.count("\n") == 1 and err.startswith("wastecart: error: ") and what in err
    (d / "ca.key").chmod(0o640)
    rc, _, err = run(capsys, "pki", "crl", "--dir", str(d))
    assert rc == 2 and f"{d}/ca.key: private key is readable by others (mode 0640)" in err


def test_cli_warns_on_stderr_when_the_crl_is_near_its_next_update(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path / "pki")
    rc, _, err = run(capsys, "pki", "init", "--dir", d, "--site", SITE, "--crl-days", "2")
    assert rc == 0 and err.startswith("warning: the CRL") and "wastecart pki crl --dir" in err
    rc, _, err = run(capsys, "pki", "list", "--dir", d)
    assert rc == 0 and "warning: the CRL" in err
    rc, out, err = run(capsys, "pki", "crl", "--dir", d)
    assert rc == 0 and err == "" and "next update" in out
    rc, _, err = run(capsys, "pki", "list", "--dir", d)
    assert rc == 0 and err == ""


@pytest.mark.parametrize("words", [[], ["init"], ["issue"], ["revoke"], ["crl"], ["list"]])
def test_cli_help(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["pki", *words, "--help"])
    assert info.value.code == 0 and "usage: wastecart pki" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Real TLS (OpenSSL through ``ssl``): what mosquitto will check, checked here first


def handshake(d: Path, client: tuple[Path, Path], *, ca: Path | None = None, check_crl: bool = False,
              host: str = "localhost") -> tuple[str | None, str | None]:
    """Run one TLS connection to a server with DIR/server.crt that requires a client certificate
    from DIR/ca.crt; returns (the server's error, the client's error), None for success."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(d / "server.crt", d / "server.key")
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(d / "ca.crt")
    if check_crl:
        server.load_verify_locations(d / "crl.pem")
        server.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    outcome: queue.Queue[str | None] = queue.Queue()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TLS_WAIT_S)

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                conn.settimeout(TLS_WAIT_S)
                with server.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
                outcome.put(None)
            except (ssl.SSLError, OSError) as exc:
                outcome.put(f"{type(exc).__name__}: {exc}")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca or d / "ca.crt")
        ctx.load_cert_chain(*client)
        client_error: str | None
        try:
            with socket.create_connection(listener.getsockname()[:2], timeout=TLS_WAIT_S) as raw, \
                    ctx.wrap_socket(raw, server_hostname=host) as tls:
                got = tls.recv(2)
                client_error = None if got == b"ok" else f"received {got!r}"
        except (ssl.SSLError, OSError) as exc:
            client_error = f"{type(exc).__name__}: {exc}"
        server_error = outcome.get(timeout=TLS_WAIT_S)
        thread.join(TLS_WAIT_S)
    return server_error, client_error


def test_tls_lets_in_our_client_and_refuses_another_cas(d: Path, tmp_path: Path) -> None:
    assert handshake(d, pki.client_files(d, pki.issue(d, "C1", "cart").client)) == (None, None)
    pki.init(tmp_path / "other", SITE)  # same site name, same subjects: only the CA differs
    forged = pki.issue(tmp_path / "other", "C1", "cart")
    server_error, client_error = handshake(d, (forged.cert, forged.key))
    assert server_error and "certificate verify failed" in server_error
    assert client_error  # the server's alert, or the closed connection


@pytest.mark.parametrize(("host", "ok"), [("localhost", True), ("127.0.0.1", True), ("broker.example", True),
                                          ("10.1.2.3", True), ("elsewhere.example", False)])
def test_tls_host_name_check_follows_the_server_certificates_names(d: Path, host: str, ok: bool) -> None:
    _, client_error = handshake(d, pki.client_files(d, pki.issue(d, "C1", "cart").client), host=host)
    assert (client_error is None) == ok, client_error


def test_tls_refuses_expired_and_revoked_certificates(d: Path) -> None:
    now = datetime.now(UTC)
    old = pki.issue(d, "OLD", "cart", not_before=now - timedelta(days=9), not_after=now - timedelta(days=1))
    server_error, _ = handshake(d, (old.cert, old.key))
    assert server_error and "certificate has expired" in server_error
    gone = pki.client_files(d, pki.issue(d, "GONE", "cart").client)
    assert handshake(d, gone, check_crl=True) == (None, None)
    pki.revoke(d, "GONE")
    server_error, _ = handshake(d, gone, check_crl=True)
    assert server_error and "certificate revoked" in server_error


def test_tls_refuses_everyone_once_the_crl_has_expired(d: Path) -> None:
    """Why ``crl_warning`` exists: an expired CRL locks out even a valid client."""
    ca_cert = cert(d / "ca.crt")
    ca_key = serialization.load_pem_private_key((d / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = datetime.now(UTC)
    stale = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
             .last_update(now - timedelta(days=2)).next_update(now - timedelta(days=1)).sign(ca_key, hashes.SHA256()))
    (d / "crl.pem").write_bytes(stale.public_bytes(serialization.Encoding.PEM))
    client = pki.client_files(d, pki.issue(d, "C1", "cart").client)
    server_error, _ = handshake(d, client, check_crl=True)
    assert server_error and "CRL has expired" in server_error
    assert (warning := pki.crl_warning(d)) and "expired at" in warning
