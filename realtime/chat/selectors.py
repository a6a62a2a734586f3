"""Reads of the chat site (HackSoft's selectors): who may see and manage which room."""

from django.db.models import Q, QuerySet

from realtime.chat.models import Room
from realtime.gateway.topics import memoized


def rooms_visible_to(user) -> QuerySet[Room]:
    """Rooms `user` can see: public ones, private ones they belong to; staff see all."""
    rooms = Room.objects.all()
    if user.is_staff:
        return rooms
    return rooms.filter(Q(is_private=False) | Q(members=user)).distinct()


def room_visible_to(room: Room, user) -> bool:
    if not room.is_private or user.is_staff:
        return True
    return memoized(("member", room.pk, user.pk), room.members.filter(pk=user.pk).exists)


def room_visible(*, user, slug: str) -> Room | None:
    """The room called `slug` if `user` may see it (None alike for missing and hidden)."""
    return rooms_visible_to(user).filter(slug=slug).select_related("owner").first()


def room_manageable_by(room: Room, user) -> bool:
    """The one owner-or-staff rule: who may change a room and its members."""
    return bool(user.is_authenticated and (user.is_staff or room.owner_id == user.pk))
