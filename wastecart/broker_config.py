"""mosquitto's configuration for one site: TLS with client certificates, the CRL, an explicit ACL.

``render_conf`` and ``render_acl`` are pure (text in, text out); ``write`` puts a configuration
folder together from a PKI folder (``wastecart.pki``)::

    OUT/mosquitto.conf     listeners and operational settings (started as `mosquitto -c OUT/mosquitto.conf`)
    OUT/acl                the TLS listener's rights: one `user ID` block per issued, valid, unrevoked client
    OUT/acl-plain          the loopback plaintext listener's rights (only with a plain port)
    OUT/ca.crt, server.crt, server.key, crl.pem   copies, so the broker never reads the PKI folder (nor ca.key)
    OUT/data/              persistence and log (or --data DIR)

Identity: mosquitto takes the client certificate's CN as the user name (``use_identity_as_username``)
and the user name as the client id (``use_username_as_clientid``), so a client can neither act
under nor take over another client's session.  Rights are listed per holder, never by pattern:
a role's rights come from ``RIGHTS`` and nobody may read ``#``.

mosquitto, started as root, drops to the ``mosquitto`` user *before* it reads keys, the CRL and the
ACL, so when we run as root and that user exists the copies are group ``mosquitto`` (key 0640) and the
data folder belongs to it; otherwise everything is ours, the key 0600 (mosquitto then runs as us).
"""

from __future__ import annotations

import os
import pwd
import secrets
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge import wire
from wastecart import pki
from wastecart.errors import WastecartError

BROKER_USER = "mosquitto"  # the account mosquitto drops to when started as root (mosquitto.conf(5) `user`)
PLAIN_BIND = "127.0.0.1"  # the plaintext listener is never reachable from another machine
COPIED = ("ca.crt", "server.crt", "server.key", "crl.pem")  # taken from the PKI folder into OUT
KEY_FILES = ("server.key",)

# What each role may do, as (access, leaf under wc/v1/SITE/CART/); a cart gets its own id as the
# CART level, a gateway or operator "+" (every cart of the site).  DESIGN §3, issue 12.
RIGHTS: dict[str, tuple[tuple[str, str], ...]] = {
    "cart": (("write", wire.RECORD), ("write", wire.STATUS), ("write", wire.TELEMETRY),
             ("write", wire.CMD_RESULT), ("read", wire.ACK), ("read", f"{wire.CMD}/#")),
    "gateway": (("read", wire.RECORD), ("read", wire.STATUS), ("read", wire.TELEMETRY),
                ("read", wire.CMD_RESULT), ("write", wire.ACK), ("write", f"{wire.CMD}/#")),
    "operator": (("read", wire.STATUS), ("read", wire.TELEMETRY)),
}
PLAIN_ROLE = "operator"  # anonymous clients on the plaintext listener get this role's (read-only) rights

# Operational settings of every broker we configure (this one and wastecart.broker's private one).
OPERATIONAL = """\
set_tcp_nodelay true
persistence true
persistence_location {data}/
autosave_interval 30
# Acks and commands for a cart that is offline wait here; the default (1000) drops silently.
max_queued_messages 100000
max_inflight_messages 100
"""
# `information` logs every connection and disconnection by client id: the broker's audit trail.
LOG_TYPES = ("error", "warning", "notice", "information")


class BrokerConfigError(WastecartError):
    """A broker configuration that cannot be written as asked; the message names the file or value."""


@dataclass(frozen=True)
class Paths:
    """Where the files the configuration names are (absolute; mosquitto reads them after dropping root)."""

    out: Path
    data: Path

    def __getitem__(self, name: str) -> Path:
        return self.out / name


