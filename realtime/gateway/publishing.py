"""
`publish()`: the one way anything reaches subscribers, from any producer.

It validates `data` against the topic's family, numbers the event (gapless per
topic, under the topic's sequence row lock), stores it with what it stands for
(a message, a notification, an announcement) and hands it to the channel layer
when the transaction commits, never for a rolled-back one.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import timedelta

from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.utils import timezone

from realtime.gateway import metrics, outages
from realtime.gateway.control import send_event
from realtime.gateway.errors import RealtimeError
from realtime.gateway.history import events_prune
from realtime.gateway.models import Event
from realtime.gateway.topics import Recording, Topic, batch_memo, parse_topic

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


@dataclass
class PublishRequest:
    """One publish to store: `data` on `topic` by `publisher` (None: the server)."""

    topic: Topic
    data: dict
    publisher: object = None
    client_id: str | None = None
    # A socket's publish: the user (anonymous included) whose right to publish
    # the family checks, as of now; `publisher` is that user when signed in.
    acting_user: object = None


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
    Inside a caller's transaction the event goes out when it commits.
    """
    if not isinstance(topic, Topic):
        topic = parse_topic(topic)
    request = PublishRequest(topic=topic, data=data, publisher=publisher, client_id=client_id)
    with transaction.atomic():
        try:
            [result] = store_batch([request])
        except RecordFailed as failed:
            raise failed.__cause__ from None  # this atomic block undoes its writes
        if isinstance(result, Exception):
            raise result
        if not result.duplicate:
            transaction.on_commit(lambda: broadcast(result))
    return result


class RecordFailed(Exception):
    """A family's `record` failed in a batch stored without savepoints: store it again with them."""


def store_batch(
    requests: list[PublishRequest], *, isolate: bool = False
) -> list[Publication | RealtimeError]:
    """
    Store every request in the caller's transaction, one result per request, in order.

    Group commit (issue 12): each topic's sequence row is locked once (topics
    in name order, so two processes never wait on each other in a cycle) and
    its offsets handed out as a block in the order of `requests`; the events
    are inserted in bulk. A request its family refuses gets its error and
    takes no offset: its batch-mates are stored without a gap.

    Without `isolate`, each topic's family records its publications of the
    batch in one `record_batch`, without a savepoint (a savepoint is two more
    round trips per publish): if it fails, RecordFailed is raised and the
    caller rolls the batch back and stores it again with `isolate`, where each
    publication is recorded alone in its own savepoint and fails alone.
    Refusals by `check_publish` and `clean`, which write nothing, need no
    savepoint.
    """
    results: list[Publication | RealtimeError | None] = [None] * len(requests)
    by_topic: dict[str, list[int]] = {}
    for index, request in enumerate(requests):
        by_topic.setdefault(request.topic.name, []).append(index)
    events = []
    started = time.perf_counter()
    with batch_memo():
        lasts = lock_sequences(
            [name for name in by_topic if requests[by_topic[name][0]].topic.history]
        )
        earlier = earlier_publishes(requests)
        before = dict(lasts)
        for name in sorted(by_topic):
            topic = requests[by_topic[name][0]].topic
            lasts[name] = store_topic(
                topic,
                requests,
                by_topic[name],
                results,
                earlier,
                lasts.get(name),
                isolate=isolate,
                events=events,
            )
        advanced = {name: lasts[name] for name in before if lasts[name] != before[name]}
        sequences_advance(advanced)
    if events:
        Event.objects.bulk_create(events)
    for name, last in advanced.items():
        if last // PRUNE_EVERY > before[name] // PRUNE_EVERY:
            events_prune(topic=name)
    for request, result in zip(requests, results, strict=True):
        if isinstance(result, Publication) and not result.duplicate:
            metrics.publishes.labels(request.topic.family.name).inc()
    metrics.publish_batch_size.observe(len(requests))
    metrics.publish_seconds.observe(time.perf_counter() - started)
    return results


def store_topic(
    topic: Topic,
    requests: list[PublishRequest],
    indexes: list[int],
    results: list,
    earlier: dict,
    last: int | None,
    *,
    isolate: bool,
    events: list[Event],
) -> int | None:
    """
    Store one topic's requests of a batch (`results` filled in at `indexes`):
    the topic's last offset after them. Without `isolate` its family records
    them in one `record_batch` and their events are added to `events` for one
    insert; with it, each is recorded alone in a savepoint, its event with it.
    """
    accepted: list[tuple[int, Recording]] = []
    first_of: dict[tuple, int] = {}  # a resend key -> the index of its first publish here
    resends: list[tuple[int, tuple]] = []
    for index in indexes:
        request = requests[index]
        key = resend_key(request)
        if key is not None and key in earlier:
            results[index] = replace(earlier[key], duplicate=True)
            continue
        if key is not None and key in first_of:
            resends.append((index, key))
            continue
        try:
            if request.acting_user is not None:
                topic.family.check_publish(request.acting_user, topic)
            recording = Recording(
                data=topic.family.clean(topic, request.data),
                publisher=request.publisher,
                offset=last + 1 if topic.history else None,
                created_at=timezone.now(),
            )
            if isolate:
                with transaction.atomic():  # a savepoint: its writes undone alone if it fails
                    [data] = topic.family.record_batch(topic, [recording])
                    results[index] = publication_of(topic, recording, data)
                    if topic.history:
                        event_of(request, recording, data).save()
        except RealtimeError as error:
            results[index] = error
            continue
        except outages.DATABASE_DOWN:
            raise  # the whole batch: nothing can be stored now
        except Exception:
            # A fault in one publish (a family's bug) fails it alone.
            logger.exception("publish to %s failed", topic.name)
            results[index] = RealtimeError("The server failed to store this; it was logged.")
            continue
        if topic.history:
            last = recording.offset
        if key is not None:
            first_of[key] = index
        accepted.append((index, recording))
    if accepted and not isolate:
        try:
            recorded = topic.family.record_batch(topic, [recording for _, recording in accepted])
        except Exception as exc:
            raise RecordFailed from exc
        for (index, recording), data in zip(accepted, recorded, strict=True):
            results[index] = publication_of(topic, recording, data)
            if topic.history:
                events.append(event_of(requests[index], recording, data))
    for index, key in resends:
        first = results[first_of[key]]
        results[index] = replace(first, duplicate=True) if isinstance(first, Publication) else first
    return last


