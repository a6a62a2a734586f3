"""
The registry of live connections: what `GET/DELETE /api/connections/`, the
admin's live connections page and the dashboard list.

One interface, two stores, chosen by `REALTIME["REGISTRY_BACKEND"]`:
`LocalRegistry` for one process (the default) and `RedisRegistry` shared by
every process when REDIS_URL is set. With Redis, each process keeps its
sockets in one hash and renews one `alive` key every few seconds (no database
write, nothing per socket heartbeat); a process that stops renewing it (killed
with SIGKILL) is reaped by the survivors (`realtime.gateway.upkeep`).
"""

import asyncio
import json
import logging
import os
import socket
from collections import Counter
from contextlib import asynccontextmanager

from asgiref.sync import async_to_sync
from django.conf import settings

from realtime.gateway.backends import PerLoop, backend
from realtime.gateway.redis_state import client, in_tick_pipeline, key

logger = logging.getLogger(__name__)

SERVER_NAME = f"{socket.gethostname()}:{os.getpid()}"

# This process's own sockets: connection id -> entry (both stores keep it).
LIVE: dict[str, dict] = {}
# How many of them each user (or anonymous address) holds: the cap check.
HELD: Counter[str] = Counter()


def entry_public(entry: dict) -> dict:
    return dict(
        entry, topics=sorted(entry.get("topics", ())), present=sorted(entry.get("present", ()))
    )


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
        # The topics where this socket counts in presence (subscribed with it).
        "present": set(),
    }


def cap_field(entry: dict) -> str:
    """What a socket counts against: its user, or its client address when anonymous."""
    if entry.get("user_id") is not None:
        return f"u:{entry['user_id']}"
    address = (entry.get("client") or "").rsplit(":", 1)[0]
    return f"a:{address}"


def cap_limit(field: str) -> int:
    config = settings.REALTIME
    if field.startswith("u:"):
        return config["MAX_CONNECTIONS_PER_USER"]
    return config["MAX_ANONYMOUS_PER_ADDRESS"]


def live_add(entry: dict) -> None:
    """Record a socket of this process (and count it under its cap)."""
    if LIVE.get(entry["connection_id"]) is None:
        HELD[cap_field(entry)] += 1
    LIVE[entry["connection_id"]] = entry


def live_remove(connection_id: str) -> None:
    entry = LIVE.pop(connection_id, None)
    if entry is not None:
        field = cap_field(entry)
        HELD[field] -= 1
        if HELD[field] <= 0:
            del HELD[field]


class Registry:
    """What every registry store does; this process's sockets are always in LIVE."""

    shared = False  # whether other processes see this store

    async def register(self, entry: dict) -> bool:
        """
        Admit and record a new socket: False (nothing recorded) when its user,
        or its address for an anonymous socket, is at its connection cap.
        """
        field = cap_field(entry)
        if HELD[field] >= cap_limit(field):
            return False
        live_add(entry)
        return True

    async def update(self, connection_id: str) -> None:
        """Store the entry's current topics."""

    async def unregister(self, connection_id: str) -> None:
        live_remove(connection_id)

    async def entries(self) -> list[dict]:
        """Every live connection this store knows of."""
        return [entry_public(entry) for entry in list(LIVE.values())]

    async def beat(self) -> None:
        """Tell the other processes that this one lives."""

    async def reconcile(self) -> tuple[int, int]:
        """Make the store hold exactly this process's live sockets: (added, removed)."""
        return 0, 0

    async def forget_process(self) -> None:
        """Remove this process from the store (it is exiting, its sockets closed)."""

    async def dead_servers(self) -> list[str]:
        return []

    async def reap(self, server: str) -> list[dict] | None:
        """Remove a dead process's entries (once, by one survivor): the entries, or None."""
        return None


class LocalRegistry(Registry):
    """The sockets of this process only (one server process)."""


# Admit a socket under its cap, counting every live process's sockets of the
# same user (or anonymous address) and reserving one in this process's counts.
# KEYS: the servers set, this process's caps hash. ARGV: field, limit, caps key
# prefix, alive key prefix, this server's name.
ADMIT_SCRIPT = """
local total = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
for _, server in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if server ~= ARGV[5] and redis.call('EXISTS', ARGV[4] .. server) == 1 then
    total = total + tonumber(redis.call('HGET', ARGV[3] .. server, ARGV[1]) or '0')
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return 1
"""
RELEASE_SCRIPT = """
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
"""


# How long a recount waits for admissions in flight before it skips a beat.
RECOUNT_WAIT_SECONDS = 1


class CountGate:
    """
    Admissions and releases of one process run side by side; a reconcile of
    its registry entries and caps waits until none is in flight and holds new
    ones back while it writes, so it never writes over what changed under it.
    """

    def __init__(self):
        self.changing = 0
        self.open = asyncio.Event()  # cleared while a recount waits and writes
        self.open.set()
        self.quiet = asyncio.Event()  # set while nothing is changing
        self.quiet.set()

    async def until_open(self) -> None:
        while not self.open.is_set():  # another recount may close it again first
            await self.open.wait()

    @asynccontextmanager
    async def change(self):
        await self.until_open()
        self.changing += 1
        self.quiet.clear()
        try:
            yield
        finally:
            # No await here: a cancelled admission still gives its place back.
            self.changing -= 1
            if self.changing == 0:
                self.quiet.set()

    @asynccontextmanager
    async def recount(self):
        """Yield True once quiet; False (skip this beat) if it stayed busy."""
        await self.until_open()
        self.open.clear()
        try:
            try:
                async with asyncio.timeout(RECOUNT_WAIT_SECONDS):
                    await self.quiet.wait()
                quiet = True
            except TimeoutError:
                quiet = False
            yield quiet
        finally:
            self.open.set()


