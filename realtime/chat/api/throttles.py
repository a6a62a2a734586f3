"""
Write throttles (PROTOCOL.md, abuse limits): writes by users (sign-up,
creating rooms, posting messages over REST, adding or removing members,
marking notifications read) at most REALTIME_REST_WRITE_RATE per user, per
client address when anonymous; 429 with `Retry-After`. Staff publishing
through `POST /api/publish/` is not throttled. The site's forms use the same
throttle (`write_refused`), so a page and the API share one budget.
"""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from realtime.gateway import outages

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class WriteThrottle(SimpleRateThrottle):
    """Unsafe requests of one user (or anonymous address) share one rate."""

    scope = "write"

    def allow_request(self, request, view):
        try:
            allowed = super().allow_request(request, view)
        except Exception as exc:
            # The cache (Redis) is down: let writes through rather than fail them all.
            outages.cache.failed(exc)
            return True
        outages.cache.succeeded()
        return allowed

    def get_rate(self):
        return settings.REALTIME["REST_WRITE_RATE"]

    def get_cache_key(self, request, view):
        if request.method in SAFE_METHODS:
            return None
        user = getattr(request, "user", None)
        ident = user.pk if user is not None and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def write_refused(request) -> int | None:
    """For a form view: None when the write may go ahead, else seconds to wait."""
    throttle = WriteThrottle()
    if throttle.allow_request(request, None):
        return None
    return max(1, round(throttle.wait() or 1))
