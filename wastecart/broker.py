"""A private mosquitto on a free loopback port, for the demo and the tests.

The demo and the test suite never touch a broker already running on the machine: they start
their own, so a test can stop it to inject an outage and a user's broker is left alone.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from wastecart.errors import SetupError

# How long to wait for mosquitto to accept connections before calling the start failed (s).
START_TIMEOUT_S = 10.0

CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
persistence true
persistence_location {data}/
autosave_interval 30
# Acks and commands for a cart that is offline wait here; the default (1000) drops silently.
max_queued_messages 100000
max_inflight_messages 100
log_dest file {data}/mosquitto.log
log_type error
log_type warning
log_type notice
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)
    if not found:
        raise SetupError("mosquitto is not installed: run `sudo apt-get install -y mosquitto` "
                         "(or `make demo`, which installs it when run as root)")
    return found


class PrivateBroker:
    """A mosquitto process we own: ``start()``, ``stop()`` (SIGTERM, keeps sessions), ``kill()``."""

    def __init__(self, port: int | None = None, data_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="wc-broker-")
        self.data_dir = data_dir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> PrivateBroker:
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(CONF.format(port=self.port, data=self.data_dir))
        # Own session: a Ctrl-C in the terminal must not kill the broker before the parts using it
        # have stopped in order; we stop it last.
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        try:
            self._wait_listening()
        except SetupError:
            self.stop()
            raise
        return self

    def _wait_listening(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
                raise SetupError(f"mosquitto exited at start (code {self.proc.returncode}): {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                # Not listening yet (mosquitto gives no other readiness signal): wait on its exit.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=0.05)
        raise SetupError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {START_TIMEOUT_S} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the broker loses its in-memory queues, as after a power cut."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> PrivateBroker:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
