"""The chat site's writes (services); what users should see live goes through publish()."""

import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from realtime.chat.models import (
    Announcement,
    AnnouncementDismissal,
    Message,
    Notification,
    Room,
    RoomReadState,
)
from realtime.chat.selectors import room_manageable_by, room_visible_to
from realtime.gateway.errors import Forbidden, Invalid
from realtime.gateway.models import Event
from realtime.gateway.publishing import Publication, publish

MENTION_PATTERN = re.compile(r"(?<![\w@])@([\w.@+-]{1,150})")


def room_create(*, owner, slug: str, name: str, is_private: bool = False) -> Room:
    room = Room(owner=owner, slug=slug, name=name, is_private=is_private)
    room.full_clean()
    with transaction.atomic():
        room.save()
        room.members.add(owner)
    return room


def room_member_add(*, room: Room, actor, user) -> None:
    if not room_manageable_by(room, actor):
        raise Forbidden("Only the room's owner or staff may add members.")
    room.members.add(user)


def room_member_remove(*, room: Room, actor, user) -> None:
    """Remove a member (owner or staff); their subscriptions end (chat.signals)."""
    if not room_manageable_by(room, actor):
        raise Forbidden("Only the room's owner or staff may remove members.")
    if user.pk == room.owner_id:
        raise Invalid("The room's owner cannot be removed.")
    room.members.remove(user)


def room_update(*, room: Room, actor, name: str | None = None, is_private: bool | None = None):
    """Rename a room or change its privacy (owner or staff)."""
    if not room_manageable_by(room, actor):
        raise Forbidden("Only the room's owner or staff may change the room.")
    if name is not None:
        room.name = name
    if is_private is not None:
        room.is_private = is_private
    room.full_clean()
    room.save()
    return room


def room_delete(*, room: Room, actor) -> None:
    """Delete a room with its history (owner or staff); its subscriptions end."""
    if not room_manageable_by(room, actor):
        raise Forbidden("Only the room's owner or staff may delete the room.")
    with transaction.atomic():
        Event.objects.filter(topic=room.topic).delete()
        room.delete()


def message_create(*, room: Room, author, text: str, client_id: str | None = None) -> Publication:
    """Post a message as `author` (same validation and broadcast as a socket publish)."""
    return publish(room.topic, {"text": text}, publisher=author, client_id=client_id)


def mentions_notify(*, message: Message) -> list[Publication]:
    """Notify each `@username` in a message who can see its room (not the author)."""
    usernames = {name.rstrip(".") for name in MENTION_PATTERN.findall(message.text)}
    usernames.discard(message.author.get_username())
    if not usernames:
        return []
    # At most MAX_MENTIONS distinct users, in the order they are named; the rest stay text.
    named = sorted(usernames, key=message.text.find)
    users = get_user_model().objects.filter(username__in=named, is_active=True)
    by_name = {user.get_username(): user for user in users}
    cap = settings.REALTIME["MAX_MENTIONS"]
    notified = []
    for user in (by_name[name] for name in named if name in by_name):
        if len(notified) == cap:
            break
        if not room_visible_to(message.room, user):
            continue
        publication = notification_create(
            user=user,
            title=f"{message.author.get_username()} mentioned you in #{message.room.slug}",
            body=message.text[:200],
            url=f"/rooms/{message.room.slug}/#message-{message.pk}",
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


def room_mark_read(*, user, room: Room, offset: int) -> int:
    """
    Record that `user` has read `room` up to `offset` (clamped to the room's last
    message; never moves back). Returns the offset now recorded.
    """
    last = Message.objects.filter(room=room).order_by("-offset").values_list("offset", flat=True)
    offset = min(offset, last.first() or 0)
    with transaction.atomic():
        state, _ = RoomReadState.objects.select_for_update().get_or_create(user=user, room=room)
        if offset > state.last_read_offset:
            state.last_read_offset = offset
            state.save(update_fields=["last_read_offset", "updated_at"])
    return state.last_read_offset


def announcement_dismiss(*, user, announcement: Announcement) -> None:
    """`user` no longer sees `announcement` on pages they open (idempotent)."""
    AnnouncementDismissal.objects.get_or_create(user=user, announcement=announcement)
