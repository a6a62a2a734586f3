"""
Live connections: the registry behind `GET/DELETE /api/connections/`, the
admin's live connections page and the dashboard.

This store is the process's own (the in-process default: one server process).
Closing goes through the channel layer's control group, so it reaches the
socket wherever it is held.
"""

import os
import socket

from asgiref.sync import async_to_sync

SERVER_NAME = f"{socket.gethostname()}:{os.getpid()}"

LIVE: dict[str, dict] = {}


def connection_register(
    *,
    connection_id: str,
    user_id: int | None,
    username: str | None,
    connected_since: str,
    client: str | None = None,
    user_agent: str | None = None,
) -> None:
    LIVE[connection_id] = {
        "connection_id": connection_id,
        "user_id": user_id,
        "username": username,
        "server": SERVER_NAME,
        "client": client,
        "user_agent": user_agent,
        "connected_since": connected_since,
        "topics": set(),
    }


def connection_topics_set(connection_id: str, topics: set[str]) -> None:
    entry = LIVE.get(connection_id)
    if entry is not None:
        entry["topics"] = set(topics)


def connection_unregister(connection_id: str) -> None:
    LIVE.pop(connection_id, None)


def connections_list() -> list[dict]:
    """Each live connection: connection_id, user_id, username, server, connected_since, topics."""
    return [dict(entry, topics=sorted(entry["topics"])) for entry in list(LIVE.values())]


def connection_disconnect(connection_id: str, *, code: int = 4000) -> bool:
    """Close that socket (4000 by default); False when no such connection is live."""
    from realtime.delivery import send_control

    if connection_id not in LIVE:
        return False
    async_to_sync(send_control)({"action": "close", "connection_id": connection_id, "code": code})
    return True


def user_sessions_verify(*, user_id: int) -> None:
    """Each socket of the user re-checks its session and closes with 4401 if it ended."""
    from realtime.delivery import send_control

    async_to_sync(send_control)({"action": "verify_session", "user_id": user_id})


def topic_revoke(*, topic: str) -> None:
    """Each socket on `topic` re-checks that its user may still subscribe."""
    from realtime.delivery import send_control

    async_to_sync(send_control)({"action": "recheck_topic", "topic": topic})
