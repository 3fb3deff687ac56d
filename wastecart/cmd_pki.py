"""``wastecart pki``: the site's certificates for the broker (``wastecart.pki`` does the work).

Each command prints the files it wrote (never a key's contents) and what to do next: give the
files to the client, regenerate the broker's config and reload mosquitto.  A CRL near or past its
next update is reported on stderr by every command, since mosquitto then refuses every client.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wastecart import pki
from wastecart.cli import Cli

BROKER_STEP = ("then regenerate the broker's config and reload mosquitto: "
               "`wastecart broker config --pki {dir} --out OUT --port N`, then "
               "`systemctl reload wastecart-mosquitto` (or `kill -HUP` its pid)")


def register(cli: Cli) -> None:
    p = cli.command("pki", "init", init, "create the site CA, the broker's certificate and an empty CRL in DIR "
                    "(refuses a DIR that has a CA already)")
    _dir(p)
    p.add_argument("--site", required=True, help="the site id (the MQTT topic level wc/v1/SITE/…)")
    p.add_argument("--server-host", action="append", default=[], metavar="NAME",
                   help="a name or IP address clients use to reach the broker (its certificate's SAN); repeat "
                        "for several; localhost and 127.0.0.1 are always included")
    p.add_argument("--days", type=int, default=pki.CA_DAYS,
                   help=f"days the CA and the broker's certificate are valid (default {pki.CA_DAYS})")
    _crl_days(p)

    p = cli.command("pki", "issue", issue, "issue a client's certificate and key (DIR/clients/ID/)")
    _dir(p)
    p.add_argument("--client", required=True, metavar="ID",
                   help="the client id: a cart's cart id (the broker takes it as the user name)")
    p.add_argument("--role", required=True, choices=pki.ROLES, help="what the broker lets it do")
    p.add_argument("--days", type=int, default=pki.CLIENT_DAYS,
                   help=f"days the certificate is valid (default {pki.CLIENT_DAYS})")

    p = cli.command("pki", "revoke", revoke, "revoke a client's certificate (adds it to DIR/crl.pem)")
    _dir(p)
    p.add_argument("--client", required=True, metavar="ID", help="the client id")
    _crl_days(p)

    p = cli.command("pki", "crl", crl, "re-sign the CRL with a new next update (run it before the CRL expires: "
                    "mosquitto refuses every client once it has)")
    _dir(p)
    _crl_days(p)

    p = cli.command("pki", "list", list_holders, "who holds which certificate, its role, expiry and revocation, "
                    "and when the CRL needs re-signing")
    _dir(p)
    p.add_argument("--json", action="store_true",
                   help='one JSON object: {"site", "crl_next_update", "holders": [{"client", "role", "site", '
                        '"serial" (hex), "not_before", "not_after", "revoked", "expired", "cert", "key"}]}')


def _dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", type=Path, required=True, help="the PKI folder")


def _crl_days(p: argparse.ArgumentParser) -> None:
    p.add_argument("--crl-days", type=int, default=pki.CRL_DAYS,
                   help=f"days until the CRL's next update (default {pki.CRL_DAYS})")


def _when(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M} UTC"


def _warn(dir: Path) -> None:
    warning = pki.crl_warning(dir)
    if warning:
        print(warning, file=sys.stderr)


def init(args: argparse.Namespace) -> int:
    from cryptography import x509

    d: Path = args.dir
    pki.init(d, args.site, args.server_host, days=args.days, crl_days=args.crl_days)
    server = x509.load_pem_x509_certificate((d / "server.crt").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    shown = [str(n.value) for n in names]
    ca = x509.load_pem_x509_certificate((d / "ca.crt").read_bytes())
    print(f"pki: site {pki.site_of(d)} in {d}")
    print(f"wrote {d / 'ca.crt'}  (the site CA, valid until {_when(ca.not_valid_after_utc)})")
    print(f"wrote {d / 'ca.key'}  (0600: whoever has it can issue certificates; keep it off the broker)")
    print(f"wrote {d / 'server.crt'}  (the broker's; names: {', '.join(shown)})")
    print(f"wrote {d / 'server.key'}  (0600)")
    print(f"wrote {d / 'crl.pem'}  (nothing revoked; next update {_when(pki.crl_next_update(d))}: "
          f"re-sign it before then with `wastecart pki crl --dir {d}`)")
    print(f"wrote {d / 'site'}")
    print(f"next: `wastecart pki issue --dir {d} --client ID --role {'|'.join(pki.ROLES)}` for each client, "
          f"then `wastecart broker config --pki {d} --out OUT --port N`")
    _warn(d)
    return 0


def _how_to_use(d: Path, h: pki.Holder) -> list[str]:
    """How the client gets its files: its config section or flags (paths as on this machine)."""
    ca, cert, key = (p.resolve() for p in (d / "ca.crt", h.cert, h.key))
    if h.role == "operator":
        return [f"give {h.client} these files (keep the key 0600), e.g. for mosquitto_sub:",
                f"  mosquitto_sub -h HOST -p PORT --cafile {ca} --cert {cert} --key {key} "
                f"-t 'wc/v1/{h.site}/+/status' -t 'wc/v1/{h.site}/+/telemetry' -v"]
    section, command = ("[uplink.tls]", "edge run") if h.role == "cart" else ("[tls]", "gateway run")
    flag_commands = f"`wastecart {command}`" + (" or `wastecart sim fleet`" if h.role == "cart" else "")
    return [f"give the {h.role} these files (keep the key 0600) and set in its config:",
            f"  {section}", f'  ca = "{ca}"', f'  cert = "{cert}"', f'  key = "{key}"',
            f"or pass --tls-ca {ca} --tls-cert {cert} --tls-key {key} to {flag_commands}"]


def issue(args: argparse.Namespace) -> int:
    d: Path = args.dir
    before = {h.client: h for h in pki.holders(d)}
    h = pki.issue(d, args.client, args.role, days=args.days)
    article = "an" if h.role[0] in "aeiou" else "a"
    print(f"issued {article} {h.role} certificate for {h.client} (site {h.site}, serial {h.serial:x}, "
          f"valid until {_when(h.not_after)})")
    old = before.get(h.client)
    if old:
        kept = h.cert.with_name(f"{'revoked' if old.revoked else 'expired'}-{old.serial:x}.crt")
        print(f"it replaces the {'revoked' if old.revoked else 'expired'} {old.role} certificate "
              f"(serial {old.serial:x}), kept as {kept}")
    print(f"wrote {h.cert}")
    print(f"wrote {h.key}  (0600)")
    for line in _how_to_use(d, h):
        print(line)
    print(BROKER_STEP.format(dir=d) + f"; the broker lets {h.client} in only after that")
    _warn(d)
    return 0


def revoke(args: argparse.Namespace) -> int:
    d: Path = args.dir
    h = pki.revoke(d, args.client, crl_days=args.crl_days)
    print(f"revoked the {h.role} certificate of {h.client} (serial {h.serial:x})")
    print(f"wrote {d / 'crl.pem'}  (next update {_when(pki.crl_next_update(d))})")
    print(BROKER_STEP.format(dir=d) + f"; until then the broker still lets {h.client} in")
    _warn(d)
    return 0


def crl(args: argparse.Namespace) -> int:
    d: Path = args.dir
    update = pki.renew_crl(d, crl_days=args.crl_days)
    print(f"wrote {d / 'crl.pem'}  (next update {_when(update)})")
    print(BROKER_STEP.format(dir=d) + "; the broker uses its own copy of the CRL")
    _warn(d)
    return 0


def _status(h: pki.Holder, now: datetime) -> str:
    if h.revoked:
        return "revoked"
    if h.not_after <= now:
        return "expired"
    if h.not_before > now:
        return "not yet valid"
    left = (h.not_after - now).days
    return f"valid, expires in {left} days" if left < 30 else "valid"  # 30: time to plan the replacement


def list_holders(args: argparse.Namespace) -> int:
    d: Path = args.dir
    now = datetime.now(UTC)
    site, found, update = pki.site_of(d), pki.holders(d), pki.crl_next_update(d)
    if args.json:
        rows: list[dict[str, Any]] = [
            {"client": h.client, "role": h.role, "site": h.site, "serial": f"{h.serial:x}",
             "not_before": h.not_before.isoformat(), "not_after": h.not_after.isoformat(), "revoked": h.revoked,
             "expired": h.not_after <= now, "cert": str(h.cert), "key": str(h.key)} for h in found]
        print(json.dumps({"site": site, "crl_next_update": update.isoformat(), "holders": rows}))
    else:
        print(f"site {site} ({d}): {len(found)} client certificate(s)")
        table = [("CLIENT", "ROLE", "SERIAL", "NOT AFTER", "STATUS")]
        table += [(h.client, h.role, f"{h.serial:x}", _when(h.not_after), _status(h, now)) for h in found]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        print(f"CRL next update: {_when(update)}")
    _warn(d)
    return 0
