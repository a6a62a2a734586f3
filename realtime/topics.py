"""
The registry of topic families: who may subscribe, who may publish, what `data`
is accepted, whether a topic keeps history and presence, and what a stored
publication becomes.

Adding a family (say `document:<id>`) is one subclass of `TopicFamily` with
`@register` above it; the gateway, `publish()` and the REST endpoint pick it up.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from django.contrib.auth import get_user_model
from django.db.models import Q

from realtime.errors import Forbidden, Invalid, NotFound, UnknownTopic
from realtime.models import SLUG_PATTERN, Announcement, Message, Notification, Room

MAX_TEXT_LENGTH = 2000
FAMILIES: dict[str, "TopicFamily"] = {}


@dataclass(frozen=True)
class Topic:
    """A parsed topic name: `room:general` is family `room`, key `general`."""

    name: str
    family: "TopicFamily"
    key: str | None

    @property
    def history(self) -> bool:
        return self.family.history

    @property
    def presence(self) -> bool:
        return self.family.presence


def register(cls: type["TopicFamily"]) -> type["TopicFamily"]:
    FAMILIES[cls.name] = cls()
    return cls


def parse_topic(name: Any) -> Topic:
    """The topic called `name`, or UnknownTopic when no family has that shape."""
    if not isinstance(name, str) or len(name) > 100:
        raise UnknownTopic("Topic names are strings of at most 100 characters.")
    family_name, sep, key = name.partition(":")
    family = FAMILIES.get(family_name)
    if family is None:
        raise UnknownTopic(f"No topic family {family_name!r}.")
    if family.key_pattern is None:
        if sep:
            raise UnknownTopic(f"Topic {family_name!r} takes no key.")
        return Topic(name=name, family=family, key=None)
    if not sep or not re.fullmatch(family.key_pattern, key):
        raise UnknownTopic(f"Topic names of this family look like {family.example!r}.")
    return Topic(name=name, family=family, key=key)


def clean_text(data: dict) -> str:
    text = data.get("text")
    if not isinstance(text, str):
        raise Invalid("data.text must be a string.")
    text = text.strip()
    if not 1 <= len(text) <= MAX_TEXT_LENGTH:
        raise Invalid(f"Text must be 1 to {MAX_TEXT_LENGTH} characters after trimming.")
    return text


def user_brief(user) -> dict:
    return {"id": user.pk, "username": user.get_username()}


class TopicFamily:
    """One kind of topic. Subclasses override what differs from 'nobody may'."""

    name: ClassVar[str]
    key_pattern: ClassVar[str | None] = None
    example: ClassVar[str] = ""
    history: ClassVar[bool] = True
    presence: ClassVar[bool] = False

    def check_subscribe(self, user, topic: Topic) -> None:
        """Raise Forbidden or NotFound unless `user` may subscribe now."""
        raise Forbidden("Nobody may subscribe to this topic.")

    def check_publish(self, user, topic: Topic) -> None:
        """Raise Forbidden or NotFound unless `user` may publish from a socket."""
        raise Forbidden("Only the server publishes on this topic.")

    def clean(self, topic: Topic, data: dict) -> dict:
        """The accepted form of a publication's `data`, or Invalid."""
        raise Invalid("This topic takes no publications.")

    def record(
        self, topic: Topic, data: dict, *, publisher, offset: int | None, created_at: datetime
    ) -> dict:
        """Store what `data` stands for (inside publish()'s transaction); the event's data."""
        return data


