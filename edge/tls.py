"""TLS to the broker: the site CA, this client's certificate and key, host-name checking.

One settings model for the cart's ``[uplink.tls]`` and the gateway's ``[tls]`` (and the same as
flags on ``edge run``, ``gateway run`` and ``sim fleet``); ``edge.mqtt.Link`` applies it.  The
files come from ``wastecart pki`` (a site CA of our own); a private key file that others may read
is refused on load, whoever reads it (``check_private``).

``check`` is the start-up check: each way the files can be wrong is one ``TlsError`` naming the
file and what is wrong with it, so a cart with a bad file stops at once instead of retrying a
handshake every 30 s.  ``context`` builds the ``ssl`` context paho connects with; a handshake that
fails anyway (the broker refuses this certificate) is described by ``failure`` in one line.

Shared by the cart and the gateway: stdlib, pydantic and ``cryptography`` only.
"""

from __future__ import annotations

import ssl
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, ConfigDict

Setting = Literal["ca", "cert", "key"]  # which of TlsSettings' files


class TlsError(ValueError):
    """A TLS file that cannot be used: missing, unreadable, not private, or not what it claims.
    ``field`` says which setting named it (``ca``, ``cert`` or ``key``), for the caller's dotted key."""

    def __init__(self, message: str, field: Setting = "key") -> None:
        super().__init__(message)
        self.field: Setting = field


class TlsSettings(BaseModel):
    """Where this client's TLS material is; host-name checking is on unless switched off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca: Path  # the site CA certificate (PEM) that issued the broker's certificate (`pki init`)
    cert: Path  # this client's certificate (PEM), from `wastecart pki issue`
    key: Path  # its private key (PEM): mode 0600, never readable by group or others
    # The broker's certificate must name the host in the broker URL (its SAN); switch off only for
    # a broker reached by an address its certificate does not list.
    check_hostname: bool = True


def check_private(path: Path) -> None:
    """Refuse a private key file that group or others may read or write (or that is missing)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise TlsError(f"{path}: cannot read the private key ({exc.strerror})") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TlsError(f"{path}: private key is readable by others (mode {stat.S_IMODE(mode):04o}); "
                       f"run `chmod 600 {path}`")


# ------------------------------------------------------------------------------------------------
# Start-up check


def check(settings: TlsSettings, *, now: datetime | None = None) -> None:
    """Every file there, readable, PEM, the key private and matching the certificate, the
    certificate issued by the CA and valid now; else ``TlsError`` naming the file."""
    when = now or datetime.now(UTC)
    cas = _certificates(settings.ca, "ca", "CA certificate")
    for ca in cas:
        _valid_at(ca, settings.ca, "ca", when)
    cert = _certificates(settings.cert, "cert", "certificate")[0]  # the leaf; a chain may follow
    key = _private_key(settings.key)
    if not any(_issued_by(cert, ca) for ca in cas):
        raise TlsError(f"{settings.cert}: not issued by the CA in {settings.ca} (the certificate's issuer is "
                       f"{cert.issuer.rfc4514_string()}, the CA is {cas[0].subject.rfc4514_string()}): "
                       "use the CA of the PKI that issued it", "cert")
    if _spki(key.public_key()) != _spki(cert.public_key()):
        raise TlsError(f"{settings.key}: not the key of the certificate {settings.cert} "
                       "(each client's client.key belongs with its own client.crt)", "key")
    _valid_at(cert, settings.cert, "cert", when)


