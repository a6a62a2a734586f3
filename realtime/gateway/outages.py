"""
Outages of what the gateway depends on (the database, the broker): told apart
from bugs, answered with PROTOCOL.md's `unavailable`, and logged once per
outage rather than once per request.
"""

import logging
import time

from django.db import InterfaceError, OperationalError

from realtime.gateway import metrics

logger = logging.getLogger(__name__)

# Database errors that mean "cannot reach it now", not "this query is wrong".
DATABASE_DOWN = (OperationalError, InterfaceError)
RETRY_AFTER_MS = 1000
# A socket's own check (its session, its rights) that met an outage runs again after this.
RECHECK_AFTER_OUTAGE_SECONDS = 5.0


class Outage:
    """One dependency's outage log: a line when it fails, one more when it is back."""

    def __init__(self, what: str, *, quiet_seconds: float = 60.0, clock=time.monotonic):
        self.what = what
        self.quiet_seconds = quiet_seconds
        self.clock = clock
        self.down_since: float | None = None
        self.last_logged: float | None = None
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        """Count a failure; log it when it starts an outage (or a quiet period passed)."""
        now = self.clock()
        self.failures += 1
        metrics.backend_failures.labels(self.what).inc()
        if self.down_since is None:
            self.down_since = now
        if self.last_logged is None or now - self.last_logged >= self.quiet_seconds:
            self.last_logged = now
            logger.error(
                "%s unavailable (%d failed requests so far in this outage): %s: %s",
                self.what,
                self.failures,
                type(exc).__name__,
                str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "",
            )

    def succeeded(self) -> None:
        """A request got through: if an outage was on, it is over."""
        if self.down_since is None:
            return
        logger.warning(
            "%s back after %.1f s (%d requests failed meanwhile)",
            self.what,
            self.clock() - self.down_since,
            self.failures,
        )
        self.down_since = self.last_logged = None
        self.failures = 0


database = Outage("database")
# Redis for the live state (registry, presence, caps).
redis = Outage("redis")
# The channel layer (Redis when REDIS_URL is set): broadcasts and frames to other processes.
channel_layer = Outage("channel_layer")
# Django's cache (Redis when REDIS_URL is set): throttles and lockouts fail open.
cache = Outage("cache")
