"""GET /healthz: the database and the channel layer, each checked for real."""

import asyncio
import logging
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse

logger = logging.getLogger(__name__)


async def channel_layer_check() -> None:
    """Send a message to a fresh channel and read it back (fails when Redis is down)."""
    layer = get_channel_layer()
    channel = await layer.new_channel(prefix="healthz.")
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz.ping", "token": token})
    message = await asyncio.wait_for(layer.receive(channel), timeout=2)
    if message.get("token") != token:
        raise RuntimeError("channel layer returned another message")


def database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def healthz(request):
    """200 when the database and the channel layer answer; 503 naming what failed (no details)."""
    checks = {}
    for name, check in (
        ("database", sync_to_async(database_check)),
        ("channel_layer", channel_layer_check),
    ):
        try:
            await asyncio.wait_for(check(), timeout=3)
            checks[name] = "ok"
        except Exception as exc:
            # The details (addresses, ports) are the operator's, in the log, not the caller's.
            logger.warning("healthz: %s failed: %s: %s", name, type(exc).__name__, exc)
            checks[name] = "error"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )
