"""
Upkeep of the live state shared by processes: while this process has sockets,
it renews its `alive` key, rewrites its state when Redis lost it (a restart),
and reaps processes that stopped renewing theirs (their connections leave the
registry, their presence leaves every topic with a `presence_diff`).
"""

import asyncio
import logging

from django.conf import settings

from realtime.gateway import protocol
from realtime.gateway.control import send_topic_frame
from realtime.gateway.presence import get_presence
from realtime.gateway.registry import LIVE, get_registry
from realtime.gateway.topics import parse_topic

logger = logging.getLogger(__name__)


def presence_places(entry: dict):
    """(topic, user brief) for each topic with presence that a registry entry is on."""
    if entry.get("user_id") is None:
        return
    brief = {"id": entry["user_id"], "username": entry["username"]}
    for topic in entry.get("topics", ()):
        if parse_topic(topic).presence:
            yield topic, brief


async def presence_leave_all(entry: dict) -> None:
    """A socket's presence leaves every topic it was on (diffs sent where it was the last)."""
    for topic, brief in presence_places(entry):
        if await get_presence().leave(topic, brief["id"], entry["connection_id"]):
            await send_topic_frame(topic, protocol.presence_diff_frame(topic, [], [brief]))


async def presence_restore(entries: list[dict]) -> None:
    for entry in entries:
        for topic, brief in presence_places(entry):
            await get_presence().restore(topic, brief, entry["connection_id"])


async def upkeep_once(*, reap: bool) -> None:
    registry = get_registry()
    if await registry.beat():
        await presence_restore(list(LIVE.values()))
    if reap:
        for server in await registry.dead_servers():
            for entry in await registry.reap(server) or ():
                await presence_leave_all(entry)


async def keep_live_state() -> None:
    """Run while this process has sockets (the hub starts and stops it)."""
    if not get_registry().shared:
        return
    beat_seconds = settings.REALTIME["ALIVE_SECONDS"] / 6
    beats = 0
    while True:
        try:
            await upkeep_once(reap=beats % 2 == 0)
            beats += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("live state upkeep failed (Redis down?); retrying", exc_info=True)
        await asyncio.sleep(beat_seconds)
