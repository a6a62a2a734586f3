"""
Graceful shutdown of a daphne server: SIGTERM or SIGINT first stops accepting
connections, closes every socket with 4012 ("server restarting"; clients come
back after a random 0 to 5 s), lets each run its disconnect logic (presence
leave, registry removal), sends the last batched presence diffs, and stops
the reactor within `grace` seconds. A second signal stops at once.
"""

import asyncio
import logging
import signal
import time

from realtime.gateway.hub import running_hub
from realtime.gateway.protocol import CLOSE_RESTART
from realtime.gateway.upkeep import forget_this_process

logger = logging.getLogger("realtime.serve")


class GracefulShutdown:
    """SIGTERM/SIGINT: stop listening, close sockets with 4012, wait, stop."""

    def __init__(self, server, reactor, *, grace: float):
        self.server = server
        self.reactor = reactor
        self.grace = grace
        self.started = False

    def install(self) -> None:
        loop = asyncio.get_event_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.begin)

    def begin(self) -> None:
        if self.started:
            # A second signal: stop now.
            self.reactor.stop()
            return
        self.started = True
        logger.info("shutting down: closing sockets with 4012")
        asyncio.get_event_loop().create_task(self.run())

    async def run(self) -> None:
        hub = running_hub()
        for port in self.server.ports:
            port.stopListening()
        deadline = time.monotonic() + self.grace
        try:
            if hub is not None:
                await hub.close_all(CLOSE_RESTART)
        except Exception:
            logger.exception("closing sockets failed")
        while time.monotonic() < deadline and (  # noqa: ASYNC110 (polls daphne state)
            (hub is not None and hub.connections)
            or any(not d.get("disconnected") for d in self.server.connections.values())
        ):
            await asyncio.sleep(0.05)
        try:
            # The sockets' presence leaves, batched, must go out before we do.
            if hub is not None:
                await hub.flush_all_presence()
            # Nothing of this process stays in the shared live state.
            await forget_this_process()
        except Exception:
            logger.exception("cleaning up the live state failed")
        self.reactor.stop()
