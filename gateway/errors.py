"""The gateway's error tree.

    GatewayError              root: the CLI prints these as one line
     ├── IngestError          a received payload that is rejected (kept in quarantine with the reason)
     ├── GatewayStoreError    the gateway's database cannot commit
     └── ForwardError         the platform call failed (temporary or permanent)
"""


class GatewayError(Exception):
    """Root of the gateway's errors."""


class IngestError(GatewayError):
    """A record payload that is refused; the message is the quarantine reason."""


class GatewayStoreError(GatewayError):
    """The gateway's database could not commit."""


class ForwardError(GatewayError):
    """A platform call that did not succeed; ``permanent`` says whether a retry can help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