def render_conf(paths: Paths, port: int, *, bind: str | None = None, plain_port: int | None = None,
                log_stderr: bool = False, header: str = "") -> str:
    """mosquitto.conf: a TLS listener that requires a certificate of the site CA, and optionally a
    plaintext listener on loopback.  ``bind`` None listens on every address (IPv4 and IPv6)."""
    for value in (*(str(paths[n]) for n in (*COPIED, "acl", "acl-plain")), str(paths.data), bind or ""):
        if any(c.isspace() for c in value):  # mosquitto splits a line at white space
            raise BrokerConfigError(f"{value!r}: mosquitto cannot read a path or address with white space")
    _check_port(port, "--port")
    if plain_port is not None:
        _check_port(plain_port, "--plain-port")
        if plain_port == port:
            raise BrokerConfigError(f"--plain-port {plain_port}: the TLS listener uses it already")
    log = "log_dest stderr\n" if log_stderr else f"log_dest file {paths.data}/mosquitto.log\n"
    lines = [*([header, ""] if header else []),
             "# Authentication and ACL are set for each listener below, never globally.",
             "per_listener_settings true",
             OPERATIONAL.format(data=paths.data) + log + "".join(f"log_type {t}\n" for t in LOG_TYPES),
             "# TLS: only clients with a certificate of the site CA that is neither expired nor in the CRL.",
             "# Their certificate's CN is their user name and their client id.",
             f"listener {port}" + (f" {bind}" if bind else ""),
             f"cafile {paths['ca.crt']}",
             f"certfile {paths['server.crt']}",
             f"keyfile {paths['server.key']}",
             f"crlfile {paths['crl.pem']}",
             "require_certificate true",
             "use_identity_as_username true",
             "use_username_as_clientid true",
             "tls_version tlsv1.2",
             "allow_anonymous false",
             f"acl_file {paths['acl']}"]
    if plain_port is not None:
        lines += ["",
                  f"# Plaintext, loopback only: anonymous local tools get the {PLAIN_ROLE}'s reads only.",
                  "# Any local process may also pick any client id here, a cart's too, and so disconnect it:",
                  "# mosquitto has no per-listener client id rule. Use it only where local users are trusted.",
                  f"listener {plain_port} {PLAIN_BIND}",
                  "allow_anonymous true",
                  f"acl_file {paths['acl-plain']}"]
    return "\n".join(lines) + "\n"


def role_rules(role: str, site: str, cart: str) -> list[str]:
    """The ACL lines for ``role`` on cart level ``cart`` (an id, or "+" for every cart)."""
    return [f"topic {access} {wire.TOPIC_ROOT}/{site}/{cart}/{leaf}" for access, leaf in RIGHTS[role]]


def render_acl(holders: Iterable[pki.Holder], site: str, *, now: datetime | None = None,
               header: str = "") -> str:
    """The TLS listener's ACL: a ``user`` block per holder of ``site`` that is neither revoked nor
    expired (those are listed in a comment; the CRL and TLS refuse them as well)."""
    wire.check_id(site, "site")
    now = now or datetime.now(UTC)
    granted, left_out = split(holders, now)
    out = [*([header, ""] if header else []),
           f"# Site {site}: rights per client certificate (CN = user name), no patterns, nobody reads #."]
    if left_out:
        out.append("# Left out: " + ", ".join(f"{h.client} ({why})" for h, why in left_out))
    for h, _ in left_out:
        _check_site(h, site)
    for h in granted:
        _check_site(h, site)
        if h.role not in RIGHTS:
            raise BrokerConfigError(f"client {h.client}: unknown role {h.role!r} in {h.cert}")
        out += ["", f"# {h.role}, certificate serial {h.serial:x}, valid until {h.not_after:%Y-%m-%d}",
                f"user {h.client}", *role_rules(h.role, site, h.client if h.role == "cart" else "+")]
    return "\n".join(out) + "\n"


def render_plain_acl(site: str, *, header: str = "") -> str:
    """The plaintext listener's ACL: rules before any ``user`` line apply to anonymous clients only,
    so a client that sends a user name there gets nothing."""
    wire.check_id(site, "site")
    return "\n".join([*([header, ""] if header else []), f"# Anonymous clients: the {PLAIN_ROLE}'s reads only.",
                      *role_rules(PLAIN_ROLE, site, "+")]) + "\n"


def split(holders: Iterable[pki.Holder], now: datetime) -> tuple[list[pki.Holder], list[tuple[pki.Holder, str]]]:
    """(holders granted rights, [(holder left out, why)])."""
    granted: list[pki.Holder] = []
    left_out: list[tuple[pki.Holder, str]] = []
    for h in holders:
        if h.revoked:
            left_out.append((h, "revoked"))
        elif h.not_after <= now:
            left_out.append((h, f"expired {h.not_after:%Y-%m-%d}"))
        else:
            granted.append(h)
    return granted, left_out


