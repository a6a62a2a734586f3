"""Live statistics for the staff dashboard (`dashboard` topic)."""

import logging
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

from realtime.chat.models import Message
from realtime.gateway.registry import connections_list

RATE_WINDOW_SECONDS = 10

logger = logging.getLogger(__name__)


def dashboard_stats() -> dict:
    """Connections, users online and messages per second (over the last 10 s)."""
    live = connections_list()
    since = timezone.now() - timedelta(seconds=RATE_WINDOW_SECONDS)
    recent = Message.objects.filter(created_at__gte=since).count()
    return {
        "kind": "stats",
        "connections": len(live),
        "users_online": len({c["user_id"] for c in live if c["user_id"] is not None}),
        "messages_per_second": round(recent / RATE_WINDOW_SECONDS, 2),
    }


# ---- the last five minutes, for a dashboard that opens now -------------------
#
# Each process that has dashboard subscribers computes a sample every second
# (DashboardTopic.feed) and keeps it in Django's cache under its second:
# `dashboard:sample:<unix second>`, expiring after the window. With several
# processes the cache is Redis (settings.CACHES when REDIS_URL is set), so
# every process reads the samples of all of them; two processes writing the
# same second write the same cluster-wide counts (connections and users come
# from the shared registry, messages from the database), so the last one wins
# harmlessly. With one process the local-memory cache is that process's own,
# which is all there is. No key grows without bound and no list is rewritten
# under concurrent writers, so nothing needs a lock.

HISTORY_SECONDS = 300
SAMPLE_KEY = "dashboard:sample:{second}"
SAMPLE_FIELDS = ("connections", "users_online", "messages_per_second", "delivery_lag_ms")


def dashboard_sample_record(stats: dict, *, at: datetime | None = None) -> None:
    """Keep this second's chart values for `dashboard_history` (best effort)."""
    at = at or timezone.now()
    sample = {"ts": at.isoformat(), **{key: stats.get(key) for key in SAMPLE_FIELDS}}
    try:
        cache.set(
            SAMPLE_KEY.format(second=int(at.timestamp())), sample, timeout=HISTORY_SECONDS + 10
        )
    except Exception:  # a cache outage must not stop the live charts
        logger.warning("could not keep a dashboard sample", exc_info=True)


def dashboard_history(*, now: datetime | None = None) -> list[dict]:
    """The samples of the last five minutes, oldest first (seconds nobody watched are gaps)."""
    end = int((now or timezone.now()).timestamp())
    keys = [SAMPLE_KEY.format(second=second) for second in range(end - HISTORY_SECONDS, end + 1)]
    found = cache.get_many(keys)
    return [found[key] for key in keys if key in found]
