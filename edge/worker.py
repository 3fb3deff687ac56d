"""The one pattern for a long-lived thread: start; wait for work or stop; stop with a bounded join.

Every thread of the cart and the gateway that lives as long as its process (the uplink drain, the
workflow loop, the scale reader, the camera, the scanner, the actuator's watchdog, the gateway's
ingest worker and forwarder) is a ``Worker``.  Its body does one pass of work and returns how long
to wait before the next (``None``: until woken); ``wake()`` cuts a wait short; ``stop()`` ends the
wait, joins for at most ``join_s`` and logs if the thread is still running.  The loop has the
thread's one guard: a bug in a pass is logged with its traceback and counted in ``errors``, and
the next pass runs after ``retry_s`` — a stuck thread is worse than a logged one.

Stdlib only, so that the gateway may import it beside ``edge.wire`` and ``edge.mqtt``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Body = Callable[[], float | None]


class Worker:
    """A daemon thread running ``body`` until ``stop()``; ``body`` returns the wait before its next pass."""

    def __init__(self, name: str, body: Body, *, join_s: float = 10.0, retry_s: float = 1.0,
                 on_stop: Callable[[], None] | None = None) -> None:
        self.name = name
        self.errors = 0  # passes that raised (each logged with its traceback)
        self._body = body
        self._join_s = join_s  # s stop() waits for the thread to end before logging and going on
        self._retry_s = retry_s  # s before the next pass after one that raised
        self._on_stop = on_stop  # unblocks a body that waits on something else (a queue, a socket)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` was called: a long pass checks it between units of work."""
        return self._stop.is_set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Run the next pass now (a wake during a pass runs one more pass right after it).  Cheap when
        already woken (no lock): paho's thread calls it on every PUBACK of a draining cart."""
        if not self._wake.is_set():
            self._wake.set()

    def sleep(self, seconds: float) -> bool:
        """Wait inside a pass; True if the worker is stopping (the pass should return)."""
        return self._stop.wait(seconds)

    def stop(self) -> bool:
        """Ask the thread to end and join it for at most ``join_s``; False (and logged) if it did not."""
        self._stop.set()
        self._wake.set()
        if self._on_stop is not None:
            self._on_stop()
        if not self._thread.is_alive() or self._thread is threading.current_thread():
            return True
        self._thread.join(self._join_s)
        if self._thread.is_alive():
            log.error("thread %s did not stop within %s s", self.name, self._join_s)
            return False
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the pass: a wake during it is not lost
            try:
                wait = self._body()
            except Exception:  # the thread's one guard: log, count, carry on
                self.errors += 1
                log.exception("thread %s: pass failed", self.name)
                wait = self._retry_s
            if self._stop.is_set():
                break
            if wait is None or wait > 0:
                self._wake.wait(wait)
