"""
ASGI middleware of the WebSocket route.

- `AuthMiddlewareStack`: Channels' cookie and session middleware, and the user
  of the session as Django's own views see it (SECRET_KEY_FALLBACKS honoured,
  the session never flushed by a WebSocket handshake).
- `OutageGuard`: when the database is down, the handshake's session and user
  lookup fails; the client then gets HTTP 503 (it retries like any failed
  connection, PROTOCOL.md `unavailable`), not a 500 with a traceback per attempt.
"""

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware, SessionMiddleware

from realtime.gateway import metrics, outages
from realtime.gateway.database import in_database
from realtime.gateway.sessions import user_of_session
from realtime.gateway.transport import refuse_handshake, socket_of


class SessionUserMiddleware(AuthMiddleware):
    """`scope["user"]`: the user the session signs in, checked like Django's views do."""

    async def resolve_scope(self, scope):
        scope["user"]._wrapped = await in_database(user_of_session, scope["session"])


def AuthMiddlewareStack(inner):
    return CookieMiddleware(SessionMiddleware(SessionUserMiddleware(inner)))


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
            metrics.handshakes.labels("unavailable").inc()
            await refuse_handshake(send, 503, "Service Unavailable")
