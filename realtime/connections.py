"""
Live connections: the registry behind `GET/DELETE /api/connections/`, the
admin's live connections page and the dashboard.

Two stores with one interface: `LocalRegistry` for one process (the default)
and `RedisRegistry` shared by every process when REDIS_URL is set. With Redis,
each process keeps its sockets in one hash and renews one `alive` key every few
seconds (no database write, nothing per socket heartbeat); a process that
stops renewing it (killed with SIGKILL) is reaped by the survivors: its
connections leave the registry and their presence within a minute.

Closing goes through the channel layer's control group, so it reaches the
socket wherever it is held.
"""

import asyncio
import json
import logging
import os
import socket

from asgiref.sync import async_to_sync
from django.conf import settings

from realtime.redis_state import client, key, redis_enabled

logger = logging.getLogger(__name__)

SERVER_NAME = f"{socket.gethostname()}:{os.getpid()}"

# This process's own sockets: connection id -> entry (both stores keep it).
LIVE: dict[str, dict] = {}


def entry_public(entry: dict) -> dict:
    return dict(entry, topics=sorted(entry.get("topics", ())))


class LocalRegistry:
    """The sockets of this process only (one server process)."""

    async def register(self, entry: dict) -> None:
        LIVE[entry["connection_id"]] = entry

    async def update(self, connection_id: str) -> None:
        return None

    async def unregister(self, connection_id: str) -> None:
        LIVE.pop(connection_id, None)

    async def entries(self) -> list[dict]:
        return [entry_public(entry) for entry in list(LIVE.values())]

    async def beat(self) -> None:
        return None


class RedisRegistry:
    """Every process's sockets, in Redis: a hash per process and an `alive` key each."""

    def hash_key(self, server: str = SERVER_NAME) -> str:
        return key("conns", server)

    async def register(self, entry: dict) -> None:
        LIVE[entry["connection_id"]] = entry
        await self.update(entry["connection_id"])

    async def update(self, connection_id: str) -> None:
        entry = LIVE.get(connection_id)
        if entry is not None:
            await client().hset(self.hash_key(), connection_id, json.dumps(entry_public(entry)))

    async def unregister(self, connection_id: str) -> None:
        LIVE.pop(connection_id, None)
        await client().hdel(self.hash_key(), connection_id)

    async def entries(self) -> list[dict]:
        redis = client()
        found = []
        for server in sorted(await redis.smembers(key("servers"))):
            if not await redis.exists(key("alive", server)):
                await self.reap(server)
                continue
            found.extend(
                json.loads(v) for v in (await redis.hgetall(self.hash_key(server))).values()
            )
        return found

    async def beat(self) -> None:
        """Renew this process's `alive` key; rewrite its state if Redis forgot it."""
        redis = client()
        await redis.sadd(key("servers"), SERVER_NAME)
        renewed = await redis.expire(key("alive", SERVER_NAME), settings.REALTIME["ALIVE_SECONDS"])
        if renewed:
            return
        await redis.set(key("alive", SERVER_NAME), "1", ex=settings.REALTIME["ALIVE_SECONDS"])
        if LIVE:
            logger.warning(
                "live state missing in Redis (restart?); rewriting %d sockets", len(LIVE)
            )
            await redis.hset(
                self.hash_key(),
                mapping={cid: json.dumps(entry_public(e)) for cid, e in list(LIVE.items())},
            )
            await presence_restore(list(LIVE.values()))

    async def reap_dead(self) -> None:
        redis = client()
        for server in await redis.smembers(key("servers")):
            if server != SERVER_NAME and not await redis.exists(key("alive", server)):
                await self.reap(server)

    async def reap(self, server: str) -> None:
        """Remove a dead process's sockets and their presence (once, by one survivor)."""
        redis = client()
        if not await redis.set(key("reaping", server), SERVER_NAME, nx=True, ex=60):
            return
        entries = [json.loads(v) for v in (await redis.hgetall(self.hash_key(server))).values()]
        logger.warning("reaping %d connections of dead server %s", len(entries), server)
        for entry in entries:
            await presence_leave_all(entry)
        await redis.delete(self.hash_key(server))
        await redis.srem(key("servers"), server)