class RedisRegistry(Registry):
    """Every process's sockets, in Redis: a hash per process and an `alive` key each."""

    shared = True

    def __init__(self):
        # Sockets whose last write failed (Redis down, the pool exhausted): the
        # next reconcile writes them again.
        self.dirty: set[str] = set()
        self.gates = PerLoop(CountGate)

    def hash_key(self, server: str = SERVER_NAME) -> str:
        return key("conns", server)

    def caps_key(self, server: str = SERVER_NAME) -> str:
        """A process's connection counts per user and per anonymous address."""
        return key("caps", server)

    async def register(self, entry: dict) -> bool:
        async with self.gates.get().change():
            try:
                admitted = await self.admit(cap_field(entry))
            except Exception:
                # Redis is down: admit (an outage must not lock people out); the
                # reconcile after it records the socket and recounts.
                live_add(entry)
                self.dirty.add(entry["connection_id"])
                raise
            if not admitted:
                return False
            live_add(entry)
        await self.update(entry["connection_id"])
        return True

    async def admit(self, field: str) -> bool:
        return await in_tick_pipeline(
            "EVAL",
            ADMIT_SCRIPT,
            2,
            key("servers"),
            self.caps_key(),
            field,
            cap_limit(field),
            key("caps", ""),
            key("alive", ""),
            SERVER_NAME,
        )

    async def update(self, connection_id: str) -> None:
        entry = LIVE.get(connection_id)
        if entry is None:
            return
        self.dirty.add(connection_id)
        await in_tick_pipeline(
            "HSET", self.hash_key(), connection_id, json.dumps(entry_public(entry))
        )
        self.dirty.discard(connection_id)

    async def unregister(self, connection_id: str) -> None:
        async with self.gates.get().change():
            entry = LIVE.get(connection_id)
            await super().unregister(connection_id)
            self.dirty.discard(connection_id)
            if entry is None:
                return  # never admitted
            await asyncio.gather(
                in_tick_pipeline("HDEL", self.hash_key(), connection_id),
                in_tick_pipeline("EVAL", RELEASE_SCRIPT, 1, self.caps_key(), cap_field(entry)),
            )

    async def entries(self) -> list[dict]:
        redis = client()
        found = []
        for server in sorted(await redis.smembers(key("servers"))):
            if not await redis.exists(key("alive", server)):
                continue  # dead: the survivors' upkeep reaps it
            found.extend(
                json.loads(v) for v in (await redis.hgetall(self.hash_key(server))).values()
            )
        return found

    async def beat(self) -> None:
        redis = client()
        await redis.sadd(key("servers"), SERVER_NAME)
        await redis.set(key("alive", SERVER_NAME), "1", ex=settings.REALTIME["ALIVE_SECONDS"])

    async def reconcile(self) -> tuple[int, int]:
        # With admissions and releases paused: the live sockets read here are
        # the ones the hash and the counts hold when this writes them.
        async with self.gates.get().recount() as quiet:
            if not quiet:
                return 0, 0  # admissions never paused: the next beat reconciles
            redis = client()
            live = {cid: entry_public(entry) for cid, entry in list(LIVE.items())}
            stored = set(await redis.hkeys(self.hash_key()))
            removed = stored - live.keys()
            added = (live.keys() - stored) | (self.dirty & live.keys())
            if removed:
                await redis.hdel(self.hash_key(), *removed)
            if added:
                await redis.hset(
                    self.hash_key(), mapping={cid: json.dumps(live[cid]) for cid in added}
                )
            self.dirty -= added | removed
            # The counts behind the caps, written again from the live sockets.
            async with redis.pipeline(transaction=True) as pipe:
                pipe.delete(self.caps_key())
                if HELD:
                    pipe.hset(self.caps_key(), mapping=dict(HELD))
                await pipe.execute()
        return len(added), len(removed)

    async def forget_process(self) -> None:
        redis = client()
        await redis.delete(self.hash_key(), self.caps_key(), key("alive", SERVER_NAME))
        await redis.srem(key("servers"), SERVER_NAME)

    async def dead_servers(self) -> list[str]:
        redis = client()
        return [
            server
            for server in await redis.smembers(key("servers"))
            if server != SERVER_NAME and not await redis.exists(key("alive", server))
        ]

    async def reap(self, server: str) -> list[dict] | None:
        redis = client()
        if not await redis.set(key("reaping", server), SERVER_NAME, nx=True, ex=60):
            return None
        entries = [json.loads(v) for v in (await redis.hgetall(self.hash_key(server))).values()]
        logger.warning("reaping %d connections of dead server %s", len(entries), server)
        await redis.delete(self.hash_key(server), self.caps_key(server))
        await redis.srem(key("servers"), server)
        return entries


def get_registry() -> Registry:
    """The store `REALTIME["REGISTRY_BACKEND"]` names."""
    return backend("REGISTRY_BACKEND")


def connections_list() -> list[dict]:
    """Every live connection on every process, oldest first (sync, for views and the admin)."""
    entries = async_to_sync(get_registry().entries)()
    return sorted(entries, key=lambda e: (e["connected_since"], e["connection_id"]))
