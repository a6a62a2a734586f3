"""The chat site's data: users, rooms, messages, notifications and announcements."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models

SLUG_PATTERN = r"[a-z0-9][a-z0-9-]{0,49}"
slug_validator = RegexValidator(
    rf"^{SLUG_PATTERN}\Z",
    "Use 1 to 50 lowercase letters, digits or hyphens, starting with a letter or digit.",
)


class User(AbstractUser):
    """The site's user; custom from the first migration so it can grow."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class Room(models.Model):
    """A chat room: topic `room:<slug>`. Private rooms are seen by members and staff."""

    slug = models.CharField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=100)
    is_private = models.BooleanField(default=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_rooms"
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="rooms", blank=True, through="RoomMembership"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug

    @property
    def topic(self) -> str:
        return f"room:{self.slug}"


class RoomMembership(models.Model):
    """
    One member of one room: the table Django made for `Room.members`, declared so
    that deleting rows (the admin's member inline, queryset deletes) sends the
    signals that end the removed member's subscriptions.
    """

    # The related names of Django's own through table, so forms and queries stay as they were.
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="Room_members+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="Room_members+"
    )

    class Meta:
        db_table = "realtime_room_members"
        unique_together = [("room", "user")]
        verbose_name = "member"

    def __str__(self):
        return f"{self.user} in #{self.room}"


class Message(models.Model):
    """A chat message; its `offset` is its event's offset on `room:<slug>`."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="messages"
    )
    text = models.TextField(max_length=2000)
    offset = models.BigIntegerField()
    created_at = models.DateTimeField()
    # Set by the author's last edit (a `message_edited` event); deleted messages are gone.
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "offset"], name="message_room_offset")
        ]
        ordering = ["room", "offset"]

    def __str__(self):
        return f"{self.room.slug}#{self.offset} {self.author}: {self.text[:40]}"


class Notification(models.Model):
    """A notification to one user, published on `user:<id>`."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    url = models.CharField(max_length=500, blank=True, default="")
    offset = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"to {self.user}: {self.title}"


class Announcement(models.Model):
    """A site-wide announcement, published on `broadcast`."""

    text = models.TextField(max_length=2000)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    offset = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.text[:60]


class RoomReadState(models.Model):
    """How far one user has read one room: messages after `last_read_offset` are unread."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="room_read_states"
    )
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="read_states")
    last_read_offset = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="room_read_state_user_room")
        ]

    def __str__(self):
        return f"{self.user} read #{self.room} to {self.last_read_offset}"


class AnnouncementDismissal(models.Model):
    """One user dismissed one announcement: it is no longer shown to them on load."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dismissals"
    )
    announcement = models.ForeignKey(
        Announcement, on_delete=models.CASCADE, related_name="dismissals"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "announcement"], name="announcement_dismissal_user_announcement"
            )
        ]

    def __str__(self):
        return f"{self.user} dismissed {self.announcement_id}"
