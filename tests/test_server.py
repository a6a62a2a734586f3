"""
The gateway under real daphne on a real port, with a real WebSocket client:
session cookie from the login endpoint, Origin header, close codes on the wire.
"""

import asyncio
import json
import signal
import time
import uuid

import pytest
import websockets

from deploy.client import HttpSession, receive, receive_until, subscribed_socket, ws_connect

PASSWORD = "live-pass-123"


def signed_up(server) -> HttpSession:
    return HttpSession(server).signup(f"u{uuid.uuid4().hex[:8]}", PASSWORD)


@pytest.fixture
def alice(daphne_server):
    session = signed_up(daphne_server)
    return session, session.user_id


@pytest.fixture
def room_slug(alice):
    session, _ = alice
    slug = f"r{uuid.uuid4().hex[:8]}"
    status, body = session.request("POST", "/api/rooms/", {"slug": slug, "name": slug})
    assert status == 201, body
    return slug


@pytest.mark.parametrize("origin", ["http://evil.example", None])
async def test_foreign_or_missing_origin_gets_http_403(daphne_server, origin):
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(daphne_server.ws_url, origin=origin)
    assert refused.value.response.status_code == 403


async def test_signed_in_client_subscribes_publishes_reconnects_and_recovers(
    daphne_server, live_database, alice, room_slug
):
    session, user_id = alice
    topic = f"room:{room_slug}"
    socket_ = await ws_connect(daphne_server, session)
    assert socket_.subprotocol == "realtime.v1"
    welcome = await receive(socket_)
    assert welcome["type"] == "welcome"
    assert welcome["user"]["id"] == user_id
    await socket_.send(json.dumps({"type": "subscribe", "topic": topic, "ref": "s"}))
    assert (await receive(socket_))["offset"] == 0
    await socket_.send(
        json.dumps(
            {"type": "publish", "topic": topic, "data": {"text": "one"}, "ref": "p", "id": "c1"}
        )
    )
    frames = await receive_until(socket_, "ack")
    assert frames[-1] == {"type": "ack", "topic": topic, "offset": 1, "ref": "p"}
    assert any(f["type"] == "event" and f["offset"] == 1 for f in frames)
    await socket_.close()

    # Away: messages arrive over REST from another user.
    for text in ("two", "three"):
        status, body = session.request("POST", f"/api/rooms/{room_slug}/messages/", {"text": text})
        assert status == 201, body

    socket_ = await ws_connect(daphne_server, session)
    await receive(socket_)
    await socket_.send(json.dumps({"type": "subscribe", "topic": topic, "since": 1, "ref": "r"}))
    subscribed = await receive(socket_)
    assert subscribed == {
        "type": "subscribed",
        "topic": topic,
        "offset": 3,
        "recovered": True,
        "ref": "r",
    }
    replay = [await receive(socket_) for _ in range(2)]
    assert [(e["offset"], e["data"]["text"]) for e in replay] == [(2, "two"), (3, "three")]
    # Resending the first publish with its id is acknowledged with its first offset.
    await socket_.send(
        json.dumps(
            {"type": "publish", "topic": topic, "data": {"text": "one"}, "ref": "again", "id": "c1"}
        )
    )
    ack = (await receive_until(socket_, "ack"))[-1]
    assert ack["offset"] == 1
    await socket_.close()


async def test_binary_and_oversized_frames_close_with_4003_and_4009(daphne_server, alice):
    session, _ = alice
    binary = await ws_connect(daphne_server, session)
    await receive(binary)
    await binary.send(b"\x00\x01\x02")
    with pytest.raises(websockets.ConnectionClosed):
        await receive(binary)
    assert binary.close_code == 4003

    big = await ws_connect(daphne_server, session)
    await receive(big)
    await big.send(json.dumps({"type": "ping", "pad": "x" * 70000}))
    with pytest.raises(websockets.ConnectionClosed):
        await receive(big)
    assert big.close_code == 4009


@pytest.mark.parametrize("plain_daphne", [False, True], ids=["manage.py serve", "plain daphne"])
async def test_sigterm_closes_sockets_with_4012_and_exits_promptly(live_database, plain_daphne):
    from tests.live import LiveServer

    server = LiveServer(live_database, plain_daphne=plain_daphne).start()
    session = signed_up(server)
    sockets = [await ws_connect(server, session) for _ in range(3)]
    for socket_ in sockets:
        await receive(socket_)
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    for socket_ in sockets:
        with pytest.raises(websockets.ConnectionClosed):
            await receive(socket_, timeout=10)
        assert socket_.close_code == 4012
    assert await asyncio.to_thread(server.wait, 12) == 0
    assert time.monotonic() - started < 10


