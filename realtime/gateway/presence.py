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
from realtime.gateway.redis_state import client, key


class Presence:
    """What every presence store does."""

    async def join(self, topic: str, user: dict, connection_id: str) -> bool:
        """Record the socket; True when it is the user's first on the topic."""
        raise NotImplementedError

    async def leave(self, topic: str, user_id: int, connection_id: str) -> bool:
        """Forget the socket; True when it was the user's last on the topic."""
        raise NotImplementedError

    async def restore(self, topic: str, user: dict, connection_id: str) -> None:
        """Re-record a socket after the store lost its data (no diff is sent)."""

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

    async def leave(self, topic: str, user_id: int, connection_id: str) -> bool:
        users = self.topics.get(topic)
        if not users or user_id not in users:
            return False
        connections = users[user_id][1]
        connections.discard(connection_id)
        if connections:
            return False
        del users[user_id]
        if not users:
            del self.topics[topic]
        return True

    async def members(self, topic: str) -> list[dict]:
        users = self.topics.get(topic, {})
        return sorted((brief for brief, _ in users.values()), key=lambda u: u["username"])


# Fields are "<user id>|<connection id>"; the scripts count a user's fields atomically.
JOIN_SCRIPT = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local n = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #ARGV[3]) == ARGV[3] then n = n + 1 end
end
return n
"""
LEAVE_SCRIPT = """
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if removed == 0 then return -1 end
local n = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #ARGV[2]) == ARGV[2] then n = n + 1 end
end
return n
"""


class RedisPresence(Presence):
    """Presence in a Redis hash per topic, the same answer on every process."""

    async def join(self, topic: str, user: dict, connection_id: str) -> bool:
        count = await client().eval(
            JOIN_SCRIPT,
            1,
            key("presence", topic),
            f"{user['id']}|{connection_id}",
            json.dumps(user),
            f"{user['id']}|",
        )
        return count == 1

    async def leave(self, topic: str, user_id: int, connection_id: str) -> bool:
        remaining = await client().eval(
            LEAVE_SCRIPT, 1, key("presence", topic), f"{user_id}|{connection_id}", f"{user_id}|"
        )
        return remaining == 0

    async def restore(self, topic: str, user: dict, connection_id: str) -> None:
        await client().hset(
            key("presence", topic), f"{user['id']}|{connection_id}", json.dumps(user)
        )

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
