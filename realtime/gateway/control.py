"""
Control: the channel-layer groups of the gateway, and every "do this to these
sockets, wherever they are" request. Each process's hub listens on one control
group and on the group of each topic its sockets subscribe to; these helpers
are how views, signals, the admin and other processes reach those sockets.
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from realtime.gateway.registry import connections_list

CONTROL_GROUP = "realtime.control"


def group_name(topic: str) -> str:
    """The channel-layer group of a topic (group names allow no colon)."""
    return "topic." + topic.replace(":", ".")


async def send_event(topic: str, offset: int | None, ts: str, data: dict) -> None:
    """Hand a stored publication to every process's hub (at most once; offsets fill gaps)."""
    await get_channel_layer().group_send(
        group_name(topic),
        {"type": "realtime.event", "topic": topic, "offset": offset, "ts": ts, "data": data},
    )


async def send_control(message: dict) -> None:
    """Send a control message (close sockets, revoke a topic) to every process."""
    await get_channel_layer().group_send(CONTROL_GROUP, {"type": "realtime.control", **message})


async def send_topic_frame(topic: str, frame: dict, *, except_user: int | None = None) -> None:
    """
    Send a non-event frame (presence, typing) to every subscriber of `topic` on
    every process, but not to the sockets of user `except_user`.
    """
    message = {"type": "realtime.frame", "topic": topic, "frame": frame}
    if except_user is not None:
        message["except_user"] = except_user
    await get_channel_layer().group_send(group_name(topic), message)


# Sync API, for views, signals, the admin and management commands -------------


def connection_disconnect(connection_id: str, *, code: int = 4000) -> bool:
    """Close that socket (4000 by default); False when no such connection is live."""
    if not any(e["connection_id"] == connection_id for e in connections_list()):
        return False
    async_to_sync(send_control)({"action": "close", "connection_id": connection_id, "code": code})
    return True


def user_connections_disconnect(*, user_id: int, code: int = 4000) -> int:
    """Close every socket of a user on every process; how many there were."""
    count = sum(1 for e in connections_list() if e["user_id"] == user_id)
    async_to_sync(send_control)({"action": "close", "user_id": user_id, "code": code})
    return count


def user_sessions_verify(*, user_id: int) -> None:
    """Each socket of the user re-checks its session and closes with 4401 if it ended."""
    async_to_sync(send_control)({"action": "verify_session", "user_id": user_id})


def topic_revoke(*, topic: str) -> None:
    """Each socket on `topic` re-checks that its user may still subscribe."""
    async_to_sync(send_control)({"action": "recheck_topic", "topic": topic})


def user_rights_changed(*, user_id: int) -> None:
    """Each socket of the user re-checks every subscription against their rights of now."""
    async_to_sync(send_control)({"action": "recheck_user", "user_id": user_id})
