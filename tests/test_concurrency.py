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
