"""
Redis for the live state shared by server processes (connection registry,
presence). One asyncio client per event loop; keys under REALTIME_REDIS_PREFIX.

Nothing here is on the delivery path, and nothing is written per heartbeat
but one key per process.
"""

import asyncio

import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.sentinel import Sentinel

_clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}


def redis_enabled() -> bool:
    return settings.REALTIME["STATE_BACKEND"] == "redis"


def client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    redis = _clients.get(loop)
    if redis is None:
        for stale in [other for other in _clients if other.is_closed()]:
            del _clients[stale]
        options = {
            "decode_responses": True,
            "socket_timeout": 5,
            "socket_connect_timeout": 3,
            "health_check_interval": 10,
            "retry_on_timeout": True,
        }
        if settings.REDIS_SENTINELS:
            sentinel = Sentinel(settings.REDIS_SENTINELS, socket_timeout=3)
            redis = sentinel.master_for(settings.REDIS_SENTINEL_MASTER, **options)
        else:
            redis = aioredis.from_url(settings.REDIS_URL, **options)
        _clients[loop] = redis
    return redis


def key(*parts: str) -> str:
    return settings.REALTIME["REDIS_PREFIX"] + ":".join(parts)