@register
class RoomTopic(TopicFamily):
    name = "room"
    key_pattern = SLUG_PATTERN
    example = "room:general"
    presence = True

    def room(self, topic: Topic) -> Room | None:
        return Room.objects.filter(slug=topic.key).first()

    def check_subscribe(self, user, topic: Topic) -> None:
        if not user.is_authenticated:
            raise Forbidden("Sign in to join rooms.")
        room = self.room(topic)
        if room is None or not room_visible_to(room, user):
            raise NotFound(f"No room {topic.key!r}.")

    check_publish = check_subscribe

    def clean(self, topic: Topic, data: dict) -> dict:
        return {"text": clean_text(data)}

    def record(self, topic, data, *, publisher, offset, created_at):
        from realtime.services import mentions_notify

        room = self.room(topic)
        if room is None:
            raise NotFound(f"No room {topic.key!r}.")
        if publisher is None:
            raise Invalid("Room messages need an author.")
        message = Message.objects.create(
            room=room, author=publisher, text=data["text"], offset=offset, created_at=created_at
        )
        mentions_notify(message=message)
        return message_data(message)


def message_data(message: Message) -> dict:
    return {
        "kind": "message",
        "id": message.pk,
        "text": message.text,
        "author": user_brief(message.author),
        "created_at": message.created_at.isoformat(),
    }


def room_visible_to(room: Room, user) -> bool:
    if not room.is_private or user.is_staff:
        return True
    return room.members.filter(pk=user.pk).exists()


def rooms_visible_to(user):
    """Rooms `user` can see, as a queryset."""
    rooms = Room.objects.all()
    if user.is_staff:
        return rooms
    return rooms.filter(Q(is_private=False) | Q(members=user)).distinct()


@register
class UserTopic(TopicFamily):
    name = "user"
    key_pattern = r"[1-9][0-9]{0,17}"
    example = "user:42"

    def check_subscribe(self, user, topic: Topic) -> None:
        if not user.is_authenticated or str(user.pk) != topic.key:
            raise Forbidden("Only that user may subscribe to their notifications.")

    def clean(self, topic: Topic, data: dict) -> dict:
        if data.get("kind") == "read":
            ids = data.get("ids")
            if not isinstance(ids, list) or not all(type(i) is int for i in ids):
                raise Invalid("data.ids must be a list of notification ids.")
            return {"kind": "read", "ids": ids}
        fields = {}
        for field, required, limit in (
            ("title", True, 200),
            ("body", False, 2000),
            ("url", False, 500),
        ):
            value = data.get(field, "")
            if not isinstance(value, str):
                raise Invalid(f"data.{field} must be a string.")
            value = value.strip()
            if required and not value:
                raise Invalid(f"data.{field} is required.")
            if len(value) > limit:
                raise Invalid(f"data.{field} must be at most {limit} characters.")
            fields[field] = value
        return fields

    def record(self, topic, data, *, publisher, offset, created_at):
        if data.get("kind") == "read":
            return data
        user = get_user_model().objects.filter(pk=int(topic.key)).first()
        if user is None:
            raise NotFound(f"No user {topic.key}.")
        notification = Notification.objects.create(
            user=user, offset=offset, created_at=created_at, **data
        )
        return notification_data(notification)


def notification_data(notification: Notification) -> dict:
    return {
        "kind": "notification",
        "id": notification.pk,
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
        "created_at": notification.created_at.isoformat(),
    }


@register
class BroadcastTopic(TopicFamily):
    name = "broadcast"

    def check_subscribe(self, user, topic: Topic) -> None:
        return None

    def check_publish(self, user, topic: Topic) -> None:
        if not user.is_staff:
            raise Forbidden("Only staff may post announcements.")

    def clean(self, topic: Topic, data: dict) -> dict:
        return {"text": clean_text(data)}

    def record(self, topic, data, *, publisher, offset, created_at):
        announcement = Announcement.objects.create(
            text=data["text"], author=publisher, offset=offset, created_at=created_at
        )
        return {
            "kind": "announcement",
            "id": announcement.pk,
            "text": announcement.text,
            "created_at": announcement.created_at.isoformat(),
        }


@register
class DashboardTopic(TopicFamily):
    name = "dashboard"
    history = False

    def check_subscribe(self, user, topic: Topic) -> None:
        if not user.is_staff:
            raise Forbidden("The dashboard is for staff.")

    def clean(self, topic: Topic, data: dict) -> dict:
        raise Invalid("The dashboard is published by the server only.")
