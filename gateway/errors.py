"""The gateway's error tree.

    GatewayError              root: the CLI prints these as one line
     ├── IngestError          a received payload that is rejected (kept in quarantine with the reason)
     ├── GatewayStoreError    the gateway's database cannot commit
     └── ForwardError         the platform call failed (temporary or permanent)
"""


class GatewayError(Exception):
    """Root of the gateway's errors."""


class IngestError(GatewayError):
    """A record payload that is refused; the message is the quarantine reason.

    ``kind`` is the alert it raises (one of ``wire.ALERT_KINDS``); ``subject`` names what it is
    about (the record id when the envelope could be read, else None: the topic is used);
    ``reject`` the reason (``wire.REJECT_REASONS``) a cart could act on, if re-sending cannot fix it.
    """

    def __init__(self, message: str, *, kind: str = "MALFORMED", subject: str | None = None,
                 reject: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.subject = subject
        self.reject = reject


class GatewayStoreError(GatewayError):
    """The gateway's database could not commit."""


class ForwardError(GatewayError):
    """A platform call that did not succeed.

    ``permanent``: a retry cannot help (dead letter).  ``unreachable``: no answer at all (connection
    or timeout): the platform is down or hung, so the forwarder pauses as a whole.  ``unknown``:
    the request may have reached the platform (a read timeout, a connection dropped after
    sending): the next attempt is a counted re-delivery.
    """

    def __init__(self, message: str, *, permanent: bool = False, unreachable: bool = False,
                 unknown: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.unreachable = unreachable
        self.unknown = unknown
