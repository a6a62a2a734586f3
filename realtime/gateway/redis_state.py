"""
Redis for the live state shared by server processes (connection registry,
presence). One asyncio client per event loop; keys under REALTIME_REDIS_PREFIX.

Nothing here is on the delivery path, and nothing is written per heartbeat
but one key per process.
"""

import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.sentinel import Sentinel

from realtime.gateway.backends import PerLoop


def new_client() -> aioredis.Redis:
    options = {
        "decode_responses": True,
        "socket_timeout": 5,
        "socket_connect_timeout": 3,
        "health_check_interval": 10,
        "retry_on_timeout": True,
    }
    if settings.REDIS_SENTINELS:
        sentinel = Sentinel(settings.REDIS_SENTINELS, socket_timeout=3)
        return sentinel.master_for(settings.REDIS_SENTINEL_MASTER, **options)
    return aioredis.from_url(settings.REDIS_URL, **options)


clients = PerLoop(new_client)


def client() -> aioredis.Redis:
    """The running loop's Redis client."""
    return clients.get()


def key(*parts: str) -> str:
    return settings.REALTIME["REDIS_PREFIX"] + ":".join(parts)
