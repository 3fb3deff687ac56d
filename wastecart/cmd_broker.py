"""``wastecart broker config``: mosquitto's configuration for a site (``wastecart.broker_config`` does the work).

It prints what it wrote, who may do what, how to start mosquitto on it and how to apply a change.
Measured on mosquitto 2.0.11 (tests/integration/test_broker_acl.py): SIGHUP re-reads the ACL and
the CRL, so after ``pki revoke`` a reload refuses the certificate's new connections and leaves its
open connection able to neither publish nor receive; a restart also closes that connection.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wastecart.cli import Cli

SERVICE = "wastecart-mosquitto"  # deploy/systemd/wastecart-mosquitto.service


def register(cli: Cli) -> None:
    p = cli.command("broker", "config", config,
                    "write mosquitto.conf, the ACL and copies of the broker's TLS files for a site's PKI")
    p.add_argument("--pki", type=Path, required=True, metavar="DIR", help="the PKI folder (`wastecart pki init`)")
    p.add_argument("--out", type=Path, required=True, metavar="OUT",
                   help="folder for mosquitto.conf, acl, ca.crt, server.crt, server.key, crl.pem")
    p.add_argument("--port", type=int, required=True, metavar="N", help="the TLS listener's port (usually 8883)")
    p.add_argument("--bind", metavar="ADDRESS",
                   help="the TLS listener's address (default: every address, IPv4 and IPv6)")
    p.add_argument("--plain-port", type=int, metavar="M",
                   help="also a plaintext listener on 127.0.0.1:M; anonymous clients there may only read "
                        "status and telemetry (for local tools); any local process may use any client id there, "
                        "so only on a host whose local users are trusted")
    p.add_argument("--data", type=Path, metavar="DIR",
                   help="persistence (and log) folder, owned by the mosquitto user when run as root "
                        "(default OUT/data)")
    p.add_argument("--log-stderr", action="store_true",
                   help="log to stderr (systemd's journal) instead of a file in the data folder")


def config(args: argparse.Namespace) -> int:
    from wastecart import broker_config, pki

    conf = broker_config.write(args.pki, args.out, args.port, plain_port=args.plain_port, bind=args.bind,
                               data_dir=args.data, log_stderr=args.log_stderr)
    out = conf.parent
    data = (args.data or out / "data").resolve()
    site = pki.site_of(args.pki)
    granted, left_out = broker_config.describe(args.pki)
    account = broker_config.broker_account()
    owner = (f"group {broker_config.BROKER_USER}, key 0640" if account else
             "owned by you, key 0600: start mosquitto as yourself, or run this as root for a system broker")

    print(f"broker config for site {site} written to {out}/")
    print(f"  mosquitto.conf  TLS listener on {args.bind or '*'}:{args.port}: a client certificate of the "
          f"site CA is required, its CN is the user name and client id; CRL checked")
    print(f"  acl             {len(granted)} client(s) with rights: "
          + (", ".join(f"{h.client} ({h.role})" for h in granted) or "none yet (`wastecart pki issue`)"))
    if left_out:
        print("                  left out: " + ", ".join(f"{h.client} ({why})" for h, why in left_out))
    if args.plain_port is not None:
        print(f"  acl-plain       plaintext listener on {broker_config.PLAIN_BIND}:{args.plain_port}: "
              f"anonymous may read status and telemetry only")
    print(f"  {', '.join(broker_config.COPIED)}  copies from {args.pki.resolve()} ({owner})")
    print(f"  {data}/  persistence" + ("" if args.log_stderr else " and mosquitto.log")
          + (f", owned by {broker_config.BROKER_USER}" if account else ""))
    print(f"start:   mosquitto -c {conf}")
    print(f"         (systemd: copy deploy/systemd/{SERVICE}.service, `systemctl enable --now {SERVICE}`)")
    print("apply a change (after `pki issue`, `pki revoke` or `pki crl`): run this command again, then")
    print(f"         systemctl reload {SERVICE}   (or `kill -HUP <mosquitto's pid>`)")
    print("         a reload re-reads the ACL and the CRL: a revoked client cannot connect again and its open")
    print(f"         connection can neither publish nor receive; `systemctl restart {SERVICE}` also closes it")
    warning = pki.crl_warning(args.pki)
    if warning:
        print(warning, file=sys.stderr)
    return 0
