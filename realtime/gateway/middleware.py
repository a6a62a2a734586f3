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
from django.conf import settings

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


class HandshakeLimit:
    """
    At most `REALTIME["MAX_PENDING_HANDSHAKES"]` handshakes in progress per
    process (from the upgrade request to the socket's `welcome` or refusal);
    beyond, HTTP 503 at once. An overloaded process that took every handshake
    on would finish none in time: a reconnect storm's clients time out, retry and
    queue again (the bench's storm saw a restarted process answer /healthz only
    after 48 s). Refused ones retry with backoff and jitter like any failed
    connection (PROTOCOL.md).
    """

    def __init__(self, inner):
        self.inner = inner
        self.pending = 0

    async def __call__(self, scope, receive, send):
        if self.pending >= settings.REALTIME["MAX_PENDING_HANDSHAKES"]:
            metrics.handshakes.labels("busy").inc()
            await refuse_handshake(send, 503, "Service Unavailable")
            return None
        self.pending += 1
        done = False

        def handshake_done() -> None:
            nonlocal done
            if not done:
                done = True
                self.pending -= 1

        scope["realtime.handshake_done"] = handshake_done
        try:
            return await self.inner(scope, receive, send)
        finally:
            handshake_done()


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
