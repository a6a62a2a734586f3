"""
Outages under real daphne: Redis stopped and restarted under a subscribe. A
subscribe the broker cannot wire is refused with `unavailable` (never a
`subscribed` that delivers nothing), and the room lives on once Redis is back.
"""

import asyncio
import json
import time

import pytest

from deploy.client import receive, receive_until, ws_connect
from tests.live import LiveServer, member_with_room

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
    session, topic = member_with_room(live_database, server, PASSWORD)
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
        path = f"/api/rooms/{topic.split(':')[1]}/messages/"
        status, _ = session.request("POST", path, {"text": f"m{n}"})
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


async def test_a_database_outage_is_answered_unavailable_and_503_and_logged_once(
    live_database, require_postgres
):
    from urllib.parse import urlsplit

    import websockets

    from tests.faults import TcpProxy

    database = urlsplit(live_database.url)
    proxy = TcpProxy((database.hostname, database.port or 5432))
    through_proxy = live_database.url.replace(
        database.netloc.split("@")[-1], f"127.0.0.1:{proxy.port}"
    )
    server = LiveServer(live_database, DATABASE_URL=through_proxy).start()
    try:
        session, topic = member_with_room(live_database, server, PASSWORD)
        socket_ = await ws_connect(server, session)
        await receive(socket_)

        async def publish(client_id: str) -> dict:
            await socket_.send(
                json.dumps(
                    {
                        "type": "publish",
                        "topic": topic,
                        "ref": client_id,
                        "id": client_id,
                        "data": {"text": client_id},
                    }
                )
            )
            return await receive(socket_, timeout=10)

        assert (await publish("before"))["offset"] == 1
        proxy.cut()
        for n in range(5):
            started = time.monotonic()
            refused = await publish(f"during-{n}")
            assert (refused["type"], refused["code"]) == ("error", "unavailable"), refused
            assert refused["ref"] == f"during-{n}" and refused["retry_after_ms"] > 0
            assert time.monotonic() - started < 2, "an outage must be answered fast"
        # A handshake needs the session from the database: 503, and the client retries.
        with pytest.raises(websockets.InvalidStatus) as refused_handshake:
            await ws_connect(server, session)
        assert refused_handshake.value.response.status_code == 503
        proxy.restore()
        deadline = time.monotonic() + 15
        while (reply := await publish("during-0"))["type"] != "ack":
            assert time.monotonic() < deadline, reply
            await asyncio.sleep(reply["retry_after_ms"] / 1000)
        assert reply["offset"] == 2
        assert (await publish("during-0"))["offset"] == 2  # stored once
        again = await ws_connect(server, session)
        assert (await receive(again))["type"] == "welcome"
        await again.close()
        await socket_.close()
    finally:
        server.stop()
        proxy.close()
    log = server.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert log.count("database unavailable") == 1, log[-3000:]
    assert "database back after" in log
