"""
The Origin rule of the WebSocket handshake (PROTOCOL.md, "Endpoint and
handshake"), as strict as Django's own CSRF origin check: an Origin is the
site's own when its scheme is the site's (`https` with DJANGO_HTTPS, else
`http`), its host is one of ALLOWED_HOSTS written out in full, and its port
is the port of the request's own Host header (none when it has none); or it
is exactly one of REALTIME_ALLOWED_ORIGINS. Wildcards (`*`, `.example.com`)
never extend to WebSocket origins. Anything else is refused with HTTP 403
before any application code runs.
"""

from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.core.exceptions import ImproperlyConfigured

from realtime.gateway import metrics

DEFAULT_PORTS = {"http": 80, "https": 443}


def exact_hosts(allowed_hosts: list[str]) -> set[str]:
    """The entries of ALLOWED_HOSTS that name one host (no wildcard), lowercased."""
    return {h.lower() for h in allowed_hosts if h and h != "*" and not h.startswith(".")}


def split_host(value: str) -> tuple[str, int | None] | None:
    """`host[:port]` (IPv6 in brackets) as (host, port); None when malformed."""
    try:
        parsed = urlsplit(f"//{value}")
        return (parsed.hostname or "").lower(), parsed.port
    except ValueError:
        return None


class OriginRule:
    """Which Origins a handshake may carry."""

    def __init__(self, *, allowed_hosts: list[str], allowed_origins: list[str], https: bool):
        self.hosts = exact_hosts(allowed_hosts)
        self.origins = {origin.rstrip("/").lower() for origin in allowed_origins}
        self.scheme = "https" if https else "http"
        if not self.hosts and not self.origins:
            raise ImproperlyConfigured(
                "No WebSocket origin can be the site's own: DJANGO_ALLOWED_HOSTS has only "
                f"wildcards ({', '.join(allowed_hosts) or 'nothing'}), which never extend to "
                "WebSocket origins. List the site's host names in DJANGO_ALLOWED_HOSTS, or "
                "its full origins in REALTIME_ALLOWED_ORIGINS (https://chat.example.com)."
            )

    def allows(self, origin: str | None, host_header: str | None) -> bool:
        if not origin or origin == "null":
            return False
        origin = origin.lower()
        if origin in self.origins:
            return True
        try:
            parsed = urlsplit(origin)
            origin_port = parsed.port
        except ValueError:
            return False
        if parsed.scheme != self.scheme or parsed.path or parsed.query or parsed.fragment:
            return False
        if parsed.username or parsed.password or parsed.hostname not in self.hosts:
            return False
        request = split_host(host_header or "")
        if request is None or not request[0]:
            return False  # no Host header (HTTP/1.1 requires one): nothing to compare with
        default = DEFAULT_PORTS[self.scheme]
        return (origin_port or default) == (request[1] or default)


class OriginCheck:
    """ASGI middleware for the WebSocket route: refuse a foreign Origin with 403."""

    def __init__(self, inner, rule: OriginRule):
        self.inner = inner
        self.rule = rule

    async def __call__(self, scope, receive, send):
        # Decided in a function of its own: this frame lives as long as the
        # socket, and nothing it decided from is kept for that long.
        if scope["type"] == "websocket" and not self.allows(scope):
            metrics.handshakes.labels("origin_refused").inc()
            return await WebsocketDenier()(scope, receive, send)
        return await self.inner(scope, receive, send)

    def allows(self, scope) -> bool:
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin1") or None
        host = headers.get(b"host", b"").decode("latin1") or None
        return self.rule.allows(origin, host)
