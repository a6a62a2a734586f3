"""Offsets under concurrent publishers: gapless, in order, the same for every subscriber."""

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from realtime.chat.services import message_create
from realtime.gateway.testing import connect
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PUBLISHERS = 6
MESSAGES_EACH = 20


async def publish_concurrently(room, authors):
    """Each author publishes from its own worker thread (as server views do), all at once."""
    barrier = threading.Barrier(len(authors))

    def run(author):
        try:
            barrier.wait()
            for i in range(MESSAGES_EACH):
                message_create(room=room, author=author, text=f"{author.username} {i}")
        finally:
            connection.close()

    await asyncio.gather(
        *(sync_to_async(run, thread_sensitive=False)(author) for author in authors)
    )


async def test_concurrent_publishers_give_every_subscriber_the_same_gapless_offsets(
    require_postgres, room, user
):
    authors = [user] + [await sync_to_async(UserFactory)() for _ in range(PUBLISHERS - 1)]
    subscribers = [await connect(author) for author in authors[:3]]
    for client in subscribers:
        await client.join("room:general")
    await publish_concurrently(room, authors)
    total = PUBLISHERS * MESSAGES_EACH
    for client in subscribers:
        events = []
        while len(events) < total:
            frame = await client.receive(timeout=10)
            if frame["type"] == "event":
                events.append(frame)
        assert [e["offset"] for e in events] == list(range(1, total + 1))
        texts = [e["data"]["text"] for e in events]
        assert len(set(texts)) == total
        # Each publisher's own messages keep their order.
        for author in authors:
            mine = [t for t in texts if t.startswith(author.username + " ")]
            assert mine == [f"{author.username} {i}" for i in range(MESSAGES_EACH)]
    for client in subscribers:
        await client.close()


async def test_a_resend_racing_its_original_is_stored_once(require_postgres, room, user):
    """
    Two processes get the same publish (the original, and its resend after a lost
    connection) at the same moment: one is stored, both answer its offset.
    Here two threads with their own database connections stand for the processes,
    and a third transaction holding the topic's row makes them meet.
    """
    from django.db import transaction

    from realtime.gateway.history import topic_offset
    from realtime.gateway.models import Event
    from realtime.gateway.publishing import publish

    await sync_to_async(message_create)(room=room, author=user, text="before")
    held, release = threading.Event(), threading.Event()

    def hold_the_topic():
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT 1 FROM realtime_topicsequence WHERE topic = %s FOR UPDATE",
                        ["room:general"],
                    )
                held.set()
                release.wait(10)
        finally:
            connection.close()

    def send():
        try:
            held.wait(10)
            return publish("room:general", {"text": "once"}, publisher=user, client_id="c-9")
        finally:
            connection.close()

    holder = asyncio.ensure_future(sync_to_async(hold_the_topic, thread_sensitive=False)())
    sends = [asyncio.ensure_future(sync_to_async(send, thread_sensitive=False)()) for _ in range(2)]
    await asyncio.sleep(0.5)  # both sends are waiting on the topic now
    release.set()
    await holder
    first, second = await asyncio.gather(*sends)
    assert first.offset == second.offset == 2
    assert {first.duplicate, second.duplicate} == {False, True}
    count = await sync_to_async(Event.objects.filter(topic="room:general").count)()
    assert count == 2
    assert await sync_to_async(topic_offset)("room:general") == 2  # gapless