def event_of(request: PublishRequest, recording: Recording, data: dict) -> Event:
    return Event(
        topic=request.topic.name,
        offset=recording.offset,
        data=data,
        created_at=recording.created_at,
        publisher=request.publisher,
        client_id=request.client_id,
    )


def publication_of(topic: Topic, recording: Recording, data: dict) -> Publication:
    return Publication(
        topic=topic.name, offset=recording.offset, ts=recording.created_at.isoformat(), data=data
    )


def resend_key(request: PublishRequest) -> tuple[str, int, str] | None:
    """What makes a publish a resend of an earlier one: its topic, publisher and id."""
    if request.client_id is None or request.publisher is None:
        return None
    if not request.publisher.is_authenticated or not request.topic.history:
        return None
    return (request.topic.name, request.publisher.pk, request.client_id)


def earlier_publishes(requests: list[PublishRequest]) -> dict:
    """The stored publications these requests would resend (one query per batch)."""
    keys = {key for key in map(resend_key, requests) if key is not None}
    if not keys:
        return {}
    found = {}
    rows = (
        Event.objects.filter(
            topic__in={topic for topic, _, _ in keys},
            publisher_id__in={user_id for _, user_id, _ in keys},
            client_id__in={client_id for _, _, client_id in keys},
            created_at__gte=timezone.now() - IDEMPOTENCY_WINDOW,
        )
        .order_by("-offset")
        .values_list("topic", "publisher_id", "client_id", "offset", "created_at", "data")
    )
    for topic, publisher_id, client_id, offset, created_at, data in rows:
        # Newest first, so the first publish with this id is the one kept.
        found[(topic, publisher_id, client_id)] = Publication(
            topic=topic, offset=offset, ts=created_at.isoformat(), data=data
        )
    return {key: found[key] for key in keys if key in found}


def publish_as(user, topic: Topic, data: dict, *, client_id: str | None = None) -> Publication:
    """A publish on a user's behalf: the family's publish rule, then publish()."""
    topic.family.check_publish(user, topic)
    return publish(
        topic, data, publisher=user if user.is_authenticated else None, client_id=client_id
    )


# Set while a database thread stores a batch for the event loop: publications
# that commit with it (a mention's notification) are handed back to the loop
# rather than sent from the database thread.
_handed_back: ContextVar[list | None] = ContextVar("realtime_handed_back", default=None)


@contextmanager
def broadcasts_handed_back() -> Iterator[list[Publication]]:
    """Collect what would be broadcast on commit, for the caller to send from its loop."""
    collected: list[Publication] = []
    token = _handed_back.set(collected)
    try:
        yield collected
    finally:
        _handed_back.reset(token)


def broadcast(publication: Publication) -> None:
    """Hand a stored publication to the channel layer (at most once; offsets fill gaps)."""
    collected = _handed_back.get()
    if collected is not None:
        collected.append(publication)
        return
    try:
        async_to_sync(send_event)(
            publication.topic, publication.offset, publication.ts, publication.data
        )
    except Exception as exc:
        # Stored already: the hubs fill it in by offset once the layer is back.
        outages.channel_layer.failed(exc)
    else:
        outages.channel_layer.succeeded()


def lock_sequences(topics: list[str]) -> dict[str, int]:
    """
    Lock the topics' sequence rows (made if missing) until the transaction ends,
    in name order (two batches never wait on each other in a cycle), in one
    statement; their last offsets. Taken before looking for an earlier publish
    with the same id, so a resend racing its original (on another process)
    waits for its commit and then finds it, rather than both being stored.
    """
    if not topics:
        return {}
    topics = sorted(topics)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO realtime_topicsequence (topic, last_offset) VALUES "
            + ", ".join(["(%s, 0)"] * len(topics))
            + " ON CONFLICT (topic) DO UPDATE "
            "SET last_offset = realtime_topicsequence.last_offset "
            "RETURNING topic, last_offset",
            topics,
        )
        return dict(cursor.fetchall())


def sequences_advance(last_offsets: dict[str, int]) -> None:
    """Record each topic's last offset handed out (rows locked by lock_sequences)."""
    if not last_offsets:
        return
    cases = " ".join(["WHEN %s THEN %s"] * len(last_offsets))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE realtime_topicsequence SET last_offset = CASE topic {cases} END "
            "WHERE topic IN (" + ", ".join(["%s"] * len(last_offsets)) + ")",
            [value for item in last_offsets.items() for value in item] + list(last_offsets),
        )
