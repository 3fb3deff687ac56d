"""Scale parsers and the settle-to-stable delay, per registered protocol that has a simulator.

* ``parse``: 10,000 sim frames fed to the protocol's parser in 64-byte chunks (as a USB adapter
  delivers them), frames per second, next to a baseline measured on the same stream in the same
  run: a chunked ``bytes.split`` on a byte that occurs once per frame (the cheapest framing there is).
* ``settle``: through a real pty (VirtualScale → ScaleReader at 25 frames/s), the time from the
  sim's settle end (``settled_at``) to the first stable reading of the set weight; the median of a
  few loads.  Protocols without a motion flag pay the stability window here (``StabilitySettings``).

Run alone: ``python -c 'import json; from tests.bench import bench_scale; print(json.dumps(bench_scale.run()))'``
"""

from __future__ import annotations

import queue
import statistics
import time
from typing import Any

from edge.devices.scales import PROTOCOLS, Reading, ScaleReader
from edge.devices.scales.detect import harmless_request
from edge.devices.scales.stability import StabilitySettings
from sim_devices.scales import SIMS, ScaleState, VirtualScale

N_FRAMES = 10_000
CHUNK = 64  # bytes per feed: a full-speed USB packet
SETTLE_LOADS = (12_345, 2_000, 7_777)  # g: one delay measurement each
RATE_HZ = 25.0  # frames/s from the sim in the settle measurement
WAIT_S = 10.0  # s: give up on one settle measurement after this


def frames(protocol: str, n: int = N_FRAMES) -> list[bytes]:
    """``n`` frames of changing settled loads, as the indicator sends them (or answers its poll)."""
    sim = SIMS[protocol]()
    request = harmless_request(PROTOCOLS[protocol])
    out = []
    for i in range(n):
        s = ScaleState(1_000 + (i * 37) % 50_000, motion=i % 5 == 0)
        out.append(sim.frame(s) if sim.streaming or request is None else sim.answer(request.rstrip(b"\r\n"), s)
                   or b"")
    return out


def _chunks(data: bytes) -> list[bytes]:
    return [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]


def parse_rate(protocol: str) -> dict[str, Any]:
    stream = b"".join(frames(protocol))
    chunks = _chunks(stream)
    parser = PROTOCOLS[protocol].parser()
    t0 = time.perf_counter()
    decoded = sum(r.error is None for chunk in chunks for r in parser.feed(chunk))
    parse_s = time.perf_counter() - t0
    first = frames(protocol, 1)[0]
    # the split byte: one that occurs once per frame (a terminator or start marker), so the
    # baseline frames the same stream into the same number of pieces
    seps = [first[-1:], b"\r", b"\n", b"\x03", first[:1]]
    sep = next((b for b in seps if b and stream.count(b) == N_FRAMES), first[:1])
    t0 = time.perf_counter()
    buffer, split = b"", 0
    for chunk in chunks:
        *parts, buffer = (buffer + chunk).split(sep)
        split += len(parts)
    base_s = time.perf_counter() - t0
    return {"frames_per_s": round(N_FRAMES / parse_s), "decoded": decoded,
            "baseline_split_frames_per_s": round(N_FRAMES / base_s), "baseline_split_frames": split,
            "x_slower_than_split": round(parse_s / base_s, 1)}


def settle_delay(protocol: str) -> dict[str, Any]:
    readings: queue.Queue[tuple[float, Reading]] = queue.Queue()
    delays: list[float] = []
    with VirtualScale(protocol, rate_hz=RATE_HZ, seed=11) as sim:
        reader = ScaleReader(sim.path, protocol=protocol, on_reading=lambda r: readings.put((time.monotonic(), r)))
        reader.start()
        try:
            readings.get(timeout=WAIT_S)
            for grams in SETTLE_LOADS:
                sim.set_load(grams, settle_s=0.4, noise_g=20)
                settled = sim.settled_at
                while True:
                    at, r = readings.get(timeout=WAIT_S)
                    if r.stable and r.weight_g == grams and at >= settled:
                        delays.append(at - settled)
                        break
        finally:
            reader.stop()
    return {"median_ms": round(statistics.median(delays) * 1000, 1), "max_ms": round(max(delays) * 1000, 1),
            "n": len(delays), "motion_flag": PROTOCOLS[protocol].stable_flag}


def run() -> dict[str, Any]:
    covered = [p for p in PROTOCOLS if p in SIMS]
    return {
        "chunk_bytes": CHUNK,
        "frames": N_FRAMES,
        "sim_rate_hz": RATE_HZ,
        "stability_window_s": StabilitySettings().window_s,
        "parse": {p: parse_rate(p) for p in covered},
        "settle_to_stable": {p: settle_delay(p) for p in covered},
    }