def write(pki_dir: Path, out: Path, port: int, plain_port: int | None = None, bind: str | None = None, *,
          data_dir: Path | None = None, log_stderr: bool = False, now: datetime | None = None) -> Path:
    """Write the configuration folder ``out`` from ``pki_dir``; returns ``out/mosquitto.conf``.
    Files are replaced atomically, so a broker reloading meanwhile reads the old or the new one."""
    pki_dir, out = pki_dir.resolve(), out.resolve()
    if out == pki_dir:
        raise BrokerConfigError(f"--out {out}: must not be the PKI folder (the broker must not see ca.key)")
    site = pki.site_of(pki_dir)
    holders = pki.holders(pki_dir)
    paths = Paths(out=out, data=(data_dir or out / "data").resolve())
    header = (f"# Generated by `wastecart broker config` from {pki_dir} for site {site} on "
              f"{(now or datetime.now(UTC)):%Y-%m-%d %H:%M} UTC.\n# Do not edit: run it again after "
              f"`pki issue`, `pki revoke` or `pki crl`, then reload mosquitto.")
    files = {"mosquitto.conf": render_conf(paths, port, bind=bind, plain_port=plain_port, log_stderr=log_stderr,
                                           header=header),
             "acl": render_acl(holders, site, now=now, header=header)}
    if plain_port is not None:
        files["acl-plain"] = render_plain_acl(site, header=header)
    mine = {*files, *COPIED, "acl-plain", "data", paths.data.name if paths.data.parent == out else "data"}
    _check_own(out, lambda name: name in mine, "--out")
    _check_own(paths.data, lambda name: name.startswith("mosquitto."), "--data")
    account = broker_account()
    _make_dir(out, account, owned_by_broker=False)
    _make_dir(paths.data, account, owned_by_broker=True)
    for name in COPIED:
        src = pki_dir / name
        try:
            data = src.read_bytes()
        except OSError as exc:
            raise BrokerConfigError(f"{src}: cannot read it ({exc.strerror}); is {pki_dir} a PKI folder "
                                    f"(`wastecart pki init`)?") from exc
        _put(out / name, data, account, private=name in KEY_FILES)
    for name, text in files.items():
        _put(out / name, text.encode(), account, private=False)
    if plain_port is None:
        (out / "acl-plain").unlink(missing_ok=True)  # a listener taken away leaves no stale rights behind
    if account:
        unreachable = [d for d in (out, paths.data) if not _reachable(d, *account)]
        if unreachable:
            raise BrokerConfigError(f"{unreachable[0]}: the {BROKER_USER} user cannot reach it (a parent folder "
                                    f"is closed to it), so mosquitto could not read its files; choose another --out")
    return out / "mosquitto.conf"


def broker_account() -> tuple[int, int] | None:
    """(uid, gid) of the ``mosquitto`` user when we are root and it exists (mosquitto drops to it); else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(BROKER_USER)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _check_site(holder: pki.Holder, site: str) -> None:
    if holder.site != site:
        raise BrokerConfigError(f"client {holder.client}: certificate {holder.cert} is for site {holder.site!r}, "
                                f"not {site!r}")


def _check_own(folder: Path, ours: Callable[[str], bool], flag: str) -> None:
    """Refuse a folder holding files we would not write: we chown and chmod it, so it must be ours
    (``--out /etc`` must not hand /etc to the mosquitto group)."""
    try:
        foreign = sorted(p.name for p in folder.iterdir() if not ours(p.name) and not p.name.startswith("."))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BrokerConfigError(f"{flag} {folder}: cannot list it ({exc.strerror})") from exc
    if foreign:
        raise BrokerConfigError(f"{flag} {folder}: holds other files ({', '.join(foreign[:5])}); "
                                f"give the broker a folder of its own")


def _check_port(port: int, flag: str) -> None:
    if not 1 <= port <= 65535:
        raise BrokerConfigError(f"{flag} {port}: must be 1..65535")


def _make_dir(path: Path, account: tuple[int, int] | None, *, owned_by_broker: bool) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        if account:
            uid, gid = account
            os.chown(path, uid if owned_by_broker else 0, gid)
            os.chmod(path, 0o750)
        else:
            os.chmod(path, 0o700)
    except OSError as exc:
        raise BrokerConfigError(f"{path}: cannot prepare it ({exc.strerror})") from exc


def _put(path: Path, data: bytes, account: tuple[int, int] | None, *, private: bool) -> None:
    """Write atomically; a key is 0640 root:mosquitto (or 0600 ours) from its first byte."""
    mode = (0o640 if account else 0o600) if private else 0o644
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            if account:
                os.fchown(f.fileno(), 0, account[1])
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BrokerConfigError(f"{path}: cannot write it ({exc.strerror})") from exc


def _reachable(path: Path, uid: int, gid: int) -> bool:
    """Whether user ``uid`` (primary group ``gid``) may traverse every folder down to ``path``."""
    name = pwd.getpwuid(uid).pw_name
    groups = set(os.getgrouplist(name, gid))
    for folder in (path, *path.parents):
        st = folder.stat()
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def describe(pki_dir: Path, *, now: datetime | None = None) -> tuple[list[pki.Holder], list[tuple[pki.Holder, str]]]:
    """Who the ACL written from ``pki_dir`` grants rights to, and who it leaves out (for the CLI)."""
    return split(pki.holders(pki_dir), now or datetime.now(UTC))

