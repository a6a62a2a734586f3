"""
The chat site's topic families (PROTOCOL.md, Topics): `room:<slug>`,
`user:<id>`, `broadcast` and `dashboard`. Each is one `TopicFamily` of the
gateway; `RealtimeConfig.ready()` imports this module to register them.
"""

from django.contrib.auth import get_user_model

from realtime.chat.dashboard import dashboard_sample_record, dashboard_stats
from realtime.chat.models import SLUG_PATTERN, Announcement, Notification, Room
from realtime.chat.payloads import (
    announcement_data,
    clean_text,
    message_id,
    notification_data,
)
from realtime.chat.selectors import room_visible_to
from realtime.chat.services import (
    message_store_delete,
    message_store_edit,
    messages_store,
)
from realtime.gateway import metrics
from realtime.gateway.errors import Forbidden, Invalid, NotFound
from realtime.gateway.protocol import is_text
from realtime.gateway.topics import GatewayStats, Topic, TopicFamily, memoized, register

NOTIFICATION_FIELDS = (("title", True, 200), ("body", False, 2000), ("url", False, 500))


def is_new_message(data: dict) -> bool:
    return "edit" not in data and "delete" not in data


@register
class RoomTopic(TopicFamily):
    """A chat room: signed-in users; members and staff only when private."""

    name = "room"
    key_pattern = SLUG_PATTERN
    example = "room:general"
    presence = True
    rest_publishing = "caller"

    def room(self, topic: Topic) -> Room | None:
        # A lambda: the query is built only when the batch has not looked it up yet.
        return memoized(("room", topic.key), lambda: Room.objects.filter(slug=topic.key).first())

    def check_subscribe(self, user, topic: Topic) -> None:
        if not user.is_authenticated:
            raise Forbidden("Sign in to join rooms.")
        room = self.room(topic)
        if room is None or not room_visible_to(room, user):
            raise NotFound(f"No room {topic.key!r}.")

    check_publish = check_subscribe

    def clean(self, topic: Topic, data: dict) -> dict:
        """A new message `{text}`, an edit `{edit: <id>, text}` or a deletion `{delete: <id>}`."""
        if "edit" in data and "delete" in data:
            raise Invalid("data takes 'edit' or 'delete', not both.")
        if "edit" in data:
            return {"edit": message_id(data, "edit"), "text": clean_text(data)}
        if "delete" in data:
            return {"delete": message_id(data, "delete")}
        return {"text": clean_text(data)}

    def record_batch(self, topic, recordings):
        """New messages in one insert; edits and deletions one by one, in order."""
        new = [r for r in recordings if is_new_message(r.data)]
        stored = iter(
            messages_store(
                room=self.recording_room(topic, [r.publisher for r in new]),
                entries=[(r.publisher, r.data["text"], r.offset, r.created_at) for r in new],
            )
            if new
            else ()
        )
        return [
            next(stored) if is_new_message(r.data) else self.record_one(topic, r)
            for r in recordings
        ]

    def recording_room(self, topic, publishers) -> Room:
        """The topic's room, when every publication has an author."""
        room = self.room(topic)
        if room is None:
            raise NotFound(f"No room {topic.key!r}.")
        if any(publisher is None for publisher in publishers):
            raise Invalid("Room messages need an author.")
        return room

    def record(self, topic, data, *, publisher, offset, created_at):
        room = self.recording_room(topic, [publisher])
        if "edit" in data:
            return message_store_edit(
                room=room,
                actor=publisher,
                message_id=data["edit"],
                text=data["text"],
                edited_at=created_at,
            )
        if "delete" in data:
            return message_store_delete(room=room, actor=publisher, message_id=data["delete"])
        [stored] = messages_store(
            room=room, entries=[(publisher, data["text"], offset, created_at)]
        )
        return stored


@register
class UserTopic(TopicFamily):
    """One user's notifications: only that user subscribes, only the server publishes."""

    name = "user"
    key_pattern = r"[1-9][0-9]{0,17}"
    example = "user:42"
    rest_publishing = "server"
    # Over REST a notification only (no `kind: read` without marking anything read).
    rest_fields = tuple(field for field, _, _ in NOTIFICATION_FIELDS)

    def check_subscribe(self, user, topic: Topic) -> None:
        if not user.is_authenticated or str(user.pk) != topic.key:
            raise Forbidden("Only that user may subscribe to their notifications.")

    def clean(self, topic: Topic, data: dict) -> dict:
        if data.get("kind") == "read":
            ids = data.get("ids")
            if not isinstance(ids, list) or not all(type(i) is int for i in ids):
                raise Invalid("data.ids must be a list of notification ids.")
            return {"kind": "read", "ids": ids}
        fields = {}
        for field, required, limit in NOTIFICATION_FIELDS:
            value = data.get(field, "")
            if not is_text(value):
                raise Invalid(f"data.{field} must be a string of valid Unicode text.")
            value = value.strip()
            if required and not value:
                raise Invalid(f"data.{field} is required.")
            if len(value) > limit:
                raise Invalid(f"data.{field} must be at most {limit} characters.")
            fields[field] = value
        return fields

    def record(self, topic, data, *, publisher, offset, created_at):
        if data.get("kind") == "read":
            return data
        user = get_user_model().objects.filter(pk=int(topic.key)).first()
        if user is None:
            raise NotFound(f"No user {topic.key}.")
        notification = Notification.objects.create(
            user=user, offset=offset, created_at=created_at, **data
        )
        return notification_data(notification)


@register
class BroadcastTopic(TopicFamily):
    """Site-wide announcements: everyone listens, staff post."""

    name = "broadcast"
    rest_publishing = "caller"

    def check_subscribe(self, user, topic: Topic) -> None:
        return None

    def check_publish(self, user, topic: Topic) -> None:
        if not user.is_staff:
            raise Forbidden("Only staff may post announcements.")

    def clean(self, topic: Topic, data: dict) -> dict:
        return {"text": clean_text(data)}

    def record(self, topic, data, *, publisher, offset, created_at):
        announcement = Announcement.objects.create(
            text=data["text"], author=publisher, offset=offset, created_at=created_at
        )
        return announcement_data(announcement)


@register
class DashboardTopic(TopicFamily):
    """Live statistics for staff, fed by the server every second."""

    name = "dashboard"
    history = False
    feed_interval = 1.0

    def check_subscribe(self, user, topic: Topic) -> None:
        if not user.is_staff:
            raise Forbidden("The dashboard is for staff.")

    def clean(self, topic: Topic, data: dict) -> dict:
        raise Invalid("The dashboard is published by the server only.")

    def feed(self, topic: Topic, stats: GatewayStats) -> dict:
        data = {
            **dashboard_stats(),
            "delivery_lag_ms": round(stats.delivery_lag_ms, 1),
            # The machine's counters, as /metrics serves them to Prometheus.
            "totals": metrics.totals(),
        }
        # Kept for a dashboard that opens later (GET /api/dashboard/history/).
        dashboard_sample_record(data)
        return data
