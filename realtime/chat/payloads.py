"""The `data` of the chat site's events (PROTOCOL.md, Topics), built in one place."""

from realtime.chat.models import Announcement, Message, Notification
from realtime.gateway.errors import Invalid
from realtime.gateway.protocol import is_text
from realtime.gateway.topics import user_brief

MAX_TEXT_LENGTH = 2000
MAX_ID = 2**63 - 1


def clean_text(data: dict) -> str:
    """`data.text` trimmed, 1 to 2,000 characters, or Invalid."""
    text = data.get("text")
    if not is_text(text):
        raise Invalid("data.text must be a string of valid Unicode text.")
    text = text.strip()
    if not 1 <= len(text) <= MAX_TEXT_LENGTH:
        raise Invalid(f"Text must be 1 to {MAX_TEXT_LENGTH} characters after trimming.")
    return text


def message_id(data: dict, field: str) -> int:
    """`data[field]`, the id of a message to edit or delete, or Invalid."""
    value = data.get(field)
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise Invalid(f"data.{field} must be a message id (a positive integer).")
    return value


def message_data(message: Message, mentions: list[dict]) -> dict:
    return {
        "kind": "message",
        "id": message.pk,
        "text": message.text,
        "author": user_brief(message.author),
        "created_at": message.created_at.isoformat(),
        "mentions": mentions,
    }


def message_edited_data(message: Message, mentions: list[dict]) -> dict:
    return {
        "kind": "message_edited",
        "id": message.pk,
        "text": message.text,
        "edited_at": message.edited_at.isoformat(),
        "mentions": mentions,
    }


def message_deleted_data(message_pk: int) -> dict:
    return {"kind": "message_deleted", "id": message_pk}


def notification_data(notification: Notification) -> dict:
    return {
        "kind": "notification",
        "id": notification.pk,
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
        "created_at": notification.created_at.isoformat(),
    }


def announcement_data(announcement: Announcement) -> dict:
    return {
        "kind": "announcement",
        "id": announcement.pk,
        "text": announcement.text,
        "created_at": announcement.created_at.isoformat(),
    }
