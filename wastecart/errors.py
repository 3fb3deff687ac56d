"""Errors of the command-line and orchestration layer.

    WastecartError            anything the CLI reports as one clear line (exit code 2)
     ├── SetupError           something missing on this machine (mosquitto, a port, a file)
     ├── PkiError             (wastecart.pki) a site PKI folder, certificate or key that cannot be used
     └── BrokerConfigError    (wastecart.broker_config) a broker configuration that cannot be written

``edge.errors`` and ``gateway.errors`` own their packages' trees; the CLI catches the roots of
all three and prints one line instead of a traceback.
"""


class WastecartError(Exception):
    """A failure the CLI reports as one line, without a traceback."""


class SetupError(WastecartError):
    """Something this machine lacks: a program, a free port, a readable file."""
