"""
Live-state writes issued in one turn of the event loop go to Redis in one
pipeline (issue 12: registry and presence writes batched per tick): each
caller gets its own reply, and one failing command fails only its caller.
"""

import asyncio

import pytest
import redis.exceptions

pytestmark = pytest.mark.redis


@pytest.fixture
def live_state_redis(settings, require_redis, redis_prefix):
    settings.REDIS_URL = require_redis
    settings.REALTIME = {**settings.REALTIME, "REDIS_PREFIX": redis_prefix}
    return redis_prefix


async def test_a_burst_of_commands_is_answered_each_in_one_round_trip(
    live_state_redis, monkeypatch
):
    from realtime.gateway import redis_state

    sent = []
    real_flush = redis_state.TickPipeline.flush

    async def counting(batch):
        sent.append(len(batch))
        await real_flush(batch)

    monkeypatch.setattr(redis_state.TickPipeline, "flush", staticmethod(counting))
    try:
        prefix = live_state_redis
        await redis_state.in_tick_pipeline("SET", f"{prefix}text", "not a number")
        replies = await asyncio.gather(
            *(redis_state.in_tick_pipeline("INCRBY", f"{prefix}n{i % 3}", i) for i in range(30)),
            redis_state.in_tick_pipeline("INCR", f"{prefix}text"),
            redis_state.in_tick_pipeline("GET", f"{prefix}n0"),
            return_exceptions=True,
        )
    finally:
        await redis_state.client().aclose()
    assert sent == [1, 32]
    running = {0: 0, 1: 0, 2: 0}
    for i, reply in enumerate(replies[:30]):
        running[i % 3] += i
        assert reply == running[i % 3]
    assert isinstance(replies[30], redis.exceptions.ResponseError)
    assert replies[31] == str(running[0])


async def test_an_unreachable_redis_fails_every_caller_of_the_tick(settings, redis_prefix):
    from realtime.gateway import redis_state

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.REALTIME = {**settings.REALTIME, "REDIS_PREFIX": redis_prefix}
    replies = await asyncio.gather(
        *(redis_state.in_tick_pipeline("GET", f"{redis_prefix}x") for _ in range(3)),
        return_exceptions=True,
    )
    await redis_state.client().aclose()
    assert all(isinstance(reply, redis.exceptions.ConnectionError) for reply in replies), replies
