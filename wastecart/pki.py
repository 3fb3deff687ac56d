"""The site PKI: a CA of our own for the broker's TLS listener and every client's certificate.

Layout of a PKI folder ``DIR`` (the broker config and the clients take their files from here)::

    DIR/ca.crt, DIR/ca.key (0600)                  site CA (CN "wastecart site CA {SITE}", O=SITE)
    DIR/server.crt, DIR/server.key (0600)          the broker's; SAN: --server-host names, localhost, 127.0.0.1
    DIR/clients/ID/client.crt, client.key (0600)   one per client: CN=ID, O=SITE, OU=ROLE
    DIR/crl.pem                                    revoked serials, signed by the CA, with a next update
    DIR/site                                       the site id

mosquitto takes the client certificate's CN as the user name (``use_identity_as_username``), so a
cart's CN is its cart id, an MQTT topic level: ids are checked as the wire contract checks them.
ECDSA P-256 with SHA-256 throughout (mosquitto's OpenSSL does not take Ed25519 client certificates
in every setup).  Keys are written atomically with mode 0600 and never printed; the CA key is
refused when others may read it.  A CRL has a next update: once it has passed, mosquitto refuses
every client, so ``renew_crl`` must run before then and ``crl_warning`` says when.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge import files
from edge.tls import TlsError, TlsSettings, check_private
from edge.wire import ContractError, check_id
from wastecart.errors import WastecartError

ROLES: tuple[str, ...] = ("cart", "gateway", "operator")
# Certificates start this long before "now": a cart whose clock lags a little still accepts the
# broker's certificate, and a freshly issued one is not "not yet valid" on a broker that lags.
CLOCK_SKEW = timedelta(hours=1)
SERVER_NAMES = ("localhost",)  # always in the broker's SAN, with 127.0.0.1 (local clients and tests)
SERVER_IPS = ("127.0.0.1",)
CERT_MODE = 0o644  # certificates are public; keys are 0o600
CA_DAYS = 3650  # days the site CA and the broker's certificate are valid (there is no CA rollover yet)
CLIENT_DAYS = 825  # days a client certificate is valid: replace it (revoke + issue) before then
CRL_DAYS = 30  # days until a CRL's next update: re-sign it (`pki crl`) before then, from cron or by hand
CRL_WARN_DAYS = 7  # days before the CRL's next update that commands start warning


class PkiError(WastecartError):
    """A PKI folder, file or identity that cannot be used as asked; the message names it."""


@dataclass(frozen=True)
class Holder:
    """One issued client certificate, as ``pki list`` shows it."""

    client: str
    role: str
    site: str
    serial: int
    not_before: datetime
    not_after: datetime
    revoked: bool
    cert: Path
    key: Path


# --------------------------------------------------------------------------------------------
# Files


def _ca_paths(dir: Path) -> tuple[Path, Path]:
    return dir / "ca.crt", dir / "ca.key"


def _client_dir(dir: Path, client: str) -> Path:
    return dir / "clients" / client


def _crl_path(dir: Path) -> Path:
    return dir / "crl.pem"


def _write(path: Path, data: bytes, *, private: bool, exclusive: bool = False) -> None:
    """Write ``data`` atomically (tmp file + rename); a private file is 0600 from its first byte.
    ``exclusive``: refuse if ``path`` exists, even if another process creates it meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else CERT_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600 if private else CERT_MODE)  # the umask may not widen it, nor narrow a cert
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError as exc:
                raise PkiError(f"{path}: exists already; refusing to overwrite it") from exc
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Translate a missing or unparsable file into one PkiError that names it."""
    try:
        yield
    except FileNotFoundError as exc:
        raise PkiError(f"{path}: no {what} here (is {path.parent} a PKI folder? `wastecart pki init`)") from exc
    except OSError as exc:
        raise PkiError(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    except files.UnreadableFile as exc:
        if isinstance(exc.__cause__, FileNotFoundError):
            raise PkiError(f"{path}: no {what} here (is {path.parent} a PKI folder? `wastecart pki init`)") from exc
        raise PkiError(str(exc)) from exc
    except ValueError as exc:
        raise PkiError(f"{path}: not a valid {what} ({exc})") from exc


def _load_cert(path: Path, what: str = "certificate") -> x509.Certificate:
    with _reading(path, what):
        return x509.load_pem_x509_certificate(path.read_bytes())


def _load_crl(dir: Path) -> x509.CertificateRevocationList:
    path = _crl_path(dir)
    with _reading(path, "CRL"):
        return x509.load_pem_x509_crl(path.read_bytes())


def _load_ca(dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA certificate and key; the key must be private (0600) and match the certificate."""
    crt_path, key_path = _ca_paths(dir)
    cert = _load_cert(crt_path, "CA certificate")
    try:
        check_private(key_path)
    except TlsError as exc:
        raise PkiError(str(exc)) from exc
    with _reading(key_path, "CA key"):
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise PkiError(f"{key_path}: not the private key of {crt_path}")
    return cert, key


