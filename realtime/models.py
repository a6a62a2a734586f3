"""Data of the realtime platform: users, rooms, the event log and what it records."""

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
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="rooms", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug

    @property
    def topic(self) -> str:
        return f"room:{self.slug}"


class TopicSequence(models.Model):
    """The last offset handed out on one topic; the row is the topic's lock."""

    topic = models.CharField(max_length=100, primary_key=True)
    last_offset = models.BigIntegerField(default=0)

    def __str__(self):
        return f"{self.topic} @ {self.last_offset}"


class Event(models.Model):
    """One publication on a topic with history: the log that recovery replays."""

    topic = models.CharField(max_length=100)
    offset = models.BigIntegerField()
    data = models.JSONField()
    created_at = models.DateTimeField()
    publisher = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # The client's message id (PROTOCOL.md "publish.id"), for idempotent resends.
    client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["topic", "offset"], name="event_topic_offset")
        ]
        indexes = [
            models.Index(fields=["topic", "publisher", "client_id"], name="event_client_id"),
            models.Index(fields=["created_at"], name="event_created_at"),
        ]
        ordering = ["topic", "offset"]

    def __str__(self):
        return f"{self.topic}#{self.offset}"


class Message(models.Model):
    """A chat message; its `offset` is its event's offset on `room:<slug>`."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="messages"
    )
    text = models.TextField(max_length=2000)
    offset = models.BigIntegerField()
    created_at = models.DateTimeField()

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


class LiveConnection(models.Model):
    """
    A live WebSocket connection. No table: the admin page lists the connection
    registry (realtime.connections), and this model gives it a place, a
    permission and log entries in the admin.
    """

    connection_id = models.CharField(max_length=64, primary_key=True)

    class Meta:
        managed = False
        verbose_name = "live connection"
        verbose_name_plural = "live connections"
        default_permissions = ("view", "change")

    def __str__(self):
        return self.connection_id
