"""A private mosquitto on a free loopback port, for the demo and the tests.

The demo and the test suite never touch a broker already running on the machine: they start
their own, so a test can stop it to inject an outage and a user's broker is left alone.
By default it is the open loopback broker of ``CONF``; ``for_pki`` / ``from_config`` start it from
a configuration ``wastecart broker config`` wrote (TLS, client certificates, CRL, ACL) instead.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from edge import files
from wastecart import broker_config, children
from wastecart.broker_config import OPERATIONAL
from wastecart.errors import SetupError

# How long to wait for mosquitto to accept connections before calling the start failed (s).
START_TIMEOUT_S = 10.0
# How long to wait for mosquitto to log that it re-read its configuration after a SIGHUP (s).
RELOAD_TIMEOUT_S = 10.0
RELOADED = "Reloading config."  # mosquitto 2.0's log line (type `information`) for a SIGHUP it acted on

# `user`: the private broker runs as whoever started it.  As root, mosquitto would otherwise switch
# to the `mosquitto` user, and a change of user clears the signal that makes it die with us.
CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
user {user}
""" + OPERATIONAL + """\
log_dest file {data}/mosquitto.log
log_type error
log_type warning
log_type notice
"""


def _log_file(conf: Path) -> Path | None:
    """The file a mosquitto configuration logs to (``log_dest file PATH``), if any."""
    try:
        lines = files.read_text(conf, "broker configuration").splitlines()
    except files.UnreadableFile as exc:
        raise SetupError(str(exc)) from exc
    found = [line.split(None, 2)[2] for line in lines if line.startswith("log_dest file ")]
    return Path(found[-1].strip()) if found else None


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
    """A mosquitto process we own: ``start()``, ``stop()`` (SIGTERM, keeps sessions), ``kill()``,
    ``reload()`` (SIGHUP: mosquitto 2.0 re-reads the ACL, CRL and certificates)."""

    def __init__(self, port: int | None = None, data_dir: Path | None = None, *, conf: Path | None = None,
                 plain_port: int | None = None) -> None:
        """``conf``: a configuration file written for us (its TLS listener on ``port``, its
        plaintext one on ``plain_port``); without it, ``CONF`` is written into ``data_dir``."""
        if conf is not None and port is None:
            raise SetupError(f"{conf}: say which port its TLS listener uses")
        self.port = port or free_port()
        self.plain_port = plain_port
        self.conf = conf
        self._tmp = None if data_dir or conf else tempfile.TemporaryDirectory(prefix="wc-broker-")
        self.data_dir = data_dir or (conf.parent if conf else Path(self._tmp.name))  # type: ignore[union-attr]
        self.log_file = _log_file(conf) if conf else None
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_config(cls, out: Path, port: int, plain_port: int | None = None) -> PrivateBroker:
        """A broker (not started) on the folder ``wastecart broker config --out OUT --port PORT`` wrote."""
        return cls(port, conf=out / "mosquitto.conf", plain_port=plain_port)

    @classmethod
    def for_pki(cls, pki_dir: Path, out: Path, *, port: int | None = None, plain: bool = False) -> PrivateBroker:
        """Write a configuration for ``pki_dir`` into ``out``, listening on loopback only, and return
        the broker (not started).  ``out`` must be reachable by the ``mosquitto`` user when we are root."""
        port = port or free_port()
        plain_port = free_port() if plain else None
        broker_config.write(pki_dir, out, port, plain_port=plain_port, bind="127.0.0.1")
        return cls.from_config(out, port, plain_port)

    @property
    def tls(self) -> bool:
        return self.conf is not None

    @property
    def url(self) -> str:
        # "localhost", not 127.0.0.1: the name a TLS client checks in the broker's certificate
        return f"mqtts://localhost:{self.port}" if self.tls else f"mqtt://127.0.0.1:{self.port}"

    @property
    def plain_url(self) -> str | None:
        return f"mqtt://127.0.0.1:{self.plain_port}" if self.plain_port else None

    def start(self) -> PrivateBroker:
        if self.proc is not None and self.proc.poll() is None:
            raise SetupError(f"mosquitto is running already (pid {self.proc.pid})")
        conf = self.conf
        account = None
        if conf is None:
            conf = self.data_dir / "mosquitto.conf"
            conf.write_text(CONF.format(port=self.port, data=self.data_dir, user=pwd.getpwuid(os.geteuid()).pw_name))
        else:  # a deployed configuration: start as the broker's user at once (same reason as in CONF)
            account = broker_config.broker_account()
        # Own session: a Ctrl-C in the terminal must not kill the broker before the parts using it
        # have stopped in order; we stop it last.  And it dies with us however we die (kill -9
        # included): a demo that is killed must not leave a mosquitto holding its port.
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True,
                                     user=account[0] if account else None, group=account[1] if account else None,
                                     extra_groups=[] if account else None, preexec_fn=children.die_with_parent())
        try:
            for port in (self.port, self.plain_port):
                if port:
                    self._wait_listening(port)
        except SetupError:
            self.stop()
            raise
        return self

    def restart(self) -> PrivateBroker:
        """SIGTERM (sessions kept) and start again: every connection is dropped and re-checked."""
        self.stop()
        return self.start()

    def reload(self) -> None:
        """SIGHUP, then wait until mosquitto logged that it re-read its configuration, so a client
        connecting after this returns meets the new ACL and CRL."""
        if self.proc is None or self.proc.poll() is not None:
            raise SetupError("mosquitto is not running: nothing to reload")
        if self.log_file is None:
            raise SetupError("this broker logs to no file in which to confirm a reload; start it from a "
                             "`wastecart broker config` folder (PrivateBroker.from_config)")
        seen = self._reloads()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while self._reloads() <= seen:
            if time.monotonic() > deadline:
                raise SetupError(f"mosquitto did not log a reload within {RELOAD_TIMEOUT_S} s ({self.log_file})")
            # mosquitto gives no other signal that it reloaded: wait on its exit meanwhile.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.02)
            if self.proc.poll() is not None:
                raise SetupError(f"mosquitto exited on reload (code {self.proc.returncode}); see {self.log_file}")

    def _reloads(self) -> int:
        assert self.log_file is not None
        try:
            return self.log_file.read_text("utf-8", errors="replace").count(RELOADED)
        except FileNotFoundError:
            return 0

    def _wait_listening(self, port: int) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
                raise SetupError(f"mosquitto exited at start (code {self.proc.returncode}): {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                # Not listening yet (mosquitto gives no other readiness signal): wait on its exit.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=0.05)
        raise SetupError(f"mosquitto did not listen on 127.0.0.1:{port} within {START_TIMEOUT_S} s")

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
