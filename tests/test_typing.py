"""
`typing` (PROTOCOL.md, both frame tables): forwarded to the topic's other
subscribers only, at most one per user and topic every 2 s, refused where the
protocol says, never stored or replayed.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from realtime.gateway.hub import TYPING_EVERY_SECONDS
from realtime.gateway.testing import connect
from realtime.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def typing(topic="room:general", **extra):
    return {"type": "typing", "topic": topic, **extra}


async def test_typing_reaches_the_other_subscribers_and_not_the_typists_own_sockets(
    room, user, other_user
):
    watcher = await connect(other_user)
    await watcher.join("room:general")
    typist = await connect(user)
    await typist.join("room:general")
    typist_tab = await connect(user)  # the same person's other tab
    await typist_tab.join("room:general")
    await watcher.nothing_arrives(0.2)  # the typist's presence joins
    while not await watcher.nothing_arrives(0.2):
        await watcher.receive()
    await typist.send(typing())
    frame = await watcher.receive()
    assert frame == {
        "type": "typing",
        "topic": "room:general",
        "user": {"id": user.pk, "username": user.username},
    }
    assert await typist.nothing_arrives()  # no reply, no echo
    assert await typist_tab.nothing_arrives(0.1)
    for client in (watcher, typist, typist_tab):
        await client.close()


async def test_typing_is_forwarded_at_most_once_every_two_seconds(room, user, other_user):
    watcher = await connect(other_user)
    await watcher.join("room:general")
    typist = await connect(user)
    await typist.join("room:general")
    while not await watcher.nothing_arrives(0.2):
        await watcher.receive()
    for _ in range(5):
        await typist.send(typing())
    assert (await watcher.receive())["type"] == "typing"
    assert await watcher.nothing_arrives(1.0)
    assert await typist.nothing_arrives(0.1)  # the dropped ones are dropped silently
    await asyncio.sleep(TYPING_EVERY_SECONDS - 0.9)
    await typist.send(typing())
    assert (await watcher.receive())["type"] == "typing"
    for client in (watcher, typist):
        await client.close()


async def test_typing_is_never_stored_nor_replayed(room, user, other_user):
    typist = await connect(user)
    await typist.join("room:general")
    await typist.send(typing())
    await typist.publish("room:general", {"text": "hello"})
    assert await sync_to_async(Event.objects.filter(topic="room:general").count)() == 1
    late = await connect(other_user)
    await late.subscribe("room:general", since=0)
    frames = await late.receive_until("presence_state")
    assert [f["type"] for f in frames] == ["event", "presence_state"]
    await typist.close()
    await late.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "typing"}, "bad_message"),
        ({"type": "typing", "topic": 7}, "bad_message"),
        ({"type": "typing", "topic": "nope:x"}, "unknown_topic"),
        ({"type": "typing", "topic": "room:elsewhere", "ref": "t"}, "forbidden"),  # not subscribed
        ({"type": "typing", "topic": "broadcast", "ref": "t"}, "forbidden"),  # no presence
    ],
)
async def test_typing_refusals(room, user, frame, code):
    socket_ = await connect(user)
    await socket_.subscribe("broadcast")
    reply = await socket_.request(frame)
    assert (reply["type"], reply["code"]) == ("error", code)
    if "ref" in frame:
        assert reply["ref"] == "t"
    await socket_.close()


async def test_anonymous_may_not_type(room, user):
    watcher = await connect(user)
    await watcher.join("room:general")
    anonymous = await connect()
    reply = await anonymous.request(typing(ref="t"))
    assert (reply["type"], reply["code"], reply["topic"]) == ("error", "forbidden", "room:general")
    assert await watcher.nothing_arrives()
    await watcher.close()
    await anonymous.close()
