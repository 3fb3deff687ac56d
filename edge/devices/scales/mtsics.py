"""Mettler Toledo MT-SICS (reference §2): ``mt-sics``.

Policy, as for Toledo: a line that does not follow the grammar never yields a weight — it is
counted (``format_errors``) and yields a ``Reading`` with ``weight_g=None`` and ``error`` set.
Device answers that carry no weight (``S I``, ``ES``/``ET``/``EL``, ``Z I``, ``T +`` …) are error
readings too (counted in ``device_errors``), so the collector sees why nothing is recorded.
``S +``/``S -`` are overload/underload readings.  Acknowledgements (``Z A``, ``T S``, ``TA A``,
``TAC A``, ``I4 A``, other ``<ID> A``/``B``) yield no reading; they update ``zero_acks``,
``tare_g`` and ``serial``.  Units other than g/kg/t are refused by name.

MT-SICS has no checksum and no gross/net flag (the value is always net, §2.3): ``net`` and
``tare_g`` are only filled in once this connection has seen the tare (``T S``/``TI``/``TA A``/
``TAC A``).  A single corrupted digit on the line is therefore undetectable here; §8.3's
N-identical-readings rule belongs to the stability logic above the parser.
"""

from __future__ import annotations

import re
from decimal import Decimal

from edge.devices.scales.base import (
    GRAMS_PER_UNIT,
    LineBuffer,
    ProtocolSpec,
    Reading,
    error_reading,
    register,
    to_grams,
)

_PRINTABLE = re.compile(rb"[\t\x20-\x7e]*")  # after masking and dropping Xon/Xoff
_VALUE = re.compile(rb"[+-]?[0-9]+(?:\.[0-9]+)?")  # sign directly before the digits (§2.2)
_ID = re.compile(rb"[A-Z@][A-Z0-9]*")
_DEVICE_ERRORS = {
    b"ES": "syntax error: command not recognised",
    b"ET": "transmission error (parity/framing/break)",
    b"EL": "logical error: command cannot be executed",
}
_NOT_DONE = {
    b"I": "not executable now (busy, or stability not reached before timeout)",
    b"+": "upper limit exceeded",
    b"-": "lower limit exceeded",
    b"L": "logical error (parameter not allowed)",
}


