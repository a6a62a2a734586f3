"""
The wire format of PROTOCOL.md: decoding and validating client frames, and
building server frames. Nothing here touches the database or the network.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from realtime.gateway.errors import BadMessage, RealtimeError

PROTOCOL_VERSION = 1
SUBPROTOCOL = "realtime.v1"
MAX_REF_LENGTH = 64
MAX_CLIENT_ID_LENGTH = 64
MAX_OFFSET = 2**63 - 1

# Close codes the server sends (PROTOCOL.md, "Heartbeats, limits and closing").
CLOSE_NORMAL = 1000
CLOSE_ADMIN = 4000
CLOSE_BINARY = 4003
CLOSE_SLOW_CONSUMER = 4008
CLOSE_TOO_LARGE = 4009
CLOSE_TOO_MANY_CONNECTIONS = 4029
CLOSE_RESTART = 4012
CLOSE_SESSION_ENDED = 4401
CLOSE_FLOODING = 4429

CLIENT_TYPES = ("subscribe", "unsubscribe", "publish", "ping", "typing")


class BadJson(RealtimeError):
    code = "bad_json"


class UnknownType(RealtimeError):
    code = "unknown_type"


@dataclass(frozen=True)
class Request:
    """A validated client frame."""

    type: str
    ref: str | None = None
    topic: str | None = None
    since: int | None = None
    # subscribe: whether this socket counts in the topic's presence (default yes).
    presence: bool = True
    data: dict | None = None
    client_id: str | None = None


def decode(text: str) -> Any:
    """JSON text to Python; BadJson for anything that is not JSON we can hold."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses integers beyond 64 bits; the standard library reads them
    # (and bounds digits and depth itself).
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadJson("The frame is not valid JSON.") from exc


def encode(frame: dict) -> str:
    return orjson.dumps(frame).decode()


def is_text(value: object) -> bool:
    """A string that is valid Unicode text (JSON can carry lone surrogates; UTF-8 cannot)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def request_ref(content: Any) -> str | None:
    """The frame's `ref` when it is a valid one (errors echo only valid refs)."""
    if isinstance(content, dict):
        ref = content.get("ref")
        if is_text(ref) and len(ref) <= MAX_REF_LENGTH:
            return ref
    return None


def dropped_frame_ref(text: str) -> str | None:
    """The `ref` of a frame that is dropped unread (rate limit), when it has a valid one."""
    try:
        return request_ref(orjson.loads(text))
    except orjson.JSONDecodeError:
        return None


def parse_request(content: Any) -> Request:
    """Validate a decoded frame against the client-to-server table."""
    if not isinstance(content, dict):
        raise BadJson("A frame is one JSON object.")
    frame_type = content.get("type")
    if not isinstance(frame_type, str):
        raise BadMessage("Every frame needs a string 'type'.")
    if "ref" in content and request_ref(content) is None:
        raise BadMessage(f"'ref' must be text of at most {MAX_REF_LENGTH} characters.")
    ref = content.get("ref")
    if frame_type not in CLIENT_TYPES:
        raise UnknownType(f"Unknown frame type {frame_type[:40]!r}.")
    if frame_type == "ping":
        return Request(type="ping", ref=ref)
    topic = content.get("topic")
    if not isinstance(topic, str):
        raise BadMessage(f"'{frame_type}' needs a string 'topic'.")
    if frame_type in ("unsubscribe", "typing"):
        return Request(type=frame_type, ref=ref, topic=topic)
    if frame_type == "subscribe":
        since = content.get("since")
        if since is not None and (type(since) is not int or not 0 <= since <= MAX_OFFSET):
            raise BadMessage("'since' must be a non-negative integer offset.")
        presence = content.get("presence", True)
        if type(presence) is not bool:
            raise BadMessage("'presence' must be true or false.")
        return Request(type="subscribe", ref=ref, topic=topic, since=since, presence=presence)
    data = content.get("data")
    if not isinstance(data, dict):
        raise BadMessage("'publish' needs an object 'data'.")
    client_id = content.get("id")
    if client_id is not None and (
        not is_text(client_id) or not 1 <= len(client_id) <= MAX_CLIENT_ID_LENGTH
    ):
        raise BadMessage(f"'id' must be a string of 1 to {MAX_CLIENT_ID_LENGTH} characters.")
    return Request(type="publish", ref=ref, topic=topic, data=data, client_id=client_id)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def with_ref(frame: dict, ref: str | None) -> dict:
    if ref is not None:
        frame["ref"] = ref
    return frame


def welcome_frame(*, connection_id: str, user: dict | None, heartbeat: int) -> dict:
    return {
        "type": "welcome",
        "protocol": PROTOCOL_VERSION,
        "connection_id": connection_id,
        "user": user,
        "heartbeat": heartbeat,
        "server_time": now_iso(),
    }


def error_frame(
    code: str,
    message: str,
    *,
    ref: str | None = None,
    topic: str | None = None,
    retry_after_ms: int | None = None,
) -> dict:
    frame = {"type": "error", "code": code, "message": message}
    if topic is not None:
        frame["topic"] = topic
    if retry_after_ms is not None:
        frame["retry_after_ms"] = retry_after_ms
    return with_ref(frame, ref)


def subscribed_frame(
    *, ref: str | None, topic: str, offset: int | None, recovered: bool | None
) -> dict:
    frame = {"type": "subscribed", "topic": topic, "offset": offset}
    if recovered is not None:
        frame["recovered"] = recovered
    return with_ref(frame, ref)


def presence_state_frame(topic: str, users: list[dict]) -> dict:
    return {"type": "presence_state", "topic": topic, "users": users}


def typing_frame(topic: str, user: dict) -> dict:
    return {"type": "typing", "topic": topic, "user": user}


def presence_diff_frame(topic: str, joins: list[dict], leaves: list[dict]) -> dict:
    return {"type": "presence_diff", "topic": topic, "joins": joins, "leaves": leaves}
