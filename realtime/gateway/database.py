"""
The gateway's way into the database from async code.

Channels' `database_sync_to_async` runs every call of a process on one thread
(Channels never enters a `ThreadSensitiveContext`), so handshakes, subscribes,
publishes and session checks all queued behind each other. Here they run on a
bounded pool of `REALTIME["DATABASE_WORKERS"]` threads, each with its own
connection (Django's connections are per thread), with Channels' clean-up of
old connections around each call. Every transaction stays inside one call.
The calls in flight are counted in `realtime_database_calls_in_flight`.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

from channels.db import DatabaseSyncToAsync
from django.conf import settings

from realtime.gateway import metrics, outages

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def database_pool() -> ThreadPoolExecutor:
    """This process's database threads (made on first use)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=settings.REALTIME["DATABASE_WORKERS"],
                thread_name_prefix="realtime-db",
            )
        return _pool


async def in_database(func, /, *args, **kwargs):
    """`func(*args, **kwargs)` on one of the database threads."""
    metrics.database_calls.inc()
    try:
        call = DatabaseSyncToAsync(func, thread_sensitive=False, executor=database_pool())
        result = await call(*args, **kwargs)
        outages.database.succeeded()  # an outage, if one was on, is over
        return result
    finally:
        metrics.database_calls.dec()
