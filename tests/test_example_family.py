"""
The gateway used by a project that is not chat: a live counter per document,
and a server-fed clock. This is the example the README's "For developers"
section shows, tested through the real ASGI stack with the public test client.
"""

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from realtime.gateway.errors import Forbidden, Invalid
from realtime.gateway.models import Event
from realtime.gateway.publishing import publish
from realtime.gateway.testing import connect
from realtime.gateway.topics import FAMILIES, GatewayStats, TopicFamily, register
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


class CounterTopic(TopicFamily):
    """`counter:<document>`: signed-in users add to a document's count; everyone sees it."""

    name = "counter"
    key_pattern = r"[a-z0-9-]{1,40}"
    example = "counter:readme"
    rest_publishing = "caller"  # POST /api/publish/ adds as the calling user

    def check_subscribe(self, user, topic):
        if not user.is_authenticated:
            raise Forbidden("Sign in to watch counters.")

    check_publish = check_subscribe

    def clean(self, topic, data):
        add = data.get("add")
        if type(add) is not int or not 1 <= add <= 100:
            raise Invalid("data.add must be an integer from 1 to 100.")
        return {"add": add}

    def record_batch(self, topic, recordings):
        # A batch of adds, in offset order: the total before them is the stored
        # event's just before the first (the topic's row lock is held, so no
        # other publish of this topic is in between).
        previous = Event.objects.filter(topic=topic.name, offset=recordings[0].offset - 1).first()
        total = previous.data["total"] if previous else 0
        counts = []
        for recording in recordings:
            total += recording.data["add"]
            counts.append({"kind": "count", "total": total, "by": recording.publisher.username})
        return counts


class ClockTopic(TopicFamily):
    """`clock`: the server's time and lag, fed to subscribers five times a second."""

    name = "clock"
    history = False
    feed_interval = 0.2

    def check_subscribe(self, user, topic):
        return None

    def feed(self, topic, stats: GatewayStats):
        return {"kind": "tick", "lag_ms": stats.delivery_lag_ms}


@pytest.fixture(autouse=True)
def example_families():
    register(CounterTopic)
    register(ClockTopic)
    yield
    del FAMILIES["counter"], FAMILIES["clock"]


async def test_counter_events_are_numbered_and_reach_every_subscriber():
    alice, bob = await sync_to_async(UserFactory)(), await sync_to_async(UserFactory)()
    watcher = await connect(bob)
    assert (await watcher.join("counter:readme"))["offset"] == 0
    writer = await connect(alice)
    for expected_offset, add in ((1, 2), (2, 5)):
        ack = await writer.publish("counter:readme", {"add": add})
        assert (ack["type"], ack["offset"]) == ("ack", expected_offset)
    events = [await watcher.receive(), await watcher.receive()]
    assert [(e["offset"], e["data"]["total"]) for e in events] == [(1, 2), (2, 7)]
    assert events[0]["data"]["by"] == alice.username
    assert await writer.nothing_arrives()  # publishing does not subscribe
    await watcher.close()
    await writer.close()


async def test_a_burst_of_adds_stored_in_one_batch_counts_every_one():
    """Publishes that share a batch see the totals of the ones before them."""
    writers = [await connect(await sync_to_async(UserFactory)()) for _ in range(3)]
    for writer in writers:
        for number in range(10):
            await writer.send(
                {
                    "type": "publish",
                    "topic": "counter:burst",
                    "ref": str(number),
                    "data": {"add": 1},
                }
            )
    for writer in writers:
        for _ in range(10):
            frame = await writer.receive(timeout=15)
            assert frame["type"] == "ack", frame
    totals = await sync_to_async(
        lambda: list(
            Event.objects.filter(topic="counter:burst")
            .order_by("offset")
            .values_list("offset", "data__total")
        )
    )()
    assert totals == [(offset, offset) for offset in range(1, 31)]


async def test_a_counter_refuses_bad_data_and_anonymous_users():
    user = await sync_to_async(UserFactory)()
    client = await connect(user)
    error = await client.publish("counter:readme", {"add": "many"})
    assert (error["type"], error["code"]) == ("error", "invalid")
    anonymous = await connect()
    error = await anonymous.request({"type": "subscribe", "topic": "counter:readme", "ref": "s"})
    assert (error["code"], error["ref"]) == ("forbidden", "s")
    await client.close()
    await anonymous.close()


async def test_a_client_that_comes_back_recovers_the_counts_it_missed():
    user = await sync_to_async(UserFactory)()
    for add in (1, 1, 1):
        await sync_to_async(publish)("counter:doc", {"add": add}, publisher=user)
    client = await connect(user)
    reply = await client.subscribe("counter:doc", since=1)
    assert (reply["offset"], reply["recovered"]) == (3, True)
    replay = [await client.receive(), await client.receive()]
    assert [(e["offset"], e["data"]["total"]) for e in replay] == [(2, 2), (3, 3)]
    await client.close()


async def test_the_rest_publishing_rule_is_the_familys():
    staff = await sync_to_async(StaffFactory)()
    api = APIClient()
    await sync_to_async(api.force_authenticate)(staff)
    response = await sync_to_async(api.post)(
        "/api/publish/", {"topic": "counter:api", "data": {"add": 3}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"topic": "counter:api", "offset": 1}
    refused = await sync_to_async(api.post)(
        "/api/publish/", {"topic": "clock", "data": {}}, format="json"
    )
    assert refused.status_code == 400
    assert "topic" in refused.json()


async def test_a_server_fed_topic_ticks_while_someone_listens():
    client = await connect()
    reply = await client.subscribe("clock")
    assert reply["offset"] is None
    ticks = [await client.receive(timeout=2) for _ in range(3)]
    assert {(t["topic"], t["offset"], t["data"]["kind"]) for t in ticks} == {
        ("clock", None, "tick")
    }
    await client.request({"type": "unsubscribe", "topic": "clock", "ref": "u"})
    assert await client.nothing_arrives(0.5)
    await client.close()
