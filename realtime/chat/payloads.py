"""The `data` of the chat site's events (PROTOCOL.md, Topics), built in one place."""

from realtime.chat.models import Announcement, Message, Notification
from realtime.gateway.errors import Invalid
from realtime.gateway.protocol import is_text
from realtime.gateway.topics import user_brief

MAX_TEXT_LENGTH = 2000


def clean_text(data: dict) -> str:
    """`data.text` trimmed, 1 to 2,000 characters, or Invalid."""
    text = data.get("text")
    if not is_text(text):
        raise Invalid("data.text must be a string of valid Unicode text.")
    text = text.strip()
    if not 1 <= len(text) <= MAX_TEXT_LENGTH:
        raise Invalid(f"Text must be 1 to {MAX_TEXT_LENGTH} characters after trimming.")
    return text


def message_data(message: Message) -> dict:
    return {
        "kind": "message",
        "id": message.pk,
        "text": message.text,
        "author": user_brief(message.author),
        "created_at": message.created_at.isoformat(),
    }


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
