"""Reads of the chat site (HackSoft's selectors): who may see and manage which room,
what each user has not read yet, which announcements they still see."""

from datetime import timedelta

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from realtime.chat.models import Announcement, Message, Room, RoomReadState
from realtime.gateway.models import TopicSequence
from realtime.gateway.topics import memoized

# Announcements shown to a page that opens later: the newest few of the last week.
ANNOUNCEMENTS_RECENT = timedelta(days=7)
ANNOUNCEMENTS_SHOWN = 5


def rooms_visible_to(user) -> QuerySet[Room]:
    """Rooms `user` can see: public ones, private ones they belong to; staff see all."""
    rooms = Room.objects.all()
    if user.is_staff:
        return rooms
    return rooms.filter(Q(is_private=False) | Q(members=user)).distinct()


def room_visible_to(room: Room, user) -> bool:
    if not room.is_private or user.is_staff:
        return True
    return memoized(("member", room.pk, user.pk), lambda: room.members.filter(pk=user.pk).exists())


def room_visible(*, user, slug: str) -> Room | None:
    """The room called `slug` if `user` may see it (None alike for missing and hidden)."""
    return rooms_visible_to(user).filter(slug=slug).select_related("owner").first()


def room_manageable_by(room: Room, user) -> bool:
    """The one owner-or-staff rule: who may change a room and its members."""
    return bool(user.is_authenticated and (user.is_staff or room.owner_id == user.pk))


def room_unread_counts(user, rooms) -> dict[int, int]:
    """
    Room id -> how many messages `user` has not read there, not counting the user's
    own: those after the user's read state of the room or, in a room the user never
    opened, those posted since the user signed up (a newcomer does not start with
    every public room's whole history unread). Rooms with none are left out. Only
    `user`'s own read state is looked at.
    """
    if not user.is_authenticated:
        return {}
    read_to = RoomReadState.objects.filter(user=user, room=OuterRef("room")).values(
        "last_read_offset"
    )[:1]
    counts = (
        Message.objects.filter(room__in=rooms)
        .exclude(author=user)
        .annotate(read_to=Subquery(read_to))
        .filter(
            Q(read_to__isnull=False, offset__gt=F("read_to"))
            | Q(read_to__isnull=True, created_at__gt=user.date_joined)
        )
        .values("room")
        .annotate(unread=Count("pk"))
        .values_list("room", "unread")
    )
    return dict(counts)


def room_last_offsets(rooms) -> dict[int, int]:
    """
    Room id -> its topic's latest offset (rooms without events left out): where
    a page that follows the room resumes. Not its newest message's offset: edits
    and deletions come after it, and a replay from there would bring back the
    `message` event of a message deleted since.
    """
    by_topic = {room.topic: room.pk for room in rooms}
    latest = TopicSequence.objects.filter(topic__in=by_topic).values_list("topic", "last_offset")
    return {by_topic[topic]: last for topic, last in latest}


def room_last_read(*, user, room: Room) -> int:
    """The offset `user` has read `room` up to (0 when never opened)."""
    state = RoomReadState.objects.filter(user=user, room=room).only("last_read_offset").first()
    return state.last_read_offset if state else 0


def announcements_recent(user) -> QuerySet[Announcement]:
    """The newest announcements of the last week, without those `user` dismissed."""
    recent = Announcement.objects.filter(
        created_at__gte=timezone.now() - ANNOUNCEMENTS_RECENT
    ).order_by("-created_at", "-id")
    if user.is_authenticated:
        recent = recent.exclude(dismissals__user=user)
    return recent[:ANNOUNCEMENTS_SHOWN]
