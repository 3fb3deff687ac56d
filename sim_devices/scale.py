"""A virtual weighing indicator on a pty, speaking Mettler Toledo standard continuous output.

Frames are built here from the protocol description (reference §3), never with ``edge``'s parser:
a simulator that shares the parser it tests hides the parser's bugs.  The indicator shows kg with
3 decimals (decimal code 5, increment ×1), so the six weight digits are exactly the grams and the
capacity is 999.999 kg; beyond it the out-of-range bit is set.
"""

from __future__ import annotations

import os
import random
import threading
import time
import tty
from collections.abc import Callable

TOLEDO_SWA = 0x20 | 0x08 | 0x05  # bit 5 always 1, increment ×1 (bits 4,3 = 01), 3 decimals (code 5)
TOLEDO_SWB = 0x20 | 0x10  # bit 5 always 1, bit 4: kg (SWC unit bits 000 defer to it)
TOLEDO_SWC = 0x20  # bit 5 always 1; unit from SWB; no print request, not expanded
TOLEDO_MAX_G = 999_999  # g: six digits at 3 decimals in kg


def toledo_frame(
    grams: int, *, motion: bool = False, net: bool = False, tare_g: int = 0, checksum: bool = True
) -> bytes:
    """One standard frame: STX SWA SWB SWC, 6 weight + 6 tare digits (leading blanks), CR [CHK]."""
    out_of_range = abs(grams) > TOLEDO_MAX_G
    swb = TOLEDO_SWB | net | (grams < 0) << 1 | out_of_range << 2 | motion << 3
    shown = min(abs(grams), TOLEDO_MAX_G)
    body = bytes([0x02, TOLEDO_SWA, swb, TOLEDO_SWC]) + b"%6d%6d\r" % (shown, tare_g)
    if checksum:
        body += bytes([-sum(body) & 0x7F])  # 7-bit two's complement of the sum, STX and CR included
    return body


FRAMERS: dict[str, Callable[..., bytes]] = {"toledo": toledo_frame}


class VirtualScale:
    """A scale on a pty: ``path`` is the device a reader opens; ``set_load`` drives motion→stable.

    The slave fd stays open here so the pty lives while no reader is attached; master writes are
    non-blocking and a frame is dropped (counted) when nobody reads and the pty buffer is full.
    """

    def __init__(
        self,
        protocol: str = "toledo",
        *,
        rate_hz: float = 10.0,
        checksum: bool = True,
        link: str | None = None,
        seed: int | None = None,
    ) -> None:
        if protocol not in FRAMERS:
            raise ValueError(f"unknown scale protocol {protocol!r}; simulated: {', '.join(FRAMERS)}")
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.protocol, self.rate_hz, self.checksum, self.link = protocol, rate_hz, checksum, link
        self._framer = FRAMERS[protocol]
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._from_g = self._to_g = 0  # g: the load moves from one to the other while settling
        self._t0, self._settle_s, self._noise_g = 0.0, 0.0, 0
        self.frames_sent = 0
        self.frames_dropped = 0
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

    def frame(self) -> bytes:
        """The frame the indicator would send now."""
        with self._lock:
            now = time.monotonic()
            motion = now - self._t0 < self._settle_s
            grams = self._approach(now)
            if motion and self._noise_g:
                grams += self._rng.randint(-self._noise_g, self._noise_g)
        return self._framer(grams, motion=motion, checksum=self.checksum)

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

    def _run(self) -> None:
        assert self._fds is not None
        master = self._fds[0]
        while not self._stop.wait(1.0 / self.rate_hz):
            frame = self.frame()
            try:
                written = os.write(master, frame)
            except BlockingIOError:  # nobody reads and the pty buffer is full
                written = 0
            if written == len(frame):
                self.frames_sent += 1
            else:  # a partial frame is on the wire: the reader must resync, as after line noise
                self.frames_dropped += 1
