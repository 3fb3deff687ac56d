"""The cart's error tree.  Third-party errors (serial, sqlite3, paho, OpenCV) are translated at
the adapter that meets them, with ``raise … from``.  Every error carries a message key and its
parameters (``edge.messages``), never text: ``exc.msg`` is what the workflow and the kiosk take,
``str(exc)`` the one line ``中文 (English)`` for logs and the command line.

    EdgeError                 root: the CLI prints these as one line
     ├── StoreError           the ledger cannot commit (corrupt file, read-only, …)
     │    └── DiskFullError   no space for new records (committed ones are safe)
     ├── ScaleError           the scale port or its frames
     │    └── FrameError      one frame that cannot be trusted (checksum, garbage, bad unit)
     ├── CameraError          the camera URL cannot be opened or stopped delivering frames
     ├── CodeError            a scanned QR payload that is not ours, damaged or of another org
     ├── UplinkError          broker URL or connection set-up
     ├── LabelError           label content that cannot be laid out or drawn (bad field, no CJK font)
     ├── PrinterError         printer URL, connection, status (no answer, paper out) or language limit
     └── SetupError           a setting that names a file or a size that does not work (start-up checks)
"""

from __future__ import annotations

from typing import Any

from edge.messages import Msg


class EdgeError(Exception):
    """Root of the cart's errors: a message key (``edge.messages.CATALOGUE``) and its parameters."""

    def __init__(self, key: str, /, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

    @property
    def msg(self) -> Msg:
        return Msg(self.key, self.params)

    def __str__(self) -> str:
        return self.msg.text.line()


class StoreError(EdgeError):
    """The ledger could not commit or read; nothing was half-written."""


class DiskFullError(StoreError):
    """The ledger's disk is (nearly) full: new records are refused, committed ones are untouched."""


class ScaleError(EdgeError):
    """The scale port cannot be opened or read."""


class FrameError(ScaleError):
    """A frame from the scale that must not become a weight."""


class CameraError(EdgeError):
    """The camera cannot be opened or read."""


class CodeError(EdgeError):
    """A QR payload that is rejected; ``str()`` is the reason shown to the collector (Chinese)."""


class UplinkError(EdgeError):
    """The broker URL is wrong or the connection could not be set up."""


class LabelError(EdgeError):
    """A label that cannot be laid out or drawn; ``str()`` names the field (Chinese, English in brackets)."""


class PrinterError(EdgeError):
    """The printer cannot be reached, does not answer, reports a fault, or cannot carry the label."""


class SetupError(EdgeError):
    """A setting that passed validation but does not work here (a key file, a label size); names the key."""
