"""
Outages under real daphne: Redis stopped and restarted under a subscribe. A
subscribe the broker cannot wire is refused with `unavailable` (never a
`subscribed` that delivers nothing), and the room lives on once Redis is back.
"""

import asyncio
import json
import time
import uuid

import pytest

from deploy.client import HttpSession, receive, receive_until, ws_connect
from tests.live import LiveServer

PASSWORD = "live-pass-123"
pytestmark = pytest.mark.redis


@pytest.fixture
def redis_server_process(live_database, private_redis):
    server = LiveServer(
        live_database, redis_url=private_redis.url, REALTIME_ALIVE_SECONDS="12"
    ).start()
    yield server
    server.stop()


async def subscribe(socket_, topic: str) -> dict:
    await socket_.send(json.dumps({"type": "subscribe", "topic": topic, "ref": "s"}))
    return await receive(socket_, timeout=10)


async def test_a_subscribe_during_a_redis_outage_fails_cleanly_and_the_room_lives_on(
    live_database, private_redis, redis_server_process
):
    server = redis_server_process
    name = f"o{uuid.uuid4().hex[:8]}"
    live_database.create_user(name, PASSWORD)
    session = HttpSession(server).login(name, PASSWORD)
    slug = f"r{uuid.uuid4().hex[:8]}"
    assert session.request("POST", "/api/rooms/", {"slug": slug, "name": slug})[0] == 201
    topic = f"room:{slug}"
    early = await ws_connect(server, session)
    await receive(early)

    private_redis.stop()
    refused = await subscribe(early, topic)
    assert (refused["type"], refused["code"], refused["ref"]) == ("error", "unavailable", "s")
    assert refused["retry_after_ms"] > 0
    private_redis.start()

    # The refused socket retries until the broker is reachable again.
    deadline = time.monotonic() + 20
    while True:
        reply = await subscribe(early, topic)
        if reply["type"] == "subscribed":
            break
        assert reply["code"] == "unavailable", reply
        assert time.monotonic() < deadline, "still unavailable 20 s after Redis came back"
        await asyncio.sleep(reply["retry_after_ms"] / 1000)
    await receive_until(early, "presence_state")
    late = await ws_connect(server, session)
    await receive(late)
    assert (await subscribe(late, topic))["type"] == "subscribed"
    await receive_until(late, "presence_state")

    for n in range(5):
        status, _ = session.request("POST", f"/api/rooms/{slug}/messages/", {"text": f"m{n}"})
        assert status == 201
    # Live, not by the 3-second sweep: all five within two seconds.
    for socket_ in (early, late):
        texts = []
        async with asyncio.timeout(2):
            while len(texts) < 5:
                frame = await receive(socket_)
                if frame["type"] == "event":
                    texts.append(frame["data"]["text"])
        assert texts == [f"m{n}" for n in range(5)]
    await early.close()
    await late.close()
