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

# Connections per process for the live state: a burst of joins and leaves waits
# for a free one (up to POOL_TIMEOUT_SECONDS) instead of failing at once.
POOL_SIZE = 32
POOL_TIMEOUT_SECONDS = 10


def new_client() -> aioredis.Redis:
    options = {
        "decode_responses": True,
        "socket_timeout": 5,
        "socket_connect_timeout": 3,
        "health_check_interval": 10,
        "retry_on_timeout": True,
        "max_connections": POOL_SIZE,
    }
    if settings.REDIS_SENTINELS:
        sentinel = Sentinel(settings.REDIS_SENTINELS, socket_timeout=3)
        return sentinel.master_for(settings.REDIS_SENTINEL_MASTER, **options)
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.REDIS_URL, timeout=POOL_TIMEOUT_SECONDS, **options
    )
    return aioredis.Redis(connection_pool=pool)


clients = PerLoop(new_client)


def client() -> aioredis.Redis:
    """The running loop's Redis client."""
    return clients.get()


def key(*parts: str) -> str:
    return settings.REALTIME["REDIS_PREFIX"] + ":".join(parts)
