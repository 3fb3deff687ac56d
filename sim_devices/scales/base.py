"""A virtual weighing indicator on a pty, speaking any simulated protocol (``SIMS``), with faults.

Frames are built by the protocol modules here from the protocol descriptions (reference), never
with ``edge``'s parsers: a simulator that shares the parser it tests hides the parser's bugs.
Continuous protocols send a frame every ``1/rate_hz``; command-mode ones answer each command line
they receive (a line ends at CR/LF, or after ETX for STX…ETX commands), and a few stream after a
command (e.g. MT-SICS ``SIR``).  The load moves linearly to its target while it settles (motion,
with ±noise), then holds exactly (plus any drift).

Faults (reference §10), all switchable at run time and from a script (``script.py``):

* ``unplug(s)``: the USB adapter is pulled — both pty fds close, the ``link`` symlink goes away,
  and after ``s`` seconds a *new* pty appears with the link pointing to it (``path`` changes);
* ``power(False)``: the indicator is off behind a still-plugged adapter — silence, no answers;
* ``inject(bytes)`` / ``garbage_rate``: line noise between frames; ``corrupt_rate``: one bit of a
  frame flipped (a checksum must catch it); ``partial_frame()``: the tail of a frame only, as
  when a reader joins mid-frame;
* ``drift_g_per_s``: creep without motion; ``overload``: far beyond any capacity;
* ``baud``: the indicator's line speed.  A Linux pty carries the reader's speed setting (the
  master sees the slave's termios), so when the reader's baud differs the bytes are re-sampled
  as a UART at the wrong speed would see them (``uart_resample``); ``seven_e1``: bit 7 carries
  even parity, i.e. a 7E1 indicator read as 8N1 (§1.1).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import select
import termios
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

OVERLOAD_G = 10_000_000  # g: 10 t, beyond the capacity of every simulated indicator
GARBAGE_BURST = (1, 24)  # bytes: size range of one burst of line noise before a frame
# termios speed codes → baud, for the speeds a scale uses (the pty reports the reader's setting)
# a command ends at CR, LF, CR LF, or right after ETX (Yaohua/Keli tF=1: STX … ETX, no CR/LF, §4.2)
_COMMAND_END = re.compile(rb"\r\n|\r|\n|(?<=\x03)")
_SPEEDS = {getattr(termios, f"B{b}"): b for b in (300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)}


@dataclass(frozen=True)
class ScaleState:
    """What the indicator shows right now.  ``overload``: sims that can say so should (``grams``
    is then far beyond capacity anyway, so a sim that only range-checks shows overload too)."""

    grams: int
    motion: bool
    net: bool = False
    tare_g: int = 0
    overload: bool = False


def kg3(grams: int) -> str:
    """Grams as kg with 3 decimals, sign in front, no float: -12345 → "-12.345"."""
    sign = "-" if grams < 0 else ""
    return f"{sign}{abs(grams) // 1000}.{abs(grams) % 1000:03d}"


class Panel:
    """Zero and tare taken by the simulated indicator on top of what ``VirtualScale`` reports.

    ``ScaleState.grams`` is the load minus ``VirtualScale.tare_g``; this adds the indicator's own
    zero offset and tare, so ``Z``/``T`` commands change what the next frames show.
    """

    def __init__(self) -> None:
        self.zero_g = 0
        self.tare_g = 0

    def gross(self, s: ScaleState) -> int:
        return s.grams + s.tare_g - self.zero_g

    def shown(self, s: ScaleState) -> int:
        return s.grams - self.zero_g - self.tare_g

    def tare_total(self, s: ScaleState) -> int:
        return s.tare_g + self.tare_g

    def net(self, s: ScaleState) -> bool:
        return self.tare_total(s) != 0

    def zero(self, s: ScaleState) -> bool:
        """Zero when stable; False (not done) in motion."""
        if s.motion:
            return False
        self.zero_g += self.gross(s)
        return True

    def tare(self, s: ScaleState) -> bool:
        """Tare the current gross when stable; False (not done) in motion."""
        if s.motion:
            return False
        self.tare_g = self.gross(s) - s.tare_g
        return True


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


def even_parity_7e1(data: bytes) -> bytes:
    """Each byte's low 7 bits with bit 7 set to make the count of ones even (7E1 seen as 8N1)."""
    return bytes((b & 0x7F) | ((bin(b & 0x7F).count("1") & 1) << 7) for b in data)


