"""
ASGI entry point: HTTP through Django, WebSockets at /ws/ through the gateway.

As in Channels' own sample project, Django's application is built before any
consumer is imported, so the app registry is ready.
"""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from django.conf import settings  # noqa: E402

# The event loop and the database threads share one interpreter lock: a thread
# back from a database round trip waits for the loop to let go of it, by
# default up to 5 ms. A shorter switch interval measured 784 against 737 acked
# publishes/s and 53,257 against 43,316 deliveries/s (docs/performance.md).
sys.setswitchinterval(settings.REALTIME["SWITCH_INTERVAL_MS"] / 1000)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from realtime.gateway.middleware import (  # noqa: E402
    AuthMiddlewareStack,
    HandshakeLimit,
    OutageGuard,
)
from realtime.gateway.origins import OriginCheck, OriginRule  # noqa: E402
from realtime.gateway.routing import websocket_urlpatterns  # noqa: E402
from realtime.gateway.shutdown import ShutdownOnSignal  # noqa: E402

# Graceful shutdown on SIGTERM however daphne is started (manage.py serve or plain daphne).
application = ShutdownOnSignal(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            # A foreign, missing or wildcard-only Origin gets HTTP 403 before any
            # consumer runs (and no site-own origin at all refuses to start).
            "websocket": OriginCheck(
                HandshakeLimit(OutageGuard(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))),
                OriginRule(
                    allowed_hosts=settings.ALLOWED_HOSTS,
                    allowed_origins=settings.REALTIME["ALLOWED_ORIGINS"],
                    https=settings.HTTPS,
                ),
            ),
        }
    )
)
