"""
History: where each topic's offsets stand, what a client that comes back with
`since` missed, and how long events are kept (PROTOCOL.md, "Offsets, history
and recovery").
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from realtime.gateway.models import Event, TopicSequence
from realtime.gateway.topics import Topic


def event_frame(topic: str, offset: int | None, ts: str, data: dict) -> dict:
    return {"type": "event", "topic": topic, "offset": offset, "ts": ts, "data": data}


def topic_offset(topic: str) -> int:
    """The latest offset of a topic with history (0 before its first event)."""
    return topic_offsets([topic])[topic]


def topic_offsets(topics: list[str]) -> dict[str, int]:
    """The latest offset of each of `topics` (0 for those without events), in one query."""
    found = dict(TopicSequence.objects.filter(topic__in=topics).values_list("topic", "last_offset"))
    return {topic: found.get(topic, 0) for topic in topics}


def events_since(topic: str, since: int) -> tuple[list[dict], bool, int]:
    """
    The retained events after offset `since` as event frames, whether that is
    everything the client missed (False: some were pruned, or more than
    REALTIME_MAX_REPLAY were missed; nothing returned), and the offset the
    subscription starts after: the last replayed, else the latest offset as
    read here, once (an event committed after this read comes live).
    """
    latest = topic_offset(topic)
    if since > latest:
        return [], False, latest
    if since == latest:
        return [], True, latest
    if latest - since > settings.REALTIME["MAX_REPLAY"]:
        return [], False, latest  # too much missed: the client reloads its state over REST
    events = list(
        Event.objects.filter(topic=topic, offset__gt=since)
        .order_by("offset")
        .values_list("offset", "created_at", "data")
    )
    if not events or events[0][0] != since + 1:
        return [], False, latest
    frames = [event_frame(topic, offset, ts.isoformat(), data) for offset, ts, data in events]
    return frames, True, frames[-1]["offset"]


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


def catch_up(*, topic: Topic, since: int | None) -> tuple[int | None, list, bool]:
    """A subscription's start: the topic's latest offset, the replay after `since`, `recovered`."""
    if not topic.history:
        return None, [], since is None or since == 0
    if since is None:
        return topic_offset(topic.name), [], True
    replay, recovered, latest = events_since(topic.name, since)
    return latest, replay, recovered


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