class MtSicsParser:
    """MT-SICS answer lines (§2.2) into readings; see the module docstring for the policy.

    Counters: ``frames`` (lines that follow the grammar, weights and answers alike),
    ``device_errors`` (answers saying the command failed), ``format_errors`` (lines that do not
    follow the grammar) and ``garbage_bytes`` (a partial first line, Xon/Xoff, overflow).
    """

    protocol = "mt-sics"

    def __init__(self) -> None:
        self._lines = LineBuffer(mask7=True)
        self.frames = 0
        self.device_errors = 0
        self.format_errors = 0
        self.zero_acks = 0
        self.tare_g: int | None = None  # last tare the balance reported on this connection
        self.serial: str | None = None  # from ``I4 A "…"`` (also the answer to ``@``)

    @property
    def garbage_bytes(self) -> int:
        return self._lines.garbage_bytes

    def feed(self, data: bytes) -> list[Reading]:
        out: list[Reading] = []
        for raw, text, synced in self._lines.feed(data):
            reading, problem = self._line(raw, text)
            if problem is not None:
                if not synced:  # the tail of a line cut by the start of the stream
                    self._lines.discard(raw)
                    continue
                self.format_errors += 1
                out.append(error_reading(self.protocol, raw, problem))
                continue
            self.frames += 1
            if reading is not None:
                out.append(reading)
        return out

    def _line(self, raw: bytes, text: bytes) -> tuple[Reading | None, str | None]:
        """(reading or None for an acknowledgement, None) or (None, why the line is malformed)."""
        if not _PRINTABLE.fullmatch(text):
            return None, f"control characters in line {raw!r}"
        toks = text.split()
        if not toks:
            return None, None
        ident, rest = toks[0], toks[1:]
        if ident in _DEVICE_ERRORS and not rest:
            return self._failed(raw, f"{ident.decode()}: {_DEVICE_ERRORS[ident]}"), None
        if not _ID.fullmatch(ident) or not rest:
            return None, f"not an MT-SICS answer: {raw!r}"
        status = rest[0]
        if ident == b"S":
            return self._weight(raw, status, rest[1:])
        if ident in (b"T", b"TI", b"TA") and status in (b"S", b"D", b"A") and len(rest) == 3:
            return self._tare(raw, ident, status, rest[1], rest[2])
        if len(rest) == 1 and status in _NOT_DONE:
            return self._failed(raw, f"{ident.decode()} {status.decode()}: {_NOT_DONE[status]}"), None
        if ident == b"Z" and rest == [b"A"]:
            self.zero_acks += 1
            return None, None
        if ident == b"TAC" and rest == [b"A"]:
            self.tare_g = 0
            return None, None
        if ident == b"I4" and status == b"A" and len(rest) >= 2:
            self.serial = text.split(b'"')[1].decode() if text.count(b'"') == 2 else None
            return None, None
        if status in (b"A", b"B") and ident not in (b"Z", b"T", b"TI", b"TA", b"TAC"):
            return None, None  # I0…I5 and other informational answers: nothing to weigh
        return None, f"unexpected MT-SICS answer: {raw!r}"

    def _weight(self, raw: bytes, status: bytes, rest: list[bytes]) -> tuple[Reading | None, str | None]:
        if not rest and status in (b"+", b"-"):
            over = status == b"+"
            return Reading(
                self.protocol, raw, None, None, None, self._net(), self.tare_g, overload=over, underload=not over
            ), None
        if not rest and status == b"I":
            return self._failed(raw, f"S I: {_NOT_DONE[b'I']}"), None
        if status not in (b"S", b"D") or len(rest) != 2 or not _VALUE.fullmatch(rest[0]):
            return None, f"malformed weight answer: {raw!r}"
        value, unit = Decimal(rest[0].decode()), rest[1].decode()
        stable = status == b"S"
        if unit not in GRAMS_PER_UNIT:
            return Reading(
                self.protocol,
                raw,
                None,
                unit,
                stable,
                self._net(),
                self.tare_g,
                error=f"unit {unit} refused: only kg, g and t are recorded",
            ), None
        return Reading(self.protocol, raw, to_grams(value, unit), unit, stable, self._net(), self.tare_g), None

    def _tare(self, raw: bytes, ident: bytes, status: bytes, v: bytes, u: bytes) -> tuple[Reading | None, str | None]:
        if not _VALUE.fullmatch(v):
            return None, f"malformed tare answer: {raw!r}"
        unit = u.decode()
        if unit not in GRAMS_PER_UNIT:
            self.tare_g = None
            return self._failed(raw, f"tare unit {unit} refused: only kg, g and t are recorded"), None
        self.tare_g = to_grams(Decimal(v.decode()), unit)
        return None, None

    def _net(self) -> bool | None:
        return None if self.tare_g is None else self.tare_g != 0

    def _failed(self, raw: bytes, why: str) -> Reading:
        self.device_errors += 1
        return error_reading(self.protocol, raw, why)


# Poll ``SI`` rather than start ``SIR`` once (both parse the same):
# * a balance that is power-cycled while the adapter stays plugged forgets ``SIR`` and goes silent
#   with no port error; ``SI`` every poll_s recovers on the next poll;
# * ``Z``/``T`` sent while ``SIR`` streams interleave with the stream on some devices (§2.3 notes);
#   with ``SI`` each answer is one whole line to one request;
# * ``SI`` is listed as a harmless request (§2.3), and answers stable or not, so motion is visible.
register(
    ProtocolSpec(
        "mt-sics",
        MtSicsParser,
        "Mettler Toledo MT-SICS (balances, IND terminals in SICS mode), polled with SI",
        baud=9600,
        bytesize=8,
        parity="N",  # §1.1: 9600 8N1 default; 7E1 devices are read by masking bit 7
        stable_flag=True,
        poll=b"SI\r\n",
        poll_s=0.1,  # s: 10 requests/s, ~20 B answers = 20% of a 9600 baud line; motion stays visible
        zero=b"Z\r\n",
        tare=b"T\r\n",
    ),
)
