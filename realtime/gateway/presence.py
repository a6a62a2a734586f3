"""
Presence: which users are on a topic. A user joins with their first socket and
leaves with their last one, however many tabs (and server processes) they use.

One interface, two stores, chosen by `REALTIME["PRESENCE_BACKEND"]`:
`LocalPresence` for one process (the default), `RedisPresence` shared by every
process when REDIS_URL is set. `PresenceBatch` gathers a process's changes
into one `presence_diff` per topic per tick.
"""

import json
from collections import defaultdict

from realtime.gateway.backends import backend
from realtime.gateway.redis_state import client, in_tick_pipeline, key
from realtime.gateway.registry import SERVER_NAME


class Presence:
    """What every presence store does."""

    async def join(self, topic: str, user: dict, connection_id: str) -> bool:
        """Record the socket; True when it is the user's first on the topic."""
        raise NotImplementedError

    async def leave(self, topic: str, user_id: int, connection_id: str) -> dict | None:
        """Forget the socket; the user's brief when it was their last on the topic."""
        raise NotImplementedError

    async def held(self) -> set[tuple[str, int, str]] | None:
        """
        The places this process holds in a shared store, as (topic, user id,
        connection id); None for a store only this process sees (it cannot
        drift from the sockets).
        """
        return None

    async def forget_process(self, server: str = SERVER_NAME) -> None:
        """Forget a process's record of its places (exiting, or reaped when dead)."""

    async def members(self, topic: str) -> list[dict]:
        """The users on the topic, by username."""
        raise NotImplementedError


class LocalPresence(Presence):
    """Topic -> user id -> (user brief, connection ids), kept in this process."""

    def __init__(self):
        self.topics: dict[str, dict[int, tuple[dict, set[str]]]] = defaultdict(dict)

    async def join(self, topic: str, user: dict, connection_id: str) -> bool:
        entry = self.topics[topic].get(user["id"])
        if entry is None:
            self.topics[topic][user["id"]] = (user, {connection_id})
            return True
        entry[1].add(connection_id)
        return False

    async def leave(self, topic: str, user_id: int, connection_id: str) -> dict | None:
        users = self.topics.get(topic)
        if not users or user_id not in users:
            return None
        brief, connections = users[user_id]
        connections.discard(connection_id)
        if connections:
            return None
        del users[user_id]
        if not users:
            del self.topics[topic]
        return brief

    async def members(self, topic: str) -> list[dict]:
        users = self.topics.get(topic, {})
        return sorted((brief for brief, _ in users.values()), key=lambda u: u["username"])


# Fields are "<user id>|<connection id>"; the scripts count a user's fields
# atomically, and keep this process's own set of the places it holds
# (KEYS[2]), so that upkeep can make Redis equal to its live sockets.
JOIN_SCRIPT = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[4])
local n = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #ARGV[3]) == ARGV[3] then n = n + 1 end
end
return n
"""
LEAVE_SCRIPT = """
redis.call('SREM', KEYS[2], ARGV[3])
local brief = redis.call('HGET', KEYS[1], ARGV[1])
if not brief then return {-1, false} end
redis.call('HDEL', KEYS[1], ARGV[1])
local n = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #ARGV[2]) == ARGV[2] then n = n + 1 end
end
return {n, brief}
"""
PLACE_SEPARATOR = "\x1f"  # no topic name contains it


class RedisPresence(Presence):
    """Presence in a Redis hash per topic, the same answer on every process."""

    def own_key(self) -> str:
        """This process's set of the places it holds."""
        return key("presence-of", SERVER_NAME)

    async def join(self, topic: str, user: dict, connection_id: str) -> bool:
        field = f"{user['id']}|{connection_id}"
        count = await in_tick_pipeline(
            "EVAL",
            JOIN_SCRIPT,
            2,
            key("presence", topic),
            self.own_key(),
            field,
            json.dumps(user),
            f"{user['id']}|",
            topic + PLACE_SEPARATOR + field,
        )
        return count == 1

    async def leave(self, topic: str, user_id: int, connection_id: str) -> dict | None:
        field = f"{user_id}|{connection_id}"
        remaining, brief = await in_tick_pipeline(
            "EVAL",
            LEAVE_SCRIPT,
            2,
            key("presence", topic),
            self.own_key(),
            field,
            f"{user_id}|",
            topic + PLACE_SEPARATOR + field,
        )
        return json.loads(brief) if remaining == 0 else None

    async def held(self) -> set[tuple[str, int, str]]:
        places = set()
        for member in await client().smembers(self.own_key()):
            topic, _, field = member.partition(PLACE_SEPARATOR)
            user_id, _, connection_id = field.partition("|")
            places.add((topic, int(user_id), connection_id))
        return places

    async def forget_process(self, server: str = SERVER_NAME) -> None:
        await client().delete(key("presence-of", server))

    async def members(self, topic: str) -> list[dict]:
        briefs = {}
        for value in await client().hvals(key("presence", topic)):
            brief = json.loads(value)
            briefs[brief["id"]] = brief
        return sorted(briefs.values(), key=lambda u: u["username"])


def get_presence() -> Presence:
    """The store `REALTIME["PRESENCE_BACKEND"]` names."""
    return backend("PRESENCE_BACKEND")


class PresenceBatch:
    """
    The presence changes of one topic within one tick, as one diff. A thousand
    users joining at once would otherwise cost a diff per join to every
    subscriber (N² frames). A join and a leave of the same user cancel out.
    """

    def __init__(self):
        self.joined: dict[int, dict] = {}
        self.left: dict[int, dict] = {}

    def add(self, *, joins: list[dict], leaves: list[dict]) -> None:
        for user in joins:
            if self.left.pop(user["id"], None) is None:
                self.joined[user["id"]] = user
        for user in leaves:
            if self.joined.pop(user["id"], None) is None:
                self.left[user["id"]] = user

    def diff(self) -> tuple[list[dict], list[dict]] | None:
        """(joins, leaves), or None when everything cancelled out."""
        if not self.joined and not self.left:
            return None
        return list(self.joined.values()), list(self.left.values())
