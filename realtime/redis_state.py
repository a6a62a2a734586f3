"""
Redis for the live state shared by server processes (connection registry,
presence). One asyncio client per event loop; keys under REALTIME_REDIS_PREFIX.

Nothing here is on the delivery path, and nothing is written per heartbeat
but one key per process.
"""

import asyncio

import redis.asyncio as aioredis
from django.conf import settings

_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}


def redis_enabled() -> bool:
    return settings.REALTIME["STATE_BACKEND"] == "redis"


def client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    redis = _clients.get(loop)
    if redis is None:
        for stale in [other for other in _clients if other.is_closed()]:
            del _clients[stale]
        redis = _clients[loop] = aioredis.from_url(
            settings.REDIS_URL,
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=3,
            health_check_interval=10,
            retry_on_timeout=True,
        )
    return redis


def key(*parts: str) -> str:
    return settings.REALTIME["REDIS_PREFIX"] + ":".join(parts)
