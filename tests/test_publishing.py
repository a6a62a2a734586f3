"""
publish() on its own, against the real database: gapless offsets per topic,
idempotent client ids, on-commit delivery, refusals before anything is stored.
"""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from realtime.gateway.control import group_name
from realtime.gateway.errors import Invalid, NotFound, UnknownTopic
from realtime.gateway.history import catch_up, events_since, topic_offset
from realtime.gateway.models import Event
from realtime.gateway.publishing import publish
from realtime.gateway.topics import parse_topic

pytestmark = pytest.mark.django_db(transaction=True)


def listen(topic: str) -> str:
    """A channel in the topic's group: what publish() hands to every process's hub."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(topic), channel)
    return channel


def handed_over(channel: str) -> list[dict]:
    """Everything the channel holds now."""
    layer = get_channel_layer()

    async def drain() -> list[dict]:
        found = []
        while True:
            try:
                found.append(await asyncio.wait_for(layer.receive(channel), 0.05))
            except TimeoutError:
                return found

    return async_to_sync(drain)()


def test_offsets_are_gapless_per_topic(room, other_user, user):
    first = [publish("room:general", {"text": f"m{n}"}, publisher=user).offset for n in range(3)]
    assert first == [1, 2, 3]
    assert publish("broadcast", {"text": "hello"}, publisher=user).offset == 1
    assert topic_offset("room:general") == 3
    assert list(Event.objects.filter(topic="room:general").values_list("offset", flat=True)) == [
        1,
        2,
        3,
    ]


def test_a_resend_with_the_same_client_id_is_not_stored_again(room, user, other_user):
    original = publish("room:general", {"text": "once"}, publisher=user, client_id="c-1")
    resend = publish("room:general", {"text": "once"}, publisher=user, client_id="c-1")
    assert (resend.offset, resend.duplicate) == (original.offset, True)
    # The same id from another user is another message.
    other = publish("room:general", {"text": "once"}, publisher=other_user, client_id="c-1")
    assert other.offset == original.offset + 1
    assert Event.objects.filter(topic="room:general").count() == 2


def test_an_event_is_handed_to_delivery_once_and_only_after_commit(room, user):
    channel = listen("room:general")
    with transaction.atomic():
        publication = publish("room:general", {"text": "later"}, publisher=user)
        assert handed_over(channel) == []
    [message] = handed_over(channel)
    assert (message["type"], message["offset"], message["data"]["text"]) == (
        "realtime.event",
        publication.offset,
        "later",
    )


def test_a_publish_inside_a_rolled_back_transaction_never_goes_out(room, user):
    channel = listen("room:general")

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        publish("room:general", {"text": "never"}, publisher=user)
        raise Abort
    assert handed_over(channel) == []
    assert topic_offset("room:general") == 0
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("topic", "data", "error"),
    [
        ("nope:1", {"text": "x"}, UnknownTopic),
        ("room:missing", {"text": "x"}, NotFound),
        ("room:general", {"text": "   "}, Invalid),
        ("room:general", {"text": "x" * 2001}, Invalid),
    ],
)
def test_refused_publications_store_nothing(room, user, topic, data, error):
    with pytest.raises(error):
        publish(topic, data, publisher=user)
    assert not Event.objects.exists()
    assert topic_offset("room:general") == 0


def test_a_client_that_comes_back_gets_exactly_what_it_missed(room, user):
    for n in range(5):
        publish("room:general", {"text": f"m{n}"}, publisher=user)
    replay, recovered, latest = events_since("room:general", 2)
    assert (recovered, latest) == (True, 5)
    assert [frame["offset"] for frame in replay] == [3, 4, 5]
    assert events_since("room:general", 5) == ([], True, 5)
    assert events_since("room:general", 9) == ([], False, 5)  # another history
    latest, replay, recovered = catch_up(topic=parse_topic("room:general"), since=None)
    assert (latest, replay, recovered) == (5, [], True)


def test_a_resubscribe_at_the_latest_offset_starts_there_though_one_commits_meanwhile(
    room, user, monkeypatch
):
    """The event committed right after the offset is read comes live: it must not be skipped."""
    from realtime.gateway import history

    for n in range(3):
        publish("room:general", {"text": f"m{n}"}, publisher=user)
    read = history.topic_offset
    committed = []

    def read_then_someone_commits(topic):
        offset = read(topic)
        if not committed:
            committed.append(publish("room:general", {"text": "just now"}, publisher=user))
        return offset

    monkeypatch.setattr(history, "topic_offset", read_then_someone_commits)
    latest, replay, recovered = catch_up(topic=parse_topic("room:general"), since=3)
    # Subscribed at 3, so the live event 4 is delivered, not dropped as already seen.
    assert (latest, replay, recovered) == (3, [], True)
    assert committed[0].offset == 4