def _read(path: Path, field: Setting, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(f"{path}: cannot read the {what} ({exc.strerror})", field) from exc


def _certificates(path: Path, field: Setting, what: str) -> list[x509.Certificate]:
    data = _read(path, field, what)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TlsError(f"{path}: not a PEM {what} ({exc})", field) from exc
    if not certs:  # pragma: no cover - cryptography raises on a file without a certificate
        raise TlsError(f"{path}: not a PEM {what} (no certificate in it)", field)
    return certs


def _private_key(path: Path) -> PrivateKeyTypes:
    check_private(path)
    data = _read(path, "key", "private key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # encrypted: a cart starts unattended, nobody types a pass phrase
        raise TlsError(f"{path}: the private key is encrypted; a client key must be stored without a pass "
                       "phrase (mode 0600 protects it)") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise TlsError(f"{path}: not a PEM private key") from exc


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _spki(key: Any) -> bytes:
    der: bytes = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def _valid_at(cert: x509.Certificate, path: Path, field: Setting, when: datetime) -> None:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    span = f"valid {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    if when > end:
        raise TlsError(f"{path}: certificate expired on {end:%Y-%m-%d %H:%M} UTC ({span})", field)
    if when < start:
        raise TlsError(f"{path}: certificate not valid yet, from {start:%Y-%m-%d %H:%M} UTC ({span}); "
                       "is this machine's clock right?", field)


def identity(settings: TlsSettings | None) -> str:
    """Who this client is to the broker, for log lines: the certificate's CN (the broker's user
    name with ``use_identity_as_username``); the file name if it cannot be read."""
    if settings is None:
        return "(no client certificate)"
    try:
        cert = x509.load_pem_x509_certificate(settings.cert.read_bytes())
    except (OSError, ValueError):
        return f"(certificate {settings.cert})"
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


# ------------------------------------------------------------------------------------------------
# The ssl context, and what a failed handshake means


def context(settings: TlsSettings | None, on_error: Callable[[ssl.SSLError], None] | None = None) -> ssl.SSLContext:
    """A client context: the site CA only (not the system store), this client's certificate,
    TLS 1.2 at least, host-name checking as set.  ``None``: the system's CA store and no client
    certificate (``mqtts://`` without TLS settings).  ``on_error`` hears every TLS error a socket of
    this context raises (paho swallows them into a silent reconnect)."""
    ctx = _Context(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.on_error = on_error
    if settings is None:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return ctx
    try:
        ctx.load_verify_locations(cafile=str(settings.ca))
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"{settings.ca}: cannot load the CA certificate ({_reason(exc)})", "ca") from exc
    check_private(settings.key)
    try:
        ctx.load_cert_chain(str(settings.cert), str(settings.key))
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"{settings.cert}, {settings.key}: cannot load the certificate and key "
                       f"({_reason(exc)})", "cert") from exc
    ctx.check_hostname = settings.check_hostname
    return ctx


class _Socket(ssl.SSLSocket):
    """An ``SSLSocket`` that tells its context's ``on_error`` about a TLS error before raising it:
    the handshake's (the broker's certificate) and the first read's (TLS 1.3 sends the broker's
    verdict on OUR certificate after the handshake, as an alert).  Only what paho calls."""

    def _note(self, exc: ssl.SSLError) -> None:
        ctx = self.context
        if isinstance(ctx, _Context) and ctx.on_error is not None and not isinstance(exc, _ROUTINE):
            ctx.on_error(exc)

    def do_handshake(self, block: bool = False) -> None:
        """A failed handshake also closes the socket: paho drops it unclosed (a leaked descriptor)."""
        try:
            super().do_handshake(block)
        except OSError as exc:
            if not isinstance(exc, _AGAIN):
                if isinstance(exc, ssl.SSLError):
                    self._note(exc)
                self.close()
            raise

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        try:
            return super().recv(buflen, flags)
        except ssl.SSLError as exc:
            self._note(exc)
            raise

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            return super().send(data, flags)
        except ssl.SSLError as exc:
            self._note(exc)
            raise


class _Context(ssl.SSLContext):
    """An ``SSLContext`` whose sockets report their TLS errors (``_Socket``)."""

    on_error: Callable[[ssl.SSLError], None] | None = None
    sslsocket_class = _Socket


# A non-blocking socket's "try again": not a failure at all.
_AGAIN = (ssl.SSLWantReadError, ssl.SSLWantWriteError)
# Not reported either: the peer's orderly close, and an EOF, which says only that the peer hung up,
# not why (``edge.mqtt.Link`` asks the broker again for the why).
_ROUTINE = (*_AGAIN, ssl.SSLZeroReturnError, ssl.SSLEOFError)

# What the broker (or its certificate) said, in words an installer can act on; by OpenSSL reason.
_HINTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the broker requires a client certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "the broker does not know the CA that issued this client's certificate",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "the broker finds this client's certificate revoked (`wastecart pki list`)",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the broker finds this client's certificate (or its CRL) expired",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the broker refused this client's certificate",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "no common TLS version or cipher, or the broker wants a certificate",
    "WRONG_VERSION_NUMBER": "the port does not speak TLS: is it the broker's plaintext listener (mqtt://)?",
}
_VERIFY_HINTS = {
    "unable to get local issuer certificate": "the broker's certificate is not from this CA",
    "self-signed certificate in certificate chain": "the broker's certificate is not from this CA",
    "certificate has expired": "the broker's certificate has expired",
    "Hostname mismatch": "the broker's certificate does not name this host (check_hostname / --tls-no-hostname-check)",
    "IP address mismatch": "the broker's certificate does not name this address "
                           "(check_hostname / --tls-no-hostname-check)",
}


def failure(exc: BaseException) -> str:
    """A TLS failure in one phrase: OpenSSL's reason (``certificate verify failed: …``,
    ``tlsv13 alert certificate required``) and, when known, what it means."""
    said = _reason(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = str(exc.verify_message or "")
        hint = next((h for k, h in _VERIFY_HINTS.items() if k in detail), "")
    else:
        hint = _HINTS.get(str(getattr(exc, "reason", "") or ""), "")
    return f"{said}: {hint}" if hint else said


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
