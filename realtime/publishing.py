"""
`publish()`: the one way anything reaches subscribers, from any producer.

It validates `data` against the topic's family, numbers the event (gapless per
topic, under the topic's sequence row lock), stores it with what it stands for
(a message, a notification, an announcement) and hands it to the channel layer
when the transaction commits, never for a rolled-back one.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from realtime.models import Event, TopicSequence
from realtime.topics import Topic, parse_topic

logger = logging.getLogger(__name__)

IDEMPOTENCY_WINDOW = timedelta(hours=24)
PRUNE_EVERY = 200  # offsets between two prunes of a topic's history


@dataclass(frozen=True)
class Publication:
    """What `publish()` did: the event's offset, and whether it was a known resend."""

    topic: str
    offset: int | None
    ts: str
    data: dict
    duplicate: bool = False


def group_name(topic: str) -> str:
    """The channel-layer group of a topic (group names allow no colon)."""
    return "topic." + topic.replace(":", ".")


def event_frame(topic: str, offset: int | None, ts: str, data: dict) -> dict:
    return {"type": "event", "topic": topic, "offset": offset, "ts": ts, "data": data}


def publish(
    topic: str | Topic,
    data: dict,
    *,
    publisher=None,
    client_id: str | None = None,
) -> Publication:
    """
    Publish `data` on `topic` as `publisher` (None for the server itself).

    Raises UnknownTopic, NotFound or Invalid. Does not check who may publish
    from a socket: callers that act for a user check `check_publish` first.
    """
    if not isinstance(topic, Topic):
        topic = parse_topic(topic)
    cleaned = topic.family.clean(topic, data)
    with transaction.atomic():
        if topic.history and client_id is not None and publisher is not None:
            earlier = (
                Event.objects.filter(
                    topic=topic.name,
                    publisher=publisher,
                    client_id=client_id,
                    created_at__gte=timezone.now() - IDEMPOTENCY_WINDOW,
                )
                .order_by("offset")
                .first()
            )
            if earlier is not None:
                return Publication(
                    topic=topic.name,
                    offset=earlier.offset,
                    ts=earlier.created_at.isoformat(),
                    data=earlier.data,
                    duplicate=True,
                )
        created_at = timezone.now()
        offset = next_offset(topic.name) if topic.history else None
        event_data = topic.family.record(
            topic, cleaned, publisher=publisher, offset=offset, created_at=created_at
        )
        if topic.history:
            Event.objects.create(
                topic=topic.name,
                offset=offset,
                data=event_data,
                created_at=created_at,
                publisher=publisher,
                client_id=client_id,
            )
            if offset % PRUNE_EVERY == 0:
                events_prune(topic=topic.name)
        publication = Publication(
            topic=topic.name, offset=offset, ts=created_at.isoformat(), data=event_data
        )
        transaction.on_commit(lambda: broadcast(publication))
    return publication


apublish = sync_to_async(publish)


def broadcast(publication: Publication) -> None:
    """Hand a stored publication to the channel layer (at most once; offsets fill gaps)."""
    message = {
        "type": "realtime.event",
        "topic": publication.topic,
        "offset": publication.offset,
        "ts": publication.ts,
        "data": publication.data,
    }
    try:
        async_to_sync(get_channel_layer().group_send)(group_name(publication.topic), message)
    except Exception:
        # Stored already: subscribers recover it by offset once the layer is back.
        logger.exception("channel layer refused %s#%s", publication.topic, publication.offset)


def next_offset(topic: str) -> int:
    """Take the topic's next offset; the row stays locked until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO realtime_topicsequence (topic, last_offset) VALUES (%s, 1) "
            "ON CONFLICT (topic) DO UPDATE "
            "SET last_offset = realtime_topicsequence.last_offset + 1 "
            "RETURNING last_offset",
            [topic],
        )
        return cursor.fetchone()[0]


def topic_offset(topic: str) -> int:
    """The latest offset of a topic with history (0 before its first event)."""
    return topic_offsets([topic])[topic]


def topic_offsets(topics: list[str]) -> dict[str, int]:
    """The latest offset of each of `topics` (0 for those without events), in one query."""
    found = dict(TopicSequence.objects.filter(topic__in=topics).values_list("topic", "last_offset"))
    return {topic: found.get(topic, 0) for topic in topics}


def events_since(topic: str, since: int) -> tuple[list[dict], bool]:
    """
    The retained events after offset `since` as event frames, and whether that
    is everything the client missed (False: some were pruned, nothing returned).
    """
    latest = topic_offset(topic)
    if since > latest:
        return [], False
    if since == latest:
        return [], True
    events = list(
        Event.objects.filter(topic=topic, offset__gt=since)
        .order_by("offset")
        .values_list("offset", "created_at", "data")
    )
    if not events or events[0][0] != since + 1:
        return [], False
    return [event_frame(topic, offset, ts.isoformat(), data) for offset, ts, data in events], True


def events_between(topic: str, after: int, before: int) -> list[dict]:
    """Event frames with `after` < offset < `before`, for filling a delivery gap."""
    return [
        event_frame(topic, offset, ts.isoformat(), data)
        for offset, ts, data in Event.objects.filter(
            topic=topic, offset__gt=after, offset__lt=before
        )
        .order_by("offset")
        .values_list("offset", "created_at", "data")
    ]


def events_prune(*, topic: str | None = None) -> int:
    """Forget events that are both older than the retention time and not among the newest N."""
    keep_events = settings.REALTIME["RETAIN_EVENTS"]
    cutoff = timezone.now() - timedelta(seconds=settings.REALTIME["RETAIN_SECONDS"])
    sequences = TopicSequence.objects.all()
    if topic is not None:
        sequences = sequences.filter(topic=topic)
    deleted = 0
    for sequence in sequences:
        deleted += Event.objects.filter(
            topic=sequence.topic,
            offset__lte=sequence.last_offset - keep_events,
            created_at__lt=cutoff,
        ).delete()[0]
    return deleted
