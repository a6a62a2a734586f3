"""
The gateway's way into the database from async code: Channels'
`database_sync_to_async` (old connections closed around each call), counted
in `realtime_database_calls_in_flight` so an operator sees the queue.
"""

from channels.db import database_sync_to_async

from realtime.gateway import metrics


async def in_database(func, /, *args, **kwargs):
    """`func(*args, **kwargs)` on the database thread."""
    metrics.database_calls.inc()
    try:
        return await database_sync_to_async(func)(*args, **kwargs)
    finally:
        metrics.database_calls.dec()
