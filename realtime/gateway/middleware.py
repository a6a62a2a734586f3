"""
ASGI middleware of the WebSocket route. `OutageGuard`: when the database is
down, the handshake's session and user lookup fails; the client then gets
HTTP 503 (it retries like any failed connection, PROTOCOL.md `unavailable`),
not a 500 with a traceback per attempt.
"""

from realtime.gateway import outages
from realtime.gateway.transport import refuse_handshake, socket_of


class OutageGuard:
    """Wraps the WebSocket stack (inside the origin check, around the session)."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        try:
            return await self.inner(scope, receive, send)
        except outages.DATABASE_DOWN as exc:
            wire = socket_of(send)
            if wire is not None and not wire.is_connecting():
                raise  # after the handshake: the consumer's to answer
            outages.database.failed(exc)
            await refuse_handshake(send, 503, "Service Unavailable")