# --------------------------------------------------------------------------------------------
# Building certificates


def _check(value: str, what: str) -> str:
    try:
        return check_id(value, what)
    except ContractError as exc:
        raise PkiError(str(exc)) from exc


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # x509 times have whole seconds


def _name(cn: str, site: str, role: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, site)]
    if role:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role))
    return x509.Name(attrs)


def _leaf(subject: x509.Name, key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
          ca_key: ec.EllipticCurvePrivateKey, not_before: datetime, not_after: datetime,
          usage: x509.ObjectIdentifier) -> x509.CertificateBuilder:
    """A certificate for an end entity (the broker or a client), signed by the CA."""
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False))


def _server_san(server_hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    """DNS names and IP addresses (a host given as an address becomes an IP entry, as TLS checks it)."""
    names: list[x509.GeneralName] = []
    for host in [*server_hosts, *SERVER_NAMES, *SERVER_IPS]:
        host = host.strip()
        try:
            entry: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            if not host or any(c in host for c in "/ *:@") or not host.isascii():
                raise PkiError(f"--server-host {host!r}: not a host name or IP address") from None
            entry = x509.DNSName(host.lower())
        if entry not in names:
            names.append(entry)
    return x509.SubjectAlternativeName(names)


def _sign_crl(dir: Path, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
              revoked: Sequence[x509.RevokedCertificate], number: int, crl_days: int) -> datetime:
    """Write DIR/crl.pem with these entries, last update now, next update now + crl_days."""
    if crl_days < 1:
        raise PkiError(f"CRL validity {crl_days} days: must be at least 1")
    now = _now()
    next_update = now + timedelta(days=crl_days)
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(ca_cert.subject).last_update(now).next_update(next_update)
               .add_extension(x509.CRLNumber(number), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False))
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    _write(_crl_path(dir), builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM),
           private=False)
    return next_update


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0


# --------------------------------------------------------------------------------------------
# The public API


