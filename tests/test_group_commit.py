"""
Group commit (issue 12): socket publishes that arrive while a batch commits are
stored together in the next one. Offsets stay unique, gapless and in commit
order per topic; a refused publish fails alone; a resend is stored once,
inside one batch or across two.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from realtime.chat.models import Message
from realtime.gateway import publishing
from realtime.gateway.publishing import PublishRequest, store_batch
from realtime.gateway.testing import connect
from realtime.gateway.topics import parse_topic
from tests.factories import RoomFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PUBLISHERS = 20
EACH = 10


@pytest.fixture
def batch_sizes(monkeypatch):
    """The size of every batch stored (the real store_batch runs)."""
    sizes = []
    real = publishing.store_batch

    def recording(requests, **options):
        sizes.append(len(requests))
        return real(requests, **options)

    # Imported before anything is patched: importing it after would bind its
    # store_batch to the patch, and undoing the patch would leave it there.
    from realtime.gateway import batching

    monkeypatch.setattr(publishing, "store_batch", recording)
    monkeypatch.setattr(batching, "store_batch", recording)
    return sizes


async def fire(client, topic: str, count: int, tag: str, **fields) -> None:
    """Send `count` publishes without waiting for their acks."""
    for i in range(count):
        await client.send(
            {
                "type": "publish",
                "topic": topic,
                "ref": f"{tag}-{i}",
                "data": {"text": f"{tag} {i}"},
                **fields,
            }
        )


async def replies(client, count: int) -> list[dict]:
    """The next `count` acks and errors, in the order they arrive."""
    found = []
    while len(found) < count:
        frame = await client.receive(timeout=15)
        if frame["type"] in ("ack", "error"):
            found.append(frame)
    return found


async def events_of(client, count: int) -> list[dict]:
    found = []
    while len(found) < count:
        frame = await client.receive(timeout=15)
        if frame["type"] == "event":
            found.append(frame)
    return found


async def test_concurrent_publishers_into_one_room_get_gapless_offsets_in_commit_order(
    require_postgres, room, batch_sizes
):
    users = [await sync_to_async(UserFactory)() for _ in range(PUBLISHERS)]
    publishers = [await connect(user) for user in users]
    listeners = [await connect(user) for user in users[:2]]
    for listener in listeners:
        await listener.join(room.topic)
    await asyncio.gather(
        *(fire(client, room.topic, EACH, f"p{n}") for n, client in enumerate(publishers))
    )
    acks = await asyncio.gather(*(replies(client, EACH) for client in publishers))
    total = PUBLISHERS * EACH
    offsets = [frame["offset"] for mine in acks for frame in mine]
    assert all(frame["type"] == "ack" for mine in acks for frame in mine)
    assert sorted(offsets) == list(range(1, total + 1))
    for n, mine in enumerate(acks):
        # Each socket's publishes were committed in the order it sent them.
        assert [frame["ref"] for frame in mine] == [f"p{n}-{i}" for i in range(EACH)]
        assert [frame["offset"] for frame in mine] == sorted(frame["offset"] for frame in mine)
    texts = {}
    for listener in listeners:
        events = await events_of(listener, total)
        assert [event["offset"] for event in events] == list(range(1, total + 1))
        texts[listener] = [event["data"]["text"] for event in events]
    assert texts[listeners[0]] == texts[listeners[1]]
    stored = await sync_to_async(list)(
        Message.objects.filter(room=room).order_by("offset").values_list("offset", "text")
    )
    assert [text for _, text in stored] == texts[listeners[0]]
    assert max(batch_sizes) > 1, batch_sizes  # they really were committed together
    for client in [*publishers, *listeners]:
        await client.close()


async def test_concurrent_publishers_into_many_rooms_keep_each_rooms_offsets_gapless(
    require_postgres, user, batch_sizes
):
    rooms = [await sync_to_async(RoomFactory)(slug=f"r{n}", owner=user) for n in range(5)]
    users = [await sync_to_async(UserFactory)() for _ in range(PUBLISHERS)]
    publishers = [await connect(u) for u in users]
    await asyncio.gather(
        *(
            fire(client, rooms[n % len(rooms)].topic, EACH, f"p{n}")
            for n, client in enumerate(publishers)
        )
    )
    acks = await asyncio.gather(*(replies(client, EACH) for client in publishers))
    by_topic: dict[str, list[int]] = {}
    for mine in acks:
        for frame in mine:
            assert frame["type"] == "ack", frame
            by_topic.setdefault(frame["topic"], []).append(frame["offset"])
    per_room = PUBLISHERS * EACH // len(rooms)
    assert {topic: sorted(offsets) for topic, offsets in by_topic.items()} == {
        room.topic: list(range(1, per_room + 1)) for room in rooms
    }
    assert max(batch_sizes) > 1, batch_sizes
    for client in publishers:
        await client.close()


async def test_a_refused_publish_fails_alone_and_takes_no_offset(
    require_postgres, room, private_room, batch_sizes
):
    users = [await sync_to_async(UserFactory)() for _ in range(6)]
    clients = [await connect(u) for u in users]
    listener = await connect(users[0])
    await listener.join(room.topic)
    sends = []
    for n, client in enumerate(clients):
        if n == 2:
            frame = {"type": "publish", "topic": room.topic, "ref": "bad", "data": {"text": " "}}
        elif n == 4:  # not a member of the private room
            frame = {"type": "publish", "topic": private_room.topic, "ref": "bad", "data": {}}
            frame["data"] = {"text": "let me in"}
        else:
            frame = {"type": "publish", "topic": room.topic, "ref": "ok", "data": {"text": "ok"}}
        sends.append(client.send(frame))
    await asyncio.gather(*sends)
    answers = await asyncio.gather(*(replies(client, 1) for client in clients))
    answers = [mine[0] for mine in answers]
    assert (answers[2]["type"], answers[2]["code"], answers[2]["ref"]) == (
        "error",
        "invalid",
        "bad",
    )
    assert (answers[4]["type"], answers[4]["code"]) == ("error", "not_found")
    acked = sorted(a["offset"] for n, a in enumerate(answers) if n not in (2, 4))
    assert acked == [1, 2, 3, 4]
    events = await events_of(listener, 4)
    assert [event["offset"] for event in events] == [1, 2, 3, 4]
    assert await listener.nothing_arrives(0.3)
    for client in [*clients, listener]:
        await client.close()


def test_one_batch_stores_what_it_may_and_refuses_the_rest_without_a_gap(room, user, other_user):
    topic = parse_topic(room.topic)
    requests = [
        PublishRequest(topic=topic, data={"text": "first"}, acting_user=user),
        PublishRequest(topic=topic, data={"text": ""}, acting_user=user),
        PublishRequest(topic=topic, data={"text": "second"}, acting_user=other_user),
    ]
    for request in requests:
        request.publisher = request.acting_user
    from django.db import transaction

    with transaction.atomic():
        first, refused, second = store_batch(requests)
    assert (first.offset, second.offset) == (1, 2)
    assert refused.code == "invalid"
    assert list(Message.objects.order_by("offset").values_list("text", flat=True)) == [
        "first",
        "second",
    ]


def test_a_resend_is_stored_once_inside_one_batch_and_across_batches(room, user):
    from django.db import transaction

    topic = parse_topic(room.topic)

    def request(text, client_id):
        return PublishRequest(
            topic=topic, data={"text": text}, publisher=user, acting_user=user, client_id=client_id
        )

    with transaction.atomic():
        original, resend, other = store_batch(
            [request("hello", "m-1"), request("hello", "m-1"), request("world", "m-2")]
        )
    assert (original.offset, resend.offset, other.offset) == (1, 1, 2)
    assert (original.duplicate, resend.duplicate, other.duplicate) == (False, True, False)
    with transaction.atomic():
        [later] = store_batch([request("hello", "m-1")])
    assert (later.offset, later.duplicate) == (1, True)
    assert Message.objects.count() == 2


async def test_a_resend_in_the_same_batch_over_a_socket_is_acked_with_one_offset(room, user):
    client = await connect(user)
    listener = await connect(user)
    await listener.join(room.topic)
    await fire(client, room.topic, 1, "a", id="same-id")
    await fire(client, room.topic, 1, "b", id="same-id")
    first, second = await replies(client, 2)
    assert (first["type"], second["type"]) == ("ack", "ack")
    assert first["offset"] == second["offset"] == 1
    [event] = await events_of(listener, 1)
    assert event["data"]["text"] == "a 0"
    assert await listener.nothing_arrives(0.3)
    await client.close()
    await listener.close()


def test_a_publish_refused_in_its_familys_record_fails_alone(room, user, other_user):
    """The batch is stored again with a savepoint each: its batch-mates keep their offsets."""
    from realtime.chat.services import message_create
    from realtime.gateway.batching import commit_socket_batch

    theirs = message_create(room=room, author=other_user, text="not yours")
    topic = parse_topic(room.topic)
    requests = [
        PublishRequest(topic=topic, data={"text": "first"}, acting_user=user),
        # Refused inside record (only the author may edit), after the checks passed.
        PublishRequest(
            topic=topic, data={"edit": theirs.data["id"], "text": "x"}, acting_user=user
        ),
        PublishRequest(topic=topic, data={"text": "second"}, acting_user=user),
    ]
    (first, refused, second), _ = commit_socket_batch(requests)
    assert refused.code == "forbidden"
    assert (first.offset, second.offset) == (theirs.offset + 1, theirs.offset + 2)
    assert list(Message.objects.order_by("offset").values_list("text", flat=True)) == [
        "not yours",
        "first",
        "second",
    ]


def test_a_batch_of_new_messages_edits_and_deletions_is_recorded_in_order(room, user, other_user):
    """
    New messages go in with one insert; each event carries its own message's
    id, mentions are found and notified, and an edit and a deletion between
    them apply where they stand.
    """
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from realtime.chat.models import Notification
    from realtime.chat.services import message_create

    earlier = message_create(room=room, author=user, text="typo")
    doomed = message_create(room=room, author=user, text="oops")
    topic = parse_topic(room.topic)

    def request(**data):
        return PublishRequest(topic=topic, data=data, publisher=user, acting_user=user)

    requests = [request(text=f"message {i}") for i in range(20)]
    requests[3] = request(text=f"hello @{other_user.username}")
    requests[5] = request(edit=earlier.data["id"], text="fixed")
    requests[9] = request(delete=doomed.data["id"])
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        results = store_batch(requests)
    message_inserts = [q for q in queries if q["sql"].startswith('INSERT INTO "realtime_message"')]
    assert len(message_inserts) == 1
    assert [result.offset for result in results] == list(range(3, 23))
    stored = {message.pk: message for message in Message.objects.filter(offset__gte=3)}
    for request_, result in zip(requests, results, strict=True):
        if "text" in request_.data and "edit" not in request_.data:
            message = stored[result.data["id"]]
            assert (message.text, message.offset) == (request_.data["text"], result.offset)
    assert results[3].data["mentions"] == [{"id": other_user.pk, "username": other_user.username}]
    assert Notification.objects.filter(user=other_user).count() == 1
    assert results[5].data["kind"] == "message_edited"
    assert Message.objects.get(pk=earlier.data["id"]).text == "fixed"
    assert results[9].data == {"kind": "message_deleted", "id": doomed.data["id"]}
    assert not Message.objects.filter(pk=doomed.data["id"]).exists()
    assert len(stored) == 18
