"""``wastecart``: one console script, sub-commands registered by the module that owns them.

Each ``cmd_*`` module has ``register(cli)`` and handlers ``(args) -> int``; heavy imports (OpenCV,
paho, serial) happen inside handlers so ``wastecart --help`` stays fast.  Errors of our own error
trees are printed as one line (exit 2); a traceback means a bug.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

COMMAND_MODULES = (
    "wastecart.cmd_demo",
    "wastecart.cmd_edge",
    "wastecart.cmd_gateway",
    "wastecart.cmd_ledger",
    "wastecart.cmd_scale",
    "wastecart.cmd_qr",
    "wastecart.cmd_codes",
    "wastecart.cmd_camera",
    "wastecart.cmd_label",
    "wastecart.cmd_printer",
    "wastecart.cmd_fleet",
    "wastecart.cmd_pki",
    "wastecart.cmd_broker",
)
GROUPS = {
    "edge": "the cart agent and its ledger",
    "gateway": "the gateway that carts report to",
    "scale": "talk to a serial weighing scale",
    "label": "render or print QR labels",
    "qr": "make our QR payloads",
    "sim": "simulated devices: each prints where it listens",
    "pki": "the site's certificates for the broker: CA, broker, carts, gateways, operators",
    "broker": "the MQTT broker's configuration (mosquitto)",
}

Handler = Callable[[argparse.Namespace], int]


class Cli:
    """The parser tree; ``group("sim")`` is the sub-command list under ``wastecart sim``."""

    def __init__(self) -> None:
        self.parser = argparse.ArgumentParser(
            prog="wastecart",
            description="Waste-collection cart firmware, its gateway and simulated devices.",
        )
        self.parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        self._top = self.parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
        self._groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {"": self._top}

    def group(self, name: str, help_text: str = "") -> argparse._SubParsersAction[argparse.ArgumentParser]:
        if name not in self._groups:
            help_text = help_text or GROUPS.get(name, "")
            p = self._top.add_parser(name, help=help_text, description=help_text)
            self._groups[name] = p.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)
        return self._groups[name]

    def command(self, group: str, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = self.group(group).add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=handler)
        return p


def build() -> Cli:
    cli = Cli()
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(cli)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    cli = build()
    args = cli.parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from edge.errors import EdgeError
    from gateway.errors import GatewayError
    from wastecart.errors import WastecartError

    try:
        rc: int = args.func(args)
    except (WastecartError, EdgeError, GatewayError) as exc:
        print(f"wastecart: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `wastecart … | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return rc


if __name__ == "__main__":
    sys.exit(main())
