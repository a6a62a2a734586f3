"""Business actions (writes). Each one that users should see live goes through publish()."""

import re
from datetime import datetime
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user, get_user_model
from django.db import transaction
from django.utils import timezone

from realtime.errors import Forbidden
from realtime.models import Message, Notification, Room
from realtime.publishing import Publication, events_since, publish, topic_offset
from realtime.topics import Topic, room_visible_to

SessionStore = import_module(settings.SESSION_ENGINE).SessionStore
MENTION_PATTERN = re.compile(r"(?<![\w@])@([\w.@+-]{1,150})")


def room_create(*, owner, slug: str, name: str, is_private: bool = False) -> Room:
    room = Room(owner=owner, slug=slug, name=name, is_private=is_private)
    room.full_clean()
    with transaction.atomic():
        room.save()
        room.members.add(owner)
    return room


def room_member_add(*, room: Room, actor, user) -> None:
    if not (actor.is_staff or room.owner_id == actor.pk):
        raise Forbidden("Only the room's owner or staff may add members.")
    room.members.add(user)


def message_create(*, room: Room, author, text: str, client_id: str | None = None) -> Publication:
    """Post a message as `author` (same validation and broadcast as a socket publish)."""
    return publish(room.topic, {"text": text}, publisher=author, client_id=client_id)


def mentions_notify(*, message: Message) -> list[Publication]:
    """Notify each `@username` in a message who can see its room (not the author)."""
    usernames = {name.rstrip(".") for name in MENTION_PATTERN.findall(message.text)}
    usernames.discard(message.author.get_username())
    if not usernames:
        return []
    users = get_user_model().objects.filter(username__in=usernames, is_active=True)
    notified = []
    for user in users:
        if not room_visible_to(message.room, user):
            continue
        publication = notification_create(
            user=user,
            title=f"{message.author.get_username()} mentioned you in #{message.room.slug}",
            body=message.text[:200],
            url=f"/rooms/{message.room.slug}/",
        )
        notified.append(publication)
    return notified


def notification_create(*, user, title: str, body: str = "", url: str = "") -> Publication:
    return publish(f"user:{user.pk}", {"title": title, "body": body, "url": url})


def notifications_mark_read(*, user, ids: list[int]) -> list[int]:
    """Mark the user's notifications read; other tabs hear it as `kind: read`."""
    with transaction.atomic():
        marked = list(
            Notification.objects.filter(user=user, pk__in=ids, read_at__isnull=True).values_list(
                "pk", flat=True
            )
        )
        if marked:
            Notification.objects.filter(pk__in=marked).update(read_at=timezone.now())
            publish(f"user:{user.pk}", {"kind": "read", "ids": sorted(marked)})
    return sorted(marked)


def announcement_create(*, author, text: str) -> Publication:
    return publish("broadcast", {"text": text}, publisher=author)


def subscription_check(*, user, topic: Topic) -> None:
    """Raise Forbidden or NotFound unless `user` may subscribe to `topic` now."""
    topic.family.check_subscribe(user, topic)


def subscription_catch_up(*, topic: Topic, since: int | None) -> tuple[int | None, list, bool]:
    """The topic's latest offset, the events to replay after `since`, and `recovered`."""
    if not topic.history:
        return None, [], since is None or since == 0
    if since is None:
        return topic_offset(topic.name), [], True
    replay, recovered = events_since(topic.name, since)
    latest = replay[-1]["offset"] if replay else topic_offset(topic.name)
    return latest, replay, recovered


def socket_publish(*, user, topic: Topic, data: dict, client_id: str | None) -> Publication:
    """A publish from a socket: the topic's publish rule for `user`, then publish()."""
    topic.family.check_publish(user, topic)
    return publish(
        topic, data, publisher=user if user.is_authenticated else None, client_id=client_id
    )


def session_still_valid(*, session_key: str | None, user_id: int) -> bool:
    """Whether the session still signs in this user (not logged out, expired, or stale)."""
    if not session_key:
        return False
    store = SessionStore(session_key)
    user = get_user(SimpleNamespace(session=store))
    return user.is_authenticated and user.pk == user_id


def session_expires_at(*, session_key: str | None) -> datetime | None:
    if not session_key:
        return None
    return SessionStore(session_key).get_expiry_date()