def init(dir: Path, site: str, server_hosts: Sequence[str] = (), *, days: int = CA_DAYS,
         crl_days: int = CRL_DAYS) -> None:
    """Create the site CA, the broker's certificate and an empty CRL in ``dir``; never over an existing CA."""
    _check(site, "site")
    if days < 1:
        raise PkiError(f"validity {days} days: must be at least 1")
    for path in _ca_paths(dir):
        if path.exists():
            raise PkiError(f"{path}: {dir} already has a site CA; refusing to overwrite it")
    san = _server_san(server_hosts)
    if not dir.exists():
        dir.mkdir(parents=True, mode=0o700)  # it holds the CA key
    now = _now()
    not_before, not_after = now - CLOCK_SKEW, now + timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"wastecart site CA {site}", site)
    ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (x509.CertificateBuilder()
               .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=True, crl_sign=True, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(ski, critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
               .sign(ca_key, hashes.SHA256()))
    crt_path, key_path = _ca_paths(dir)
    _write(key_path, _key_pem(ca_key), private=True, exclusive=True)  # first: the guard against two inits
    _write(crt_path, ca_cert.public_bytes(serialization.Encoding.PEM), private=False)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (_leaf(_name(f"wastecart broker {site}", site), server_key, ca_cert, ca_key, not_before,
                         not_after, ExtendedKeyUsageOID.SERVER_AUTH)
                   .add_extension(san, critical=False).sign(ca_key, hashes.SHA256()))
    _write(dir / "server.key", _key_pem(server_key), private=True)
    _write(dir / "server.crt", server_cert.public_bytes(serialization.Encoding.PEM), private=False)
    _sign_crl(dir, ca_cert, ca_key, (), 1, crl_days)
    _write(dir / "site", f"{site}\n".encode(), private=False)


def site_of(dir: Path) -> str:
    """The site id this PKI was made for (``DIR/site``)."""
    path = dir / "site"
    with _reading(path, "site file"):
        site = files.read_text(path, "site file").strip()
    return _check(site, f"{path}: site")


def _holder(cert_path: Path, revoked: set[int]) -> Holder:
    cert = _load_cert(cert_path, "client certificate")

    def attr(oid: x509.ObjectIdentifier) -> str:
        values = cert.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    return Holder(client=attr(NameOID.COMMON_NAME), role=attr(NameOID.ORGANIZATIONAL_UNIT_NAME),
                  site=attr(NameOID.ORGANIZATION_NAME), serial=cert.serial_number,
                  not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
                  revoked=cert.serial_number in revoked, cert=cert_path, key=cert_path.with_name("client.key"))


def _revoked_serials(dir: Path) -> set[int]:
    return {entry.serial_number for entry in _load_crl(dir)}


def holders(dir: Path) -> list[Holder]:
    """Every client's current certificate (sorted by id), flagged revoked when its serial is in crl.pem."""
    site_of(dir)  # a folder that is not a PKI is an error, not an empty list
    revoked = _revoked_serials(dir)
    root = dir / "clients"
    paths = sorted(root.glob("*/client.crt")) if root.is_dir() else []
    return [_holder(p, revoked) for p in paths]


def _find(dir: Path, client: str) -> Holder | None:
    path = _client_dir(dir, client) / "client.crt"
    return _holder(path, _revoked_serials(dir)) if path.exists() else None


def issue(dir: Path, client: str, role: str, *, days: int = CLIENT_DAYS, not_before: datetime | None = None,
          not_after: datetime | None = None) -> Holder:
    """A certificate and key for ``client`` in ``role``; ``not_before``/``not_after`` override ``days``
    (tests make expired certificates).  An id already issued is refused unless its certificate is
    revoked or expired: then the old certificate is kept as ``revoked-SERIAL.crt`` and replaced."""
    _check(client, "client id")
    if role not in ROLES:
        raise PkiError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    if days < 1:
        raise PkiError(f"validity {days} days: must be at least 1")
    for given in (not_before, not_after):
        if given is not None and given.tzinfo is None:
            raise PkiError(f"client {client}: validity bounds must be timezone-aware datetimes, not {given}")
    site = site_of(dir)
    ca_cert, ca_key = _load_ca(dir)
    now = _now()
    old = _find(dir, client)
    if old and not old.revoked and old.not_after > now:
        raise PkiError(f"client {client}: already holds a {old.role} certificate ({old.cert}, serial "
                       f"{old.serial:x}, valid until {old.not_after:%Y-%m-%d}); revoke it first "
                       f"(`wastecart pki revoke --dir {dir} --client {client}`) to issue a new one")
    end = not_after or now + timedelta(days=days)
    start = not_before or min(now, end) - CLOCK_SKEW
    if end <= start:
        raise PkiError(f"client {client}: not_after {end:%Y-%m-%d %H:%M} is not after "
                       f"not_before {start:%Y-%m-%d %H:%M}")
    if end > ca_cert.not_valid_after_utc:
        raise PkiError(f"client {client}: a certificate valid until {end:%Y-%m-%d} would outlive the site CA "
                       f"({_ca_paths(dir)[0]}, valid until {ca_cert.not_valid_after_utc:%Y-%m-%d}); use fewer --days")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (_leaf(_name(client, site, role), key, ca_cert, ca_key, start, end, ExtendedKeyUsageOID.CLIENT_AUTH)
            .sign(ca_key, hashes.SHA256()))
    folder = _client_dir(dir, client)
    if old:  # keep the replaced certificate for the record; its key has no further use
        os.replace(old.cert, folder / f"revoked-{old.serial:x}.crt" if old.revoked else
                   folder / f"expired-{old.serial:x}.crt")
        old.key.unlink(missing_ok=True)
    _write(folder / "client.key", _key_pem(key), private=True)
    _write(folder / "client.crt", cert.public_bytes(serialization.Encoding.PEM), private=False)
    return Holder(client=client, role=role, site=site, serial=cert.serial_number, not_before=cert.not_valid_before_utc,
                  not_after=cert.not_valid_after_utc, revoked=False, cert=folder / "client.crt",
                  key=folder / "client.key")


def revoke(dir: Path, client: str, *, crl_days: int = CRL_DAYS) -> Holder:
    """Add ``client``'s certificate to the CRL (earlier entries kept); returns it, flagged revoked.
    The broker sees it once its config is regenerated and mosquitto reloaded or restarted."""
    _check(client, "client id")
    old = _find(dir, client)
    if old is None:
        raise PkiError(f"client {client}: no certificate in {_client_dir(dir, client)}; nothing to revoke")
    if old.revoked:
        raise PkiError(f"client {client}: certificate {old.cert} (serial {old.serial:x}) is already revoked")
    ca_cert, ca_key = _load_ca(dir)
    crl = _load_crl(dir)
    entry = (x509.RevokedCertificateBuilder().serial_number(old.serial).revocation_date(_now())
             .add_extension(x509.CRLReason(x509.ReasonFlags.unspecified), critical=False).build())
    _sign_crl(dir, ca_cert, ca_key, [*crl, entry], _crl_number(crl) + 1, crl_days)
    return replace(old, revoked=True)


def renew_crl(dir: Path, *, crl_days: int = CRL_DAYS) -> datetime:
    """Re-sign the CRL with the same entries and a new next update (returned); run it before it expires."""
    ca_cert, ca_key = _load_ca(dir)
    crl = _load_crl(dir)
    return _sign_crl(dir, ca_cert, ca_key, list(crl), _crl_number(crl) + 1, crl_days)


def crl_next_update(dir: Path) -> datetime:
    """When the CRL expires: after it, mosquitto refuses every client until a new CRL is in place."""
    update = _load_crl(dir).next_update_utc
    if update is None:
        raise PkiError(f"{_crl_path(dir)}: the CRL has no next update")
    return update


def crl_warning(dir: Path, *, within_days: int = CRL_WARN_DAYS, now: datetime | None = None) -> str | None:
    """One line if the CRL has expired or expires within ``within_days``; None otherwise."""
    now = now or datetime.now(UTC)
    update = crl_next_update(dir)
    if update - now > timedelta(days=within_days):
        return None
    when = f"expired at {update:%Y-%m-%d %H:%M} UTC" if update <= now else \
        f"expires at {update:%Y-%m-%d %H:%M} UTC (in {_span(update - now)})"
    return (f"warning: the CRL {_crl_path(dir)} {when}: mosquitto refuses every client once its CRL has expired; "
            f"run `wastecart pki crl --dir {dir}`, then `wastecart broker config` and reload mosquitto")


def _span(delta: timedelta) -> str:
    if delta >= timedelta(days=1):
        return f"{delta.days} day{'s' if delta.days != 1 else ''}"
    hours = int(delta.total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}" if hours else "less than an hour"


def client_files(dir: Path, client: str) -> tuple[Path, Path]:
    """(certificate, key) of ``client``; a PkiError naming `pki issue` when they are missing."""
    folder = _client_dir(dir, client)
    cert, key = folder / "client.crt", folder / "client.key"
    for path in (cert, key):
        if not path.exists():
            raise PkiError(f"client {client}: {path} is missing; run "
                           f"`wastecart pki issue --dir {dir} --client {client} --role {'|'.join(ROLES)}`")
    return cert, key


def tls_settings(dir: Path, client: str, *, check_hostname: bool = True) -> TlsSettings:
    """``client``'s TLS settings from this PKI folder: the site CA, its certificate and key."""
    cert, key = client_files(dir, client)
    return TlsSettings(ca=dir / "ca.crt", cert=cert, key=key, check_hostname=check_hostname)
