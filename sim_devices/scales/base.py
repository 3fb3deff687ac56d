"""A virtual weighing indicator on a pty, speaking any simulated protocol (``SIMS``).

Frames are built by the protocol modules here from the protocol descriptions (reference), never
with ``edge``'s parsers: a simulator that shares the parser it tests hides the parser's bugs.
Continuous protocols send a frame every ``1/rate_hz``; command-mode ones answer each command line
they receive (and a few stream after a command, e.g. MT-SICS ``SIR``).  The load moves linearly
to its target while it settles (motion, with ±noise), then holds exactly.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ScaleState:
    """What the indicator shows right now."""

    grams: int
    motion: bool
    net: bool = False
    tare_g: int = 0


class SimProtocol(Protocol):
    """One protocol's indicator side.  ``frame`` is the periodic output when ``streaming`` is true;
    ``answer`` replies to one received command line (without its CR/LF), or None for no reply."""

    streaming: bool

    def frame(self, s: ScaleState) -> bytes: ...

    def answer(self, command: bytes, s: ScaleState) -> bytes | None: ...


SIMS: dict[str, Callable[[], SimProtocol]] = {}


def register(protocol: str, factory: Callable[[], SimProtocol]) -> None:
    if protocol in SIMS:
        raise ValueError(f"simulated scale protocol {protocol!r} registered twice")
    SIMS[protocol] = factory


class VirtualScale:
    """A scale on a pty: ``path`` is the device a reader opens; ``set_load`` drives motion→stable.

    The slave fd stays open here so the pty lives while no reader is attached; master writes are
    non-blocking and a frame is dropped (counted) when nobody reads and the pty buffer is full.
    """

    def __init__(self, protocol: str = "toledo", *, rate_hz: float = 10.0, link: str | None = None,
                 seed: int | None = None) -> None:
        if protocol not in SIMS:
            raise ValueError(f"unknown scale protocol {protocol!r}; simulated: {', '.join(sorted(SIMS))}")
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.protocol, self.rate_hz, self.link = protocol, rate_hz, link
        self.sim = SIMS[protocol]()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._from_g = self._to_g = 0  # g: the load moves from one to the other while settling
        self._t0, self._settle_s, self._noise_g = 0.0, 0.0, 0
        self.tare_g = 0
        self.frames_sent = 0
        self.frames_dropped = 0
        self.commands: list[bytes] = []  # every command line received, for tests
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fds: tuple[int, int] | None = None
        self._path: str | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            raise RuntimeError("VirtualScale not started")
        return self._path

    def set_load(self, grams: int, settle_s: float = 0.6, noise_g: int = 0) -> None:
        """Put ``grams`` on: motion frames approach it with ±noise for ``settle_s``, then exact."""
        with self._lock:
            now = time.monotonic()
            self._from_g = self._approach(now)
            self._to_g, self._t0, self._settle_s, self._noise_g = grams, now, settle_s, noise_g

    def remove_load(self, settle_s: float = 0.6) -> None:
        self.set_load(0, settle_s)

    def state(self) -> ScaleState:
        """What the indicator shows now (gross minus tare)."""
        with self._lock:
            now = time.monotonic()
            motion = now - self._t0 < self._settle_s
            grams = self._approach(now)
            if motion and self._noise_g:
                grams += self._rng.randint(-self._noise_g, self._noise_g)
        return ScaleState(grams - self.tare_g, motion, net=self.tare_g != 0, tare_g=self.tare_g)

    def frame(self) -> bytes:
        """The frame the indicator would send now."""
        return self.sim.frame(self.state())

    def _approach(self, now: float) -> int:
        """Noise-free weight at ``now`` (lock held): linear from the old to the new load."""
        elapsed = now - self._t0
        if elapsed >= self._settle_s:
            return self._to_g
        return self._from_g + round((self._to_g - self._from_g) * elapsed / self._settle_s)

    def start(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR→NL: bytes pass unchanged
        os.set_blocking(master, False)
        self._fds = (master, slave)
        self._path = os.ttyname(slave)
        if self.link:
            tmp = f"{self.link}.{os.getpid()}.tmp"
            os.symlink(self._path, tmp)
            os.replace(tmp, self.link)  # atomic: a reader never sees the link missing
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"sim-scale-{self._path}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.link and os.path.islink(self.link) and os.readlink(self.link) == self._path:
            os.unlink(self.link)
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
            self._fds = None

    def __enter__(self) -> VirtualScale:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _send(self, master: int, data: bytes) -> None:
        try:
            written = os.write(master, data)
        except BlockingIOError:  # nobody reads and the pty buffer is full
            written = 0
        if written == len(data):
            self.frames_sent += 1
        else:  # a partial frame is on the wire: the reader must resync, as after line noise
            self.frames_dropped += 1

    def _run(self) -> None:
        assert self._fds is not None
        master = self._fds[0]
        period = 1.0 / self.rate_hz
        next_frame = time.monotonic()
        pending = b""
        while not self._stop.is_set():
            # Wait for a command from the reader or the next frame time, whichever comes first.
            readable, _, _ = select.select([master], [], [], max(0.0, next_frame - time.monotonic()))
            if readable:
                with contextlib.suppress(BlockingIOError):  # select raced with nothing to read
                    pending += os.read(master, 4096)
                *lines, pending = pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
                for line in lines:
                    if line:
                        self.commands.append(line)
                        reply = self.sim.answer(line, self.state())
                        if reply:
                            self._send(master, reply)
            if time.monotonic() >= next_frame:
                next_frame += period
                if self.sim.streaming:
                    self._send(master, self.frame())
