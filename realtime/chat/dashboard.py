"""Live statistics for the staff dashboard (`dashboard` topic)."""

from datetime import timedelta

from django.utils import timezone

from realtime.chat.models import Message
from realtime.gateway.registry import connections_list

RATE_WINDOW_SECONDS = 10


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