def uart_resample(data: bytes, sent_baud: int, read_baud: int) -> bytes:
    """What an 8N1 UART at ``read_baud`` receives from ``data`` sent back-to-back at ``sent_baud``.

    The line idles high; the receiver waits for a falling edge, samples 8 data bits in their
    middles and the stop bit, and delivers the byte whether or not the stop bit was right (Linux
    does, without INPCK).  Equal speeds give ``data`` back.
    """
    if sent_baud == read_baud:
        return data
    bits = [level for b in data for level in (0, *((b >> i) & 1 for i in range(8)), 1)]
    duration = len(bits) / sent_baud

    def level(t: float) -> int:
        i = int(t * sent_baud)
        return bits[i] if 0 <= i < len(bits) else 1

    out = bytearray()
    step = 1 / (16 * read_baud)  # edge hunting resolution: 16× oversampling, as UARTs do
    t = 0.0
    while t < duration:
        if level(t) == 0:
            out.append(sum(level(t + (1.5 + i) / read_baud) << i for i in range(8)))
            t += 9.5 / read_baud  # to the middle of the stop bit, then hunt for the next edge
        else:
            t += step
    return bytes(out)


class VirtualScale:
    """A scale on a pty: ``path`` is the device a reader opens; ``set_load`` drives motion→stable.

    The slave fd stays open here so the pty lives while no reader is attached; master writes are
    non-blocking and a frame is dropped (counted) when nobody reads and the pty buffer is full.
    ``plugged`` is set while a pty exists; ``plugged_at`` is when the latest one appeared.
    """

    def __init__(self, protocol: str = "toledo", *, rate_hz: float = 10.0, link: str | None = None,
                 seed: int | None = None, baud: int | None = None, seven_e1: bool = False) -> None:
        if protocol not in SIMS:
            raise ValueError(f"unknown scale protocol {protocol!r}; simulated: {', '.join(sorted(SIMS))}")
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.protocol, self.rate_hz, self.link = protocol, rate_hz, link
        self.baud, self.seven_e1 = baud, seven_e1  # baud None: whatever the reader set
        self.sim = SIMS[protocol]()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._from_g = self._to_g = 0  # g: the load moves from one to the other while settling
        self._t0, self._settle_s, self._noise_g = 0.0, 0.0, 0
        self._drift_g_per_s, self._drift_t0, self._drift_base_g = 0.0, 0.0, 0.0
        self.tare_g = 0
        self.overload = False
        self.powered = True
        self.garbage_rate = 0.0  # probability per frame of a burst of random bytes before it
        self.corrupt_rate = 0.0  # probability per frame of one flipped bit in it
        self.frames_sent = 0
        self.frames_dropped = 0
        self.frames_corrupted = 0
        self.garbage_sent = 0  # bytes
        self.commands: list[bytes] = []  # every command line received, for tests
        self.plugged = threading.Event()
        self.plugged_at: float | None = None  # monotonic time the current pty appeared
        self.plugs = 0  # ptys created so far: 1 after start, +1 per unplug/replug
        self._stop = threading.Event()
        self._unplug_s: float | None = None  # a pending unplug request (seconds off the bus)
        self._outbox: list[bytes] = []  # raw bytes to inject before the next frame
        self._thread: threading.Thread | None = None
        self._fds: tuple[int, int] | None = None
        self._path: str | None = None

    @property
    def path(self) -> str:
        if self._path is None:
            raise RuntimeError("VirtualScale not started")
        return self._path

    # the world ------------------------------------------------------------------------------

    def set_load(self, grams: int, settle_s: float = 0.6, noise_g: int = 0) -> None:
        """Put ``grams`` on: motion frames approach it with ±noise for ``settle_s``, then exact."""
        with self._lock:
            now = time.monotonic()
            self._from_g = self._approach(now)
            self._to_g, self._t0, self._settle_s, self._noise_g = grams, now, settle_s, noise_g
            self._drift_base_g, self._drift_t0 = 0.0, now  # a new load: the creep starts again

    def remove_load(self, settle_s: float = 0.6) -> None:
        self.set_load(0, settle_s)

    @property
    def settled_at(self) -> float:
        """Monotonic time at which the current load stops moving (the sim's settle end)."""
        with self._lock:
            return self._t0 + self._settle_s

    def set_drift(self, g_per_s: float) -> None:
        """Creep from now on at ``g_per_s`` (keeping what has crept so far); 0 stops it."""
        with self._lock:
            now = time.monotonic()
            self._drift_base_g = self._drift(now)
            self._drift_t0, self._drift_g_per_s = now, g_per_s

    def state(self) -> ScaleState:
        """What the indicator shows now (gross minus tare)."""
        with self._lock:
            now = time.monotonic()
            motion = now - self._t0 < self._settle_s
            grams = self._approach(now) + round(self._drift(now))
            if motion and self._noise_g:
                grams += self._rng.randint(-self._noise_g, self._noise_g)
            overload = self.overload
        if overload:
            return ScaleState(OVERLOAD_G, False, overload=True)
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

    def _drift(self, now: float) -> float:
        return self._drift_base_g + self._drift_g_per_s * (now - self._drift_t0)

    # faults ---------------------------------------------------------------------------------

    def unplug(self, seconds: float) -> None:
        """Pull the adapter: the pty and the link vanish now; a new pty comes back after ``seconds``."""
        with self._lock:
            self._unplug_s = seconds
        self.plugged.clear()

    def power(self, on: bool) -> None:
        """Indicator on/off: off sends nothing and answers nothing; the adapter stays plugged."""
        self.powered = on

    def inject(self, data: bytes) -> None:
        """Raw bytes on the line before the next frame (line noise, a partial frame, …)."""
        with self._lock:
            self._outbox.append(data)

    def garbage(self, n: int) -> None:
        """``n`` random bytes on the line now."""
        self.inject(self._rng.randbytes(n))

    def partial_frame(self) -> None:
        """Only the tail of a frame, as a reader sees when it joins mid-frame."""
        frame = self.frame()
        self.inject(frame[self._rng.randint(1, max(1, len(frame) - 1)):])

    # the pty --------------------------------------------------------------------------------

    def start(self) -> None:
        self._plug()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"sim-scale-{self._path}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._unplug_now()

    def __enter__(self) -> VirtualScale:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR→NL: bytes pass unchanged
        os.set_blocking(master, False)
        self._fds = (master, slave)
        self._path = os.ttyname(slave)
        if self.link:
            tmp = f"{self.link}.{os.getpid()}.tmp"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(self._path, tmp)
            os.replace(tmp, self.link)  # atomic: a reader never sees the link missing
        self.plugged_at = time.monotonic()
        self.plugs += 1
        self.plugged.set()

    def _unplug_now(self) -> None:
        if self.link and os.path.islink(self.link) and os.readlink(self.link) == self._path:
            os.unlink(self.link)
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
            self._fds = None
        self.plugged.clear()

    def _reader_baud(self, master: int) -> int | None:
        try:
            return _SPEEDS.get(termios.tcgetattr(master)[5])
        except termios.error:
            return None

    def _wire(self, master: int, data: bytes) -> bytes:
        """``data`` as the reader's UART receives it (parity bit, speed mismatch)."""
        if self.seven_e1:
            data = even_parity_7e1(data)
        if self.baud is not None:
            read_baud = self._reader_baud(master)
            if read_baud is not None and read_baud != self.baud:
                data = uart_resample(data, self.baud, read_baud)
        return data

    def _send(self, master: int, data: bytes, *, frame: bool = True) -> None:
        if frame and self.corrupt_rate and self._rng.random() < self.corrupt_rate:
            i = self._rng.randrange(len(data))
            data = data[:i] + bytes([data[i] ^ (1 << self._rng.randrange(7))]) + data[i + 1:]  # one of the 7 data bits
            self.frames_corrupted += 1
        data = self._wire(master, data)
        try:
            written = os.write(master, data)
        except BlockingIOError:  # nobody reads and the pty buffer is full
            written = 0
        if not frame:
            return
        if written == len(data):
            self.frames_sent += 1
        else:  # a partial frame is on the wire: the reader must resync, as after line noise
            self.frames_dropped += 1

    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        next_frame = time.monotonic()
        pending = b""
        while not self._stop.is_set():
            with self._lock:
                unplug_s, self._unplug_s = self._unplug_s, None
            if unplug_s is not None:
                self._unplug_now()
                if self._stop.wait(unplug_s):
                    return
                self._plug()
                pending = b""
                next_frame = time.monotonic()
            assert self._fds is not None
            master = self._fds[0]
            # Wait for a command from the reader or the next frame time, whichever comes first.
            readable, _, _ = select.select([master], [], [], max(0.0, min(period, next_frame - time.monotonic())))
            if readable:
                with contextlib.suppress(BlockingIOError, OSError):  # nothing to read / no reader yet
                    pending += os.read(master, 4096)
                *lines, pending = _COMMAND_END.split(pending)
                for line in lines:
                    if line and self.powered:
                        self.commands.append(line)
                        reply = self.sim.answer(line, self.state())
                        if reply:
                            self._send(master, reply)
            if time.monotonic() >= next_frame:
                next_frame += period
                if next_frame < time.monotonic():  # fell behind (slow machine): do not burst
                    next_frame = time.monotonic() + period
                if not self.powered:
                    continue
                with self._lock:
                    outbox, self._outbox = self._outbox, []
                for data in outbox:
                    self.garbage_sent += len(data)
                    self._send(master, data, frame=False)
                if self.garbage_rate and self._rng.random() < self.garbage_rate:
                    noise = self._rng.randbytes(self._rng.randint(*GARBAGE_BURST))
                    self.garbage_sent += len(noise)
                    self._send(master, noise, frame=False)
                if self.sim.streaming:
                    self._send(master, self.frame())
