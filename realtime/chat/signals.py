"""
Signal receivers that keep sockets in step with the database (PROTOCOL.md,
"Authorization holds"): a socket lives no longer than its session (4401), and
a subscription no longer than the right it depends on. Each acts on commit,
through the gateway's control group, so it reaches every process.

Every path that takes a right away is covered: a membership deleted (from
either side of the relation, the admin's member inline, a queryset delete:
all delete `RoomMembership` rows), a room made private or deleted, staff or
superuser status removed, a user deactivated or deleted. What no signal
reports (a raw SQL change) the sockets' periodic recheck catches.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from realtime.chat.models import Room, RoomMembership
from realtime.gateway.control import topic_revoke, user_rights_changed, user_sessions_verify

# User flags that rights depend on.
RIGHTS_FIELDS = ("is_active", "is_staff", "is_superuser")


def revoke_on_commit(topic: str) -> None:
    transaction.on_commit(lambda: topic_revoke(topic=topic))


@receiver(user_logged_out)
def verify_sessions_after_logout(sender, request, user, **kwargs):
    if user is not None:
        transaction.on_commit(lambda: user_sessions_verify(user_id=user.pk))


@receiver(pre_save, sender=get_user_model())
def note_user_change(sender, instance, **kwargs):
    """Deactivation or a new password ends sessions; losing a flag ends what it allowed."""
    instance._realtime_after_save = []
    if instance.pk is None:
        return
    before = sender.objects.filter(pk=instance.pk).values("password", *RIGHTS_FIELDS).first()
    if before is None:
        return
    user_id = instance.pk
    if (before["is_active"] and not instance.is_active) or before["password"] != instance.password:
        instance._realtime_after_save.append(lambda: user_sessions_verify(user_id=user_id))
    if any(before[field] and not getattr(instance, field) for field in RIGHTS_FIELDS):
        instance._realtime_after_save.append(lambda: user_rights_changed(user_id=user_id))


@receiver(post_save, sender=get_user_model())
def recheck_after_user_change(sender, instance, **kwargs):
    # Scheduled after the row is written: outside a transaction `on_commit` runs
    # at once, and from pre_save that was before the UPDATE, so a socket could
    # check the old row and keep a right just taken away.
    for action in getattr(instance, "_realtime_after_save", ()):
        transaction.on_commit(action)
    instance._realtime_after_save = []


@receiver(post_delete, sender=get_user_model())
def verify_sessions_after_deletion(sender, instance, **kwargs):
    user_id = instance.pk
    transaction.on_commit(lambda: user_sessions_verify(user_id=user_id))


@receiver(post_delete, sender=RoomMembership)
def revoke_after_membership_deleted(sender, instance, **kwargs):
    """
    A membership row deleted, by any path: `room.members.remove()` or `.clear()`,
    `user.rooms.remove()`, the admin's member inline, a queryset delete.
    """
    room = Room.objects.filter(pk=instance.room_id).first()
    if room is not None:
        revoke_on_commit(room.topic)


@receiver(pre_save, sender=Room)
def note_room_made_private(sender, instance, **kwargs):
    instance._realtime_made_private = bool(
        instance.pk is not None
        and instance.is_private
        and Room.objects.filter(pk=instance.pk, is_private=False).exists()
    )


@receiver(post_save, sender=Room)
def revoke_after_room_made_private(sender, instance, **kwargs):
    # After the write (see recheck_after_user_change).
    if getattr(instance, "_realtime_made_private", False):
        instance._realtime_made_private = False
        revoke_on_commit(instance.topic)


@receiver(post_delete, sender=Room)
def revoke_after_room_deleted(sender, instance, **kwargs):
    revoke_on_commit(instance.topic)
