"""
Graceful shutdown, however daphne was started (PROTOCOL.md: `manage.py serve`
and a plain `daphne config.asgi:application` alike). On SIGTERM or SIGINT:
stop accepting connections where the server lets us (`serve` does), close
every socket with 4012 ("server restarting"; clients come back after a random
0 to 5 s), let each run its disconnect logic (presence leave, registry
removal), send the last batched presence diffs, remove this process's live
state, and stop the reactor within `grace` seconds. A second signal stops at
once. Sockets that arrive meanwhile are told 4012 as well.

Plain daphne installs Twisted's own handlers, which drop every socket (1006)
and run no disconnect logic; `ShutdownOnSignal`, the outermost ASGI
middleware, replaces them with this on the first request it sees.
"""

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Callable

from realtime.gateway import metrics
from realtime.gateway.hub import running_hub
from realtime.gateway.protocol import CLOSE_RESTART
from realtime.gateway.transport import log_capabilities
from realtime.gateway.upkeep import forget_this_process

logger = logging.getLogger("realtime.serve")

DEFAULT_GRACE_SECONDS = 8.0


def stop_reactor() -> None:
    from twisted.internet import reactor

    reactor.stop()


class GracefulShutdown:
    """SIGTERM/SIGINT: stop listening, close sockets with 4012, wait, stop."""

    def __init__(
        self,
        *,
        grace: float = DEFAULT_GRACE_SECONDS,
        stop_listening: Callable[[], None] | None = None,
        still_open: Callable[[], bool] | None = None,
        stop: Callable[[], None] = stop_reactor,
    ):
        self.grace = grace
        self.stop_listening = stop_listening
        # More of the server's own connections to wait for (daphne's, in serve).
        self.still_open = still_open
        self.stop = stop
        self.started = False

    def install(self) -> None:
        loop = asyncio.get_event_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.begin)

    def begin(self) -> None:
        if self.started:
            # A second signal: stop now.
            self.stop()
            return
        self.started = True
        logger.info("shutting down: closing sockets with 4012")
        asyncio.get_event_loop().create_task(self.run())

    async def run(self) -> None:
        hub = running_hub()
        if self.stop_listening is not None:
            self.stop_listening()
        deadline = time.monotonic() + self.grace
        try:
            if hub is not None:
                await hub.close_all(CLOSE_RESTART)
        except Exception:
            logger.exception("closing sockets failed")
        while time.monotonic() < deadline and (  # noqa: ASYNC110 (polls daphne state)
            (hub is not None and hub.connections)
            or (self.still_open is not None and self.still_open())
        ):
            await asyncio.sleep(0.05)
        try:
            # The sockets' presence leaves, batched, must go out before we do.
            if hub is not None:
                await hub.flush_all_presence()
            # Nothing of this process stays in the shared live state or the metrics' sums.
            await forget_this_process()
            metrics.process_exited()
        except Exception:
            logger.exception("cleaning up the live state failed")
        self.stop()


def reactor_running() -> bool:
    """Under daphne (its Twisted reactor runs), not under a test client or another server."""
    reactor = sys.modules.get("twisted.internet.reactor")
    return bool(reactor is not None and reactor.running)


# The process's shutdown, once installed (by `serve` at start, or by the
# middleware at the first request under another server).
installed: GracefulShutdown | None = None


def install_once(shutdown: GracefulShutdown) -> GracefulShutdown:
    """Install `shutdown` unless one is installed already; the one in force."""
    global installed
    if installed is None:
        installed = shutdown
        shutdown.install()
    return installed


class ShutdownOnSignal:
    """Outermost ASGI middleware: graceful shutdown under any daphne command."""

    def __init__(self, app, *, grace: float = DEFAULT_GRACE_SECONDS):
        self.app = app
        self.grace = grace

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and reactor_running():
            if installed is None:  # the first request under a plain daphne
                log_capabilities()
            shutdown = install_once(GracefulShutdown(grace=self.grace))
            if shutdown.started and scope["type"] == "websocket":
                await receive()  # websocket.connect
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": CLOSE_RESTART})
                return None
        return await self.app(scope, receive, send)
