"""Which protocol, baud and framing does the indicator on this port speak? (reference §8.2)

1. **Passive**: for each baud in ``BAUDS`` open 8N1 and listen ``listen_s``; run every registered
   parser over the bytes (and over them with bit 7 masked when >30 % of bytes have it set: a 7E1
   device read as 8N1, §1.1).  Stop at the first baud where a protocol is accepted.
2. **Active**, only if nothing streams: for each command-mode protocol (one with ``poll`` or
   ``start``) send its harmless request — ``poll`` if it has one, else ``start`` — at its own
   framing, at each baud, and score the answer.  Never zero, tare or print: a request that equals
   any registered protocol's ``zero``/``tare`` is refused outright.

Scoring (``score``, pure): per protocol, ``confidence = validity × coverage × sample`` where
validity is the share of frames that decode without error, coverage the share of received bytes
inside decoded frames (allowing a cut frame at each end of the window), and sample
``min(1, frames / MIN_FRAMES)``.  Other formats the same bytes satisfy — decoded without a single
error and accepted on their own, or within ``AMBIGUOUS_MARGIN`` of the best — are reported in
``ambiguous_with`` (``yaohua-eq-r`` / ``yaohua-eq-f`` read each other's frames; ``toledo-nochk``
reads a ``toledo`` stream, skipping the checksum byte): that choice needs a reference mass at
commissioning (§8.2.3).  Ties go to fewer errors, then registry order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge.devices.scales.base import MASK7, ProtocolSpec
from edge.devices.scales.protocols import PROTOCOLS
from edge.devices.scales.reader import PORT_ERRORS, _close_quietly, open_port
from edge.errors import ScaleError

if TYPE_CHECKING:
    from serial import Serial

BAUDS = (9600, 4800, 2400, 1200, 19200)  # §8.2: the usual speeds, most common first
LISTEN_S = 1.5  # s: ≥ 3 frames at the slowest expected continuous rate (§8.2)
PROBE_S = 0.6  # s: answer time allowed for one probe (MT-SICS/OHAUS answer within ~100 ms)
MIN_FRAMES = 3  # §8.2: accept a protocol only after ≥ 3 valid frames
ACCEPT = 0.8  # confidence at which the search stops
AMBIGUOUS_MARGIN = 0.1  # candidates this close to the best cannot be told apart by the bytes
HIGH_BIT_SHARE = 0.3  # §8.2: more than this share of bytes with bit 7 set → 7-bit data + parity


@dataclass(frozen=True)
class Candidate:
    protocol: str
    baud: int
    framing: str  # "8N1", or "7E1" when the bytes carried a parity bit in bit 7
    frames: int  # decoded without error
    errors: int  # frames rejected by the parser (checksum, format)
    coverage: float  # share of the received bytes that lay inside decoded frames
    confidence: float
    probed: bool = False  # found by answering a request, not by listening
    weights: frozenset[int | None] = frozenset()  # the weights it decoded from the sample

    def as_json(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "baud": self.baud, "framing": self.framing, "frames": self.frames,
                "errors": self.errors, "coverage": round(self.coverage, 3),
                "confidence": round(self.confidence, 3), "probed": self.probed}


@dataclass(frozen=True)
class Detection:
    candidates: tuple[Candidate, ...]  # best first

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates and self.candidates[0].confidence >= ACCEPT else None

    @property
    def ambiguous_with(self) -> list[str]:
        """Other protocols the same bytes fit: accepted on their own too, or as close as the best."""
        best = self.best
        if best is None:
            return []
        return [c.protocol for c in self.candidates[1:]
                if (c.errors == 0 and c.frames >= MIN_FRAMES and c.confidence >= ACCEPT)
                or c.confidence >= best.confidence - AMBIGUOUS_MARGIN]

    @property
    def conflicting(self) -> list[str]:
        """Formats the bytes fit equally well that decode *different weights* from them (say
        ``yaohua-eq-r`` vs ``yaohua-eq-f``): a reading must not be guessed between these."""
        best = self.best
        if best is None:
            return []
        others = {c.protocol: c for c in self.candidates[1:]}
        return [p for p in self.ambiguous_with if others[p].weights != best.weights]

    def as_json(self) -> dict[str, Any]:
        best = self.best
        return {
            "detected": best.protocol if best else None,
            "confidence": round(best.confidence, 3) if best else 0.0,
            "baud": best.baud if best else None,
            "framing": best.framing if best else None,
            "ambiguous_with": self.ambiguous_with,
            "conflicting": self.conflicting,
            "candidates": [c.as_json() for c in self.candidates],
        }


def _specs(protocols: Iterable[str] | None) -> list[ProtocolSpec]:
    return [PROTOCOLS[p] for p in protocols] if protocols is not None else list(PROTOCOLS.values())


def score(data: bytes, *, baud: int = 9600, line: str = "8N1", protocols: Iterable[str] | None = None,
          probed: str | None = None) -> list[Candidate]:
    """Every protocol whose parser decodes at least one frame from ``data``, best first."""
    if not data:
        return []
    seven_bit = sum(b >= 0x80 for b in data) > HIGH_BIT_SHARE * len(data)
    framing = "7E1" if seven_bit else line
    streams = [data, data.translate(MASK7)] if seven_bit else [data]
    best: dict[str, Candidate] = {}
    for spec in _specs(protocols):
        for stream in streams:
            readings = spec.parser().feed(stream)
            good = [r for r in readings if r.error is None]
            if not good:
                continue
            errors = len(readings) - len(good)
            # the first and the last frame may be cut by the listening window: one frame each of slack
            framed = sum(len(r.raw) for r in good)
            coverage = min(1.0, framed / max(1, len(stream) - 2 * max(len(r.raw) for r in good)))
            confidence = len(good) / len(readings) * coverage * min(1.0, len(good) / MIN_FRAMES)
            c = Candidate(spec.id, baud, framing, len(good), errors, coverage, confidence, spec.id == probed,
                          frozenset(r.weight_g for r in good))
            if spec.id not in best or c.confidence > best[spec.id].confidence:
                best[spec.id] = c
    return list(rank(best.values()).candidates)


def rank(candidates: Iterable[Candidate]) -> Detection:
    """The best candidate per protocol across bauds and probes, best first."""
    order = {p: i for i, p in enumerate(PROTOCOLS)}
    best: dict[str, Candidate] = {}
    for c in candidates:
        if c.protocol not in best or c.confidence > best[c.protocol].confidence:
            best[c.protocol] = c
    return Detection(tuple(sorted(best.values(),
                                  key=lambda c: (-c.confidence, not c.probed, c.errors, order.get(c.protocol, 0)))))


def harmless_request(spec: ProtocolSpec) -> bytes | None:
    """The one request a probe may send for ``spec`` (poll, else start), never a zero/tare."""
    request = spec.poll or spec.start
    forbidden = {s.zero for s in PROTOCOLS.values()} | {s.tare for s in PROTOCOLS.values()}
    if request is None or request in forbidden:
        return None
    return request


def _listen(port: Serial, seconds: float, clock: Callable[[], float]) -> bytes:
    data = bytearray()
    deadline = clock() + seconds
    while clock() < deadline:
        try:
            data += port.read(port.in_waiting or 1)
        except PORT_ERRORS as exc:
            raise ScaleError("scale.lost_listening", reason=str(exc)) from exc
    return bytes(data)


def _probe(port: Serial, request: bytes, every_s: float, seconds: float, clock: Callable[[], float]) -> bytes:
    """Repeat the harmless request as the reader would (one answer per request) and collect:
    at least ``MIN_FRAMES + 2`` requests (a parser may discard the first, possibly cut, answer)."""
    data = bytearray()
    for _ in range(MIN_FRAMES + 2):
        port.write(request)
        data += _listen(port, every_s, clock)
    return bytes(data + _listen(port, seconds, clock))  # late answers


def detect(url: str, *, protocols: Iterable[str] | None = None, bauds: Iterable[int] = BAUDS,
           listen_s: float = LISTEN_S, probe_s: float = PROBE_S, active: bool = True,
           clock: Callable[[], float] = time.monotonic,
           on_step: Callable[[str], None] | None = None) -> Detection:
    """Listen, then (if nothing streams) probe; ``ScaleError`` if the port cannot be opened."""
    specs = _specs(protocols)
    ids = [s.id for s in specs]
    bauds = list(bauds)
    found: list[Candidate] = []
    for baud in bauds:
        if on_step:
            on_step(f"listening at {baud} 8N1")
        port = open_port(url, baud)
        try:
            data = _listen(port, listen_s, clock)
        finally:
            _close_quietly(port)
        found += score(data, baud=baud, protocols=ids)
        if (result := rank(found)).best is not None:
            return result
    if not active:
        return rank(found)
    for spec in specs:
        request = harmless_request(spec)
        if request is None:
            continue
        for baud in [spec.baud, *(b for b in bauds if b != spec.baud)]:
            if on_step:
                on_step(f"asking {spec.id} with {request!r} at {baud} {spec.bytesize}{spec.parity}1")
            port = open_port(url, baud, spec.bytesize, spec.parity)
            try:
                data = _probe(port, request, spec.poll_s, probe_s, clock)
            except PORT_ERRORS as exc:
                raise ScaleError("scale.lost_probing", url=url, reason=str(exc)) from exc
            finally:
                _close_quietly(port)
            found += score(data, baud=baud, line=f"{spec.bytesize}{spec.parity}1", protocols=ids, probed=spec.id)
            if (result := rank(found)).best is not None:
                return result
    return rank(found)