def presence_places(entry: dict):
    """(topic, user brief) for each topic with presence that a registry entry is on."""
    from realtime.topics import parse_topic

    if entry.get("user_id") is None:
        return
    brief = {"id": entry["user_id"], "username": entry["username"]}
    for topic in entry.get("topics", ()):
        if parse_topic(topic).presence:
            yield topic, brief


async def presence_leave_all(entry: dict) -> None:
    """A socket's presence leaves every topic it was on (diffs sent where it was the last)."""
    from realtime.delivery import send_topic_frame
    from realtime.presence import get_presence
    from realtime.protocol import presence_diff_frame

    for topic, brief in presence_places(entry):
        if await get_presence().leave(topic, brief["id"], entry["connection_id"]):
            await send_topic_frame(topic, presence_diff_frame(topic, [], [brief]))


async def presence_restore(entries: list[dict]) -> None:
    from realtime.presence import get_presence

    for entry in entries:
        for topic, brief in presence_places(entry):
            await get_presence().restore(topic, brief, entry["connection_id"])


_local = LocalRegistry()
_redis = RedisRegistry()


def get_registry() -> LocalRegistry | RedisRegistry:
    return _redis if redis_enabled() else _local


async def keep_registry() -> None:
    """While this process has sockets: renew its `alive` key, reap dead processes."""
    registry = get_registry()
    if not isinstance(registry, RedisRegistry):
        return
    beat_seconds = settings.REALTIME["ALIVE_SECONDS"] / 6
    beats = 0
    while True:
        try:
            await registry.beat()
            if beats % 2 == 0:
                await registry.reap_dead()
            beats += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("live state upkeep failed (Redis down?); retrying", exc_info=True)
        await asyncio.sleep(beat_seconds)


def new_entry(
    *,
    connection_id: str,
    user_id: int | None,
    username: str | None,
    connected_since: str,
    client_address: str | None,
    user_agent: str | None,
) -> dict:
    return {
        "connection_id": connection_id,
        "user_id": user_id,
        "username": username,
        "server": SERVER_NAME,
        "client": client_address,
        "user_agent": user_agent,
        "connected_since": connected_since,
        "topics": set(),
    }


# Sync API, for views, the admin and management commands ----------------------


def connections_list() -> list[dict]:
    """Every live connection on every process, oldest first."""
    entries = async_to_sync(get_registry().entries)()
    return sorted(entries, key=lambda e: (e["connected_since"], e["connection_id"]))


def connection_disconnect(connection_id: str, *, code: int = 4000) -> bool:
    """Close that socket (4000 by default); False when no such connection is live."""
    from realtime.delivery import send_control

    if not any(e["connection_id"] == connection_id for e in connections_list()):
        return False
    async_to_sync(send_control)({"action": "close", "connection_id": connection_id, "code": code})
    return True


def user_connections_disconnect(*, user_id: int, code: int = 4000) -> int:
    """Close every socket of a user on every process; how many there were."""
    from realtime.delivery import send_control

    count = sum(1 for e in connections_list() if e["user_id"] == user_id)
    async_to_sync(send_control)({"action": "close", "user_id": user_id, "code": code})
    return count


def user_sessions_verify(*, user_id: int) -> None:
    """Each socket of the user re-checks its session and closes with 4401 if it ended."""
    from realtime.delivery import send_control

    async_to_sync(send_control)({"action": "verify_session", "user_id": user_id})


def topic_revoke(*, topic: str) -> None:
    """Each socket on `topic` re-checks that its user may still subscribe."""
    from realtime.delivery import send_control

    async_to_sync(send_control)({"action": "recheck_topic", "topic": topic})
