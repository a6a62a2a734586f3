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


class TickPipeline:
    """
    The live-state writes issued in one turn of the event loop (a burst of
    connects and subscribes), sent to Redis in one pipeline: one round trip
    for all of them instead of one each. Each caller gets its own reply, or
    its own error.
    """

    def __init__(self):
        self.waiting: list[tuple[tuple, asyncio.Future]] = []
        self.sending: set[asyncio.Task] = set()

    async def execute(self, *command) -> object:
        loop = asyncio.get_running_loop()
        if not self.waiting:
            loop.call_soon(self.send)
        future = loop.create_future()
        self.waiting.append((command, future))
        return await future

    def send(self) -> None:
        batch, self.waiting = self.waiting, []
        task = asyncio.get_running_loop().create_task(self.flush(batch))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    @staticmethod
    async def flush(batch: list[tuple[tuple, asyncio.Future]]) -> None:
        replies: list | None = None
        try:
            async with client().pipeline(transaction=False) as pipe:
                for command, _ in batch:
                    pipe.execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            replies = [exc] * len(batch)
        finally:
            for index, (_, future) in enumerate(batch):
                if future.done():
                    continue  # its caller was cancelled
                reply = None if replies is None else replies[index]
                if replies is None:
                    future.cancel()  # this task was cancelled (the loop is closing)
                elif isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)


tick_pipelines = PerLoop(TickPipeline)


async def in_tick_pipeline(*command) -> object:
    """Run one Redis command, sent with the others of this turn of the loop."""
    return await tick_pipelines.get().execute(*command)
