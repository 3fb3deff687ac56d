"""``ConsoleServer``: the console's ASGI app on uvicorn, in one thread of the gateway process.

The socket is bound here, in the caller's thread, so a port already taken is one line at start
(``GatewayError``), not a traceback in a thread; port 0 takes a free one (``.url`` tells).  The
console reads through its own SQLite connection (``ConsoleDb``) and changes only through the
gateway's store (acknowledging an alert).  ``stop()`` ends the live streams, then uvicorn.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from gateway.console import action_pages, command_pages, export_pages, ledger_pages
from gateway.console.fleet import ConsoleDb
from gateway.console.hooks import GatewayHooks
from gateway.console.keys import metrics_token, session_secret
from gateway.console.live import FleetHub
from gateway.console.settings import ConsoleConfig
from gateway.console.web import Console, build_app
from gateway.errors import GatewayError
from gateway.store import GatewayRepository

if TYPE_CHECKING:
    from gateway.metrics import MetricsSource

log = logging.getLogger(__name__)

START_WAIT_S = 10.0  # s: uvicorn is serving in well under a second; beyond this something is wrong
STOP_WAIT_S = 10.0  # s: open requests get this long (graceful 2 s + the loop winding down)
GRACEFUL_S = 2  # s: uvicorn waits this long for open requests before cancelling them (live streams end first)


class ConsoleServer:
    """``start()`` / ``stop()`` / ``url``; ``metrics``: an ASGI app served at /metrics, or None."""

    def __init__(self, store: Callable[[], GatewayRepository], config: ConsoleConfig, db_path: Path,
                 hooks: GatewayHooks, metrics: ASGIApp | None = None) -> None:
        if config.port is None:
            raise GatewayError("console: no port configured")
        self.config = config
        self._store = store
        self._db_path = db_path
        self._hooks = hooks
        self._metrics = metrics
        self._db: ConsoleDb | None = None
        self._hub: FleetHub | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.url = ""

    def start(self) -> None:
        host, port = self.config.host, self.config.port
        secret = session_secret(self._hooks.data_dir)
        token = metrics_token(self.config.metrics_token_file)
        try:
            sock = socket.create_server((host, port or 0), reuse_port=False)
            # Accepted sockets inherit it: without it a small answer on a kept-alive connection waits
            # ~40 ms for the client's delayed ACK (asyncio sets it only on sockets it creates itself).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise GatewayError(f"console: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                               "free the port or pick another with --port / console.port") from exc
        self._sock = sock
        self._db = ConsoleDb(self._db_path)
        self._hub = FleetHub(self._db, self.config.sse_clients)
        self._hub.start()
        console = Console(self._store, self._db, self._hub, self.config, self._hooks)
        started = threading.Event()  # set by the app's lifespan: uvicorn's loop is up, the socket listens already
        app = build_app(console, secret, self._metrics, token, started.set, page_routes(console))
        self._server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on",
                                                     access_log=False,
                                                     timeout_graceful_shutdown=GRACEFUL_S))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="console",
                                        daemon=True)
        self._thread.start()
        bound = sock.getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.url = f"http://{shown}:{bound[1]}/"
        if not started.wait(START_WAIT_S):
            self.stop()
            raise GatewayError(f"console: the web server did not start within {START_WAIT_S:g} s")
        log.info("console: serving on %s", self.url)

    def stop(self) -> None:
        if self._hub is not None:
            self._hub.stop()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)
            if self._thread.is_alive():
                log.warning("console: the web server did not stop within %g s", STOP_WAIT_S)
        if self._sock is not None:
            self._sock.close()
        if self._db is not None:
            self._db.close()
        self._server = self._thread = self._sock = None
        self._db = self._hub = None


def page_routes(console: Console) -> list[BaseRoute]:
    """The ledger, export, quarantine / dead-letter / audit and command pages (issue 15)."""
    return [*ledger_pages.routes(console), *export_pages.routes(console), *action_pages.routes(console),
            *command_pages.routes(console)]


def metrics_app(gateway_app: MetricsSource) -> ASGIApp:
    """``gateway.metrics.make_metrics_app(gateway_app)``, mounted at /metrics."""
    from gateway.metrics import make_metrics_app

    made: ASGIApp = make_metrics_app(gateway_app)
    return made
