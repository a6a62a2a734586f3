"""
Live connections, for `GET /api/connections/` and `DELETE /api/connections/<id>/`.

A minimal in-process registry for now; the gateway replaces its internals
(same two functions, same dict shape).
"""

LIVE: dict[str, dict] = {}


def connections_list() -> list[dict]:
    """Each live connection: connection_id, user_id, username, server, connected_since, topics."""
    return [dict(entry, topics=list(entry.get("topics", []))) for entry in LIVE.values()]


def connection_disconnect(connection_id: str) -> bool:
    """Close that socket with 4000; False when no such connection is live."""
    return LIVE.pop(connection_id, None) is not None
