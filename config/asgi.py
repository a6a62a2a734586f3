"""
ASGI entry point: HTTP through Django, WebSockets at /ws/ through the gateway.

As in Channels' own sample project, Django's application is built before any
consumer is imported, so the app registry is ready.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from realtime.gateway.middleware import OutageGuard  # noqa: E402
from realtime.gateway.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # A foreign or missing Origin gets HTTP 403 before any consumer runs.
        "websocket": OriginValidator(
            OutageGuard(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
            [*settings.ALLOWED_HOSTS, *settings.REALTIME["ALLOWED_ORIGINS"]],
        ),
    }
)