async def test_a_slow_subscriber_is_shed_with_4008_while_the_others_receive_everything(
    live_database,
):
    import socket

    from tests.live import UNTHROTTLED, LiveServer, member_with_room

    server = LiveServer(
        live_database,
        **UNTHROTTLED,
        REALTIME_MAX_BACKLOG_BYTES=str(256 * 1024),
    ).start()
    try:
        session, topic = member_with_room(live_database, server, PASSWORD)

        fast = await subscribed_socket(server, session, topic)
        # The slow one reads almost nothing: a tiny receive buffer and no recv().
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", server.port))
        slow = await subscribed_socket(server, session, topic, sock=raw, max_queue=1)
        publishers = [await ws_connect(server, session) for _ in range(4)]
        for publisher in publishers:
            await receive(publisher)
        count, text = 2000, "x" * 1990
        each = count // len(publishers)
        # The slow one starts reading only once this many events went out (well
        # past its shedding point), then reads its close frame within the
        # server's 30 s close timeout.
        slow_wakes_at = 1600

        async def read(socket_, frame_type, wanted, progress=None):
            offsets = []
            while len(offsets) < wanted:
                frame = await receive(socket_, timeout=30)
                assert frame["type"] != "error", frame
                if frame["type"] == frame_type:
                    offsets.append(frame["offset"])
                    if progress is not None and len(offsets) == slow_wakes_at:
                        progress.set()
            return offsets

        async def publish(publisher, first):
            for i in range(first, first + each):
                await publisher.send(
                    json.dumps({"type": "publish", "topic": topic, "data": {"text": f"{i} {text}"}})
                )

        async def read_slow(wake):
            await wake.wait()
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await receive(slow, timeout=20)
            return slow.close_code

        wake = asyncio.Event()
        fast_events = asyncio.create_task(read(fast, "event", count, wake))
        slow_closed = asyncio.create_task(read_slow(wake))
        acks = [asyncio.create_task(read(p, "ack", each)) for p in publishers]
        await asyncio.gather(*(publish(p, n * each) for n, p in enumerate(publishers)))
        # Every event reached the fast one, in order, while the slow one was shed.
        assert await fast_events == list(range(1, count + 1))
        acked = [offset for offsets in await asyncio.gather(*acks) for offset in offsets]
        assert sorted(acked) == list(range(1, count + 1))
        assert await slow_closed == 4008
        for socket_ in (fast, *publishers):
            await socket_.close()
    finally:
        server.stop()


async def test_a_client_dripping_its_headers_is_cut_off(live_database):
    """Headers sent one line at a time, each within any idle timeout, never all of them."""
    import socket

    from tests.live import LiveServer

    server = LiveServer(live_database, REALTIME_HEADER_TIMEOUT_SECONDS="3").start()
    try:
        drip = socket.create_connection(("127.0.0.1", server.port))
        drip.settimeout(0.5)
        drip.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        closed_after = None
        for n in range(20):
            await asyncio.sleep(0.5)
            try:
                drip.sendall(f"X-Drip-{n}: {'y' * 10}\r\n".encode())
                if drip.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
        assert closed_after is not None and closed_after < 6, closed_after
        drip.close()
        # A normal request on a new connection is served.
        status, _ = HttpSession(server).request("GET", "/api/auth/csrf/")
        assert status == 200
    finally:
        server.stop()


async def test_a_client_whose_network_died_leaves_presence_within_the_ping_bound(live_database):
    """No pong to the server's pings: dropped, and its presence leave reaches the others."""
    from tests.live import LiveServer, member_with_room

    interval, timeout = 2, 2
    server = LiveServer(
        live_database,
        REALTIME_PING_INTERVAL_SECONDS=str(interval),
        REALTIME_PING_TIMEOUT_SECONDS=str(timeout),
    ).start()
    try:
        watcher_session, topic = member_with_room(live_database, server, PASSWORD)
        gone_session = signed_up(server)
        watcher = await ws_connect(server, watcher_session)
        await receive(watcher)
        await watcher.send(json.dumps({"type": "subscribe", "topic": topic}))
        await receive_until(watcher, "presence_state")
        gone = await ws_connect(server, gone_session)
        await receive(gone)
        await gone.send(json.dumps({"type": "subscribe", "topic": topic}))
        await receive_until(gone, "presence_state")
        gone.transport.pause_reading()  # the network died: no pong, nothing read
        started = time.monotonic()
        while True:
            frame = await receive(watcher, timeout=interval + timeout + 10)
            if frame["type"] == "presence_diff" and any(
                u["id"] == gone_session.user_id for u in frame["leaves"]
            ):
                break
        took = time.monotonic() - started
        # The bound: the ping interval plus its timeout, plus daphne's 1-2 s check period.
        assert took <= interval + timeout + 3, took
        await watcher.close()
        gone.transport.abort()
    finally:
        server.stop()
