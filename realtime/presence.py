"""
Presence: which users are on a topic. A user joins with their first socket and
leaves with their last one, however many tabs they have open.

This store is the process's own (the in-process default: one server process).
"""

from collections import defaultdict


class LocalPresence:
    """Topic -> user id -> (user brief, connection ids), kept in this process."""

    def __init__(self):
        self.topics: dict[str, dict[int, tuple[dict, set[str]]]] = defaultdict(dict)

    async def join(self, topic: str, user: dict, connection_id: str) -> bool:
        """Record the socket; True when it is the user's first on the topic."""
        entry = self.topics[topic].get(user["id"])
        if entry is None:
            self.topics[topic][user["id"]] = (user, {connection_id})
            return True
        entry[1].add(connection_id)
        return False

    async def leave(self, topic: str, user_id: int, connection_id: str) -> bool:
        """Forget the socket; True when it was the user's last on the topic."""
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


_presence = LocalPresence()


def get_presence() -> LocalPresence:
    return _presence
