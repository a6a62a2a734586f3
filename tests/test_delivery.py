"""
Delivery that never skips: one subscriber's failure is that subscriber's
alone. Unit tests drive the hub's fan-out with fake sockets; the live test
aborts sockets in the middle of a fan-out on real daphne.
"""

import asyncio
import json

import pytest

from deploy.client import receive, subscribed_socket, ws_connect
from realtime.gateway.hub import Hub, TopicRoute
from realtime.gateway.protocol import CLOSE_SLOW_CONSUMER
from realtime.gateway.topics import parse_topic

PASSWORD = "live-pass-123"


class FakeSocket:
    """A local connection that records what it was offered, or fails."""

    def __init__(self, name: str, *, fails: bool = False):
        self.connection_id = name
        self.fails = fails
        self.offered: list[int | None] = []
        self.closed_with: int | None = None

    async def offer_event(self, topic, offset, event):
        if self.fails:
            raise ConnectionError(f"{self.connection_id} is gone")
        self.offered.append(offset)

    async def close_with(self, code):
        self.closed_with = code


def test_a_failing_subscriber_does_not_keep_the_event_from_the_others():
    async def scenario():
        hub = Hub()
        sockets = [FakeSocket("a"), FakeSocket("b", fails=True), FakeSocket("c")]
        route = TopicRoute(topic=parse_topic("broadcast"), subscribers=set(sockets))
        for offset in (1, 2):
            await hub.fan_out(route, offset, "{}")
        await asyncio.sleep(0)
        assert sockets[0].offered == sockets[2].offered == [1, 2]
        # The failing one is closed with a code that makes it come back and recover.
        assert sockets[1].closed_with == CLOSE_SLOW_CONSUMER

    asyncio.run(scenario())


async def test_a_socket_closing_during_fan_out_costs_the_others_nothing(live_database):
    """
    A client sends its close frame while the server still has events queued for
    it: daphne's socket is closed, but its disconnect is not processed yet, so
    the fan-out still reaches it. Every other subscriber must get every event.
    """
    import socket

    from tests.live import UNTHROTTLED, LiveServer, member_with_room

    server = LiveServer(
        live_database,
        **UNTHROTTLED,
        REALTIME_MAX_BACKLOG_BYTES=str(64 * 1024 * 1024),
    ).start()
    try:
        session, topic = member_with_room(live_database, server, PASSWORD)

        keepers = [await subscribed_socket(server, session, topic) for _ in range(8)]
        # The leaver reads nothing, so what the server sends it piles up unsent.
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", server.port))
        leaver = await subscribed_socket(server, session, topic, sock=raw, max_queue=1)
        publisher = await ws_connect(server, session)
        await receive(publisher)
        text = "x" * 1990

        async def publish(first, last):
            for i in range(first, last + 1):
                await publisher.send(
                    json.dumps({"type": "publish", "topic": topic, "data": {"text": f"{i} {text}"}})
                )
            while (await receive(publisher, timeout=20)).get("offset") != last:
                pass

        async def read(socket_, count):
            offsets = []
            while len(offsets) < count:
                frame = await receive(socket_, timeout=20)
                if frame["type"] == "event":
                    offsets.append(frame["offset"])
            return offsets

        # About 6 MB for the leaver: more than the kernel's buffers hold, so the
        # rest waits in daphne's transport.
        first, total = 3000, 3200
        readers = [asyncio.create_task(read(keeper, total)) for keeper in keepers]
        await publish(1, first)
        # Its close frame, written under the client library (masked, code 1000):
        # the server answers it and closes its side, but cannot flush to it.
        leaver.transport.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
        await asyncio.sleep(0.3)
        await publish(first + 1, total)
        for offsets in await asyncio.gather(*readers):
            assert offsets == list(range(1, total + 1))
        leaver.transport.abort()
        for socket_ in (*keepers, publisher):
            await socket_.close()
    finally:
        server.stop()


async def test_replays_to_a_client_that_does_not_read_count_against_its_backlog(live_database):
    """Re-subscribing with `since` over and over without reading gets the socket shed."""
    import socket

    import websockets

    from tests.live import UNTHROTTLED, LiveServer, member_with_room

    server = LiveServer(
        live_database,
        **UNTHROTTLED,
        REALTIME_MAX_BACKLOG_BYTES=str(256 * 1024),
    ).start()
    try:
        session, topic = member_with_room(live_database, server, PASSWORD)
        publisher = await ws_connect(server, session)
        await receive(publisher)
        count, text = 600, "x" * 1990
        for i in range(count):
            await publisher.send(
                json.dumps({"type": "publish", "topic": topic, "data": {"text": f"{i} {text}"}})
            )
        while (await receive(publisher, timeout=30)).get("offset") != count:
            pass
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", server.port))
        hoarder = await ws_connect(server, session, sock=raw, max_queue=1)
        # Eight replays of 1.2 MB each, never read.
        for _ in range(8):
            await hoarder.send(json.dumps({"type": "subscribe", "topic": topic, "since": 0}))
        await asyncio.sleep(2)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await receive(hoarder, timeout=20)
        assert hoarder.close_code == 4008
        await publisher.close()
    finally:
        server.stop()
