"""
Signal receivers that keep sockets in step with the database: a socket lives
no longer than its session (4401), and loses a private room with its membership.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, pre_save
from django.dispatch import receiver

from realtime.chat.models import Room
from realtime.gateway.control import topic_revoke, user_sessions_verify


@receiver(user_logged_out)
def verify_sessions_after_logout(sender, request, user, **kwargs):
    if user is not None:
        transaction.on_commit(lambda: user_sessions_verify(user_id=user.pk))


@receiver(pre_save, sender=get_user_model())
def verify_sessions_after_deactivation_or_new_password(sender, instance, **kwargs):
    if instance.pk is None:
        return
    before = sender.objects.filter(pk=instance.pk).values("is_active", "password").first()
    if before is None:
        return
    if (before["is_active"] and not instance.is_active) or before["password"] != instance.password:
        user_id = instance.pk
        transaction.on_commit(lambda: user_sessions_verify(user_id=user_id))


@receiver(post_delete, sender=get_user_model())
def verify_sessions_after_deletion(sender, instance, **kwargs):
    user_id = instance.pk
    transaction.on_commit(lambda: user_sessions_verify(user_id=user_id))


@receiver(m2m_changed, sender=Room.members.through)
def revoke_private_room_from_removed_members(sender, instance, action, pk_set, **kwargs):
    """A member removed from a private room gets no further events from it."""
    if action not in ("post_remove", "post_clear") or not isinstance(instance, Room):
        return
    if instance.is_private:
        topic = instance.topic
        transaction.on_commit(lambda: topic_revoke(topic=topic))
