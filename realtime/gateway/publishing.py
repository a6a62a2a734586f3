"""
`publish()`: the one way anything reaches subscribers, from any producer.

It validates `data` against the topic's family, numbers the event (gapless per
topic, under the topic's sequence row lock), stores it with what it stands for
(a message, a notification, an announcement) and hands it to the channel layer
when the transaction commits, never for a rolled-back one.
"""

import time
from dataclasses import dataclass
from datetime import timedelta

from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection, transaction
from django.utils import timezone

from realtime.gateway import metrics, outages
from realtime.gateway.control import send_event
from realtime.gateway.history import events_prune
from realtime.gateway.models import Event
from realtime.gateway.topics import Topic, parse_topic

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
    started = time.perf_counter()
    with transaction.atomic():
        if topic.history and client_id is not None and publisher is not None:
            # Take the topic's lock before looking for an earlier publish with this
            # id: a resend racing its original (on another process) waits for its
            # commit and then finds it, rather than both being stored.
            lock_sequence(topic.name)
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
    metrics.publish_seconds.observe(time.perf_counter() - started)
    metrics.publishes.labels(topic.family.name).inc()
    return publication


apublish = sync_to_async(publish)


def publish_as(user, topic: Topic, data: dict, *, client_id: str | None = None) -> Publication:
    """A publish on a user's behalf (a socket's): the family's publish rule, then publish()."""
    topic.family.check_publish(user, topic)
    return publish(
        topic, data, publisher=user if user.is_authenticated else None, client_id=client_id
    )


def broadcast(publication: Publication) -> None:
    """Hand a stored publication to the channel layer (at most once; offsets fill gaps)."""
    try:
        async_to_sync(send_event)(
            publication.topic, publication.offset, publication.ts, publication.data
        )
    except Exception as exc:
        # Stored already: the hubs fill it in by offset once the layer is back.
        outages.channel_layer.failed(exc)
    else:
        outages.channel_layer.succeeded()


def lock_sequence(topic: str) -> None:
    """Lock the topic's sequence row (made if missing) until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO realtime_topicsequence (topic, last_offset) VALUES (%s, 0) "
            "ON CONFLICT (topic) DO UPDATE "
            "SET last_offset = realtime_topicsequence.last_offset",
            [topic],
        )


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
