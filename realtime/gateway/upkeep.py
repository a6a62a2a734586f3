"""
Upkeep of the live state shared by processes. While this process has
sockets, every beat (a sixth of REALTIME_ALIVE_SECONDS) it renews its `alive`
key, makes what the shared store holds for it equal to its live sockets
(registry entries and presence places: whatever a Redis outage, a full pool or
a restart made it miss is written, whatever it failed to remove is removed,
with the presence diffs that follow), and reaps processes that stopped
renewing theirs. A graceful shutdown removes this process's own keys.
"""

import asyncio
import logging
import socket

from django.conf import settings

from realtime.gateway import metrics, protocol
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
    for topic in entry.get("present", ()):
        if parse_topic(topic).presence:
            yield topic, brief


async def presence_leave(topic: str, user_id: int, connection_id: str) -> None:
    """A socket's presence leaves a topic; a diff goes out where it was the user's last."""
    brief = await get_presence().leave(topic, user_id, connection_id)
    if brief is not None:
        await send_topic_frame(topic, protocol.presence_diff_frame(topic, [], [brief]))


async def presence_leave_all(entry: dict) -> None:
    """A socket's presence leaves every topic it was on."""
    for topic, brief in presence_places(entry):
        await presence_leave(topic, brief["id"], entry["connection_id"])


async def reconcile_presence() -> tuple[int, int]:
    """Make the shared presence hold this process's live places: (added, removed)."""
    presence = get_presence()
    held = await presence.held()
    if held is None:
        return 0, 0
    wanted = {
        (topic, brief["id"], entry["connection_id"]): brief
        for entry in list(LIVE.values())
        for topic, brief in presence_places(entry)
    }
    missing = wanted.keys() - held
    extra = held - wanted.keys()
    for topic, user_id, connection_id in extra:
        await presence_leave(topic, user_id, connection_id)
    for place in missing:
        topic, _, connection_id = place
        if await presence.join(topic, wanted[place], connection_id):
            await send_topic_frame(topic, protocol.presence_diff_frame(topic, [wanted[place]], []))
    return len(missing), len(extra)


async def upkeep_once(*, reap: bool) -> None:
    registry = get_registry()
    await registry.beat()
    registry_added, registry_removed = await registry.reconcile()
    presence_added, presence_removed = await reconcile_presence()
    if registry_added or registry_removed or presence_added or presence_removed:
        logger.info(
            "live state reconciled: registry +%d -%d, presence +%d -%d",
            registry_added,
            registry_removed,
            presence_added,
            presence_removed,
        )
    if reap:
        for server in await registry.dead_servers():
            entries = await registry.reap(server)
            if entries is None:
                continue  # another survivor reaps it
            for entry in entries:
                await presence_leave_all(entry)
            await get_presence().forget_process(server)
            metrics.reaped.inc()
            host, _, pid = server.rpartition(":")
            if host == socket.gethostname() and pid.isdigit():
                metrics.process_exited(int(pid))  # its live gauges leave the sums


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
        except Exception as exc:
            logger.warning("live state upkeep failed (Redis down?): %r; retrying", exc)
        await asyncio.sleep(beat_seconds)


async def forget_this_process() -> None:
    """At a graceful exit, after the sockets closed: remove this process's own keys."""
    presence = get_presence()
    # Whatever a disconnect that did not finish in time left behind, with its diffs.
    for topic, user_id, connection_id in await presence.held() or ():
        await presence_leave(topic, user_id, connection_id)
    await presence.forget_process()
    await get_registry().forget_process()
