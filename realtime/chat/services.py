"""The chat site's writes (services); what users should see live goes through publish()."""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from realtime.chat.mentions import MENTION_PATTERN, mention_names, mentions_in, users_named
from realtime.chat.models import (
    Announcement,
    AnnouncementDismissal,
    Message,
    Notification,
    Room,
    RoomReadState,
)
from realtime.chat.payloads import MAX_ID, message_data, message_deleted_data, message_edited_data
from realtime.chat.selectors import room_manageable_by, room_visible_to
from realtime.gateway.errors import Forbidden, Invalid, NotFound
from realtime.gateway.models import Event
from realtime.gateway.publishing import Publication, publish, publish_as
from realtime.gateway.topics import parse_topic

__all__ = ["MENTION_PATTERN"]  # re-exported: the pages mark mentions with the same pattern


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


def message_edit(*, room: Room, actor, message_id: int, text: str) -> Publication:
    """Edit a message (its author only), published as a `message_edited` event."""
    # Checked here first too, so REST answers 404 and 403 before a 400 about the text.
    message_change_check(room=room, actor=actor, message=room_message(room, message_id))
    topic = parse_topic(room.topic)
    return publish_as(actor, topic, {"edit": message_id, "text": text})


def message_delete(*, room: Room, actor, message_id: int) -> Publication:
    """Delete a message (its author, the room's owner or staff): a `message_deleted` event."""
    message = room_message(room, message_id)
    message_change_check(room=room, actor=actor, message=message, deleting=True)
    topic = parse_topic(room.topic)
    return publish_as(actor, topic, {"delete": message_id})


def room_message(room: Room, message_id: int, *, lock: bool = False) -> Message:
    """The room's message `message_id` (locked until commit with `lock`), or NotFound."""
    messages = Message.objects.filter(room=room, pk=message_id) if message_id <= MAX_ID else None
    if lock and messages is not None:
        messages = messages.select_for_update()
    message = messages.first() if messages is not None else None
    if message is None:
        raise NotFound(f"No message {message_id} in #{room.slug}.")
    return message


def message_change_check(*, room: Room, actor, message: Message, deleting: bool = False) -> None:
    """Edits are the author's; deletions the author's, the room owner's or staff's."""
    if actor is None or not actor.is_authenticated:
        raise Forbidden("Sign in to change messages.")
    if message.author_id == actor.pk:
        return
    if deleting:
        if not room_manageable_by(room, actor):
            raise Forbidden("Only the author, the room's owner or staff may delete a message.")
    else:
        raise Forbidden("Only the author may edit a message.")


def messages_store(*, room: Room, entries: list[tuple]) -> list[dict]:
    """
    Store a batch's new messages `(author, text, offset, created_at)` in one
    insert (RoomTopic.record_batch); their events' data, in order.
    """
    messages = Message.objects.bulk_create(
        Message(room=room, author=author, text=text, offset=offset, created_at=created_at)
        for author, text, offset, created_at in entries
    )
    # Every user the batch names, in one query, for the events and the notifications.
    known = users_named({name for message in messages for name in mention_names(message.text)})
    data = []
    for message in messages:
        mentions_notify(message=message, known=known)
        data.append(message_data(message, mentions_in(message.text, known)))
    return data


def message_store_edit(*, room: Room, actor, message_id: int, text: str, edited_at) -> dict:
    """Apply an edit inside publish() (RoomTopic.record): the author only; the event's data."""
    message = room_message(room, message_id, lock=True)
    message_change_check(room=room, actor=actor, message=message)
    previous = message.text
    message.text = text
    message.edited_at = edited_at
    message.save(update_fields=["text", "edited_at"])
    mentions_notify(message=message, previous_text=previous)
    return message_edited_data(message, mentions_in(message.text))


def message_store_delete(*, room: Room, actor, message_id: int) -> dict:
    """Delete inside publish() (RoomTopic.record): author, owner or staff; the event's data."""
    message = room_message(room, message_id, lock=True)
    message_change_check(room=room, actor=actor, message=message, deleting=True)
    message.delete()
    return message_deleted_data(message_id)


def mentions_notify(
    *, message: Message, previous_text: str | None = None, known: dict | None = None
) -> list[Publication]:
    """
    Notify each `@username` in a message who can see its room (not the author).
    After an edit (`previous_text`), only those the previous text did not name.
    `known`: the active users by username, already looked up for every name.
    """
    cap = settings.REALTIME["MAX_MENTIONS"]
    # At most MAX_MENTIONS distinct users, in the order they are named; the rest stay text.
    author = message.author.get_username()
    named = [name for name in mention_names(message.text) if name != author]
    if not named:
        return []
    by_name = known if known is not None else users_named(named)
    already = set(mention_names(previous_text)) if previous_text is not None else set()
    notified = []
    considered = 0
    for user in (by_name[name] for name in named if name in by_name):
        if considered == cap:
            break
        if not room_visible_to(message.room, user):
            continue
        considered += 1
        if user.get_username() in already:
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
