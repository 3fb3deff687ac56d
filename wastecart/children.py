"""Helper processes that die with the process that started them, however it dies.

A ``wastecart demo`` (or a test) that is killed with SIGKILL runs no clean-up code, so its private
mosquitto would keep running, holding its port and its files.  Linux's parent-death signal
(``prctl(PR_SET_PDEATHSIG)``, set in the child between fork and exec) makes the kernel send the
child a signal when its parent goes away.  The kernel means the parent *thread*: so the signal is
asked for only when the child is started from the main thread, which lives as long as the
process (a child started from a worker thread would die with that thread).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_libc = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: nothing to look up in the child


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen`` that makes the child get ``sig`` when we die
    (SIGTERM: mosquitto saves its sessions and exits); None off the main thread (see above)."""
    if threading.current_thread() is not threading.main_thread():
        log.debug("a helper started from thread %s will not be stopped if this process is killed",
                  threading.current_thread().name)
        return None
    parent = os.getpid()
    prctl = _libc.prctl

    def set_signal() -> None:  # in the child, after fork: no locks, no allocation beyond the call
        if prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            os._exit(127)  # cannot promise to die with the parent: do not start at all
        if os.getppid() != parent:  # the parent died between fork and prctl: the signal will never come
            os.kill(os.getpid(), sig)

    return set_signal
