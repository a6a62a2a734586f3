"""
The gateway's own tables: each topic's sequence (its last offset, and the row
that serialises its publishers), the event log that recovery replays, and the
live connections' place in the admin. Nothing here knows what a topic is about.
"""

from django.conf import settings
from django.db import models


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


class LiveConnection(models.Model):
    """
    A live WebSocket connection. No table: the admin page lists the connection
    registry (realtime.gateway.registry), and this model gives it a place, a
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
