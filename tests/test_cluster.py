"""
Several daphne processes on Redis behave as one server: delivery, presence,
the connection registry, session-bound sockets, restarts and crashes.
"""

import asyncio
import json
import signal
import subprocess
import time
import uuid

import pytest
import websockets

from deploy.client import HttpSession, receive, receive_until, ws_connect
from tests.live import LiveServer, free_port

PASSWORD = "cluster-pass-123"


def signed_up(server) -> HttpSession:
    return HttpSession(server).signup(f"c{uuid.uuid4().hex[:8]}", PASSWORD)


def same_session_on(server, session: HttpSession) -> HttpSession:
    """The same browser session, talking to another process."""
    other = HttpSession(server)
    other.jar, other.opener = session.jar, session.opener
    other.user_id, other.username = session.user_id, session.username
    return other


async def joined(server, session, topic) -> websockets.ClientConnection:
    socket_ = await ws_connect(server, session)
    await receive(socket_)
    await socket_.send(json.dumps({"type": "subscribe", "topic": topic, "ref": "s"}))
    await receive_until(socket_, "presence_state" if topic.startswith("room:") else "subscribed")
    if topic.startswith("room:"):
        # Its own join comes back too (batched by the hub, so after the state).
        while True:
            frame = await receive(socket_)
            if frame["type"] == "presence_diff" and session.user_id in (
                u["id"] for u in frame["joins"]
            ):
                break
    return socket_


def new_room(session) -> str:
    slug = f"r{uuid.uuid4().hex[:8]}"
    status, body = session.request("POST", "/api/rooms/", {"slug": slug, "name": slug})
    assert status == 201, body
    return slug


async def wait_for(predicate, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"not true within {timeout} s")


async def test_publish_on_one_process_reaches_the_other_with_the_same_offsets(redis_cluster):
    a, b = redis_cluster
    alice = signed_up(a)
    bob = same_session_on(b, signed_up(a))
    slug = new_room(alice)
    topic = f"room:{slug}"
    on_a = await joined(a, alice, topic)
    on_b = await joined(b, bob, topic)
    for i in range(5):
        await on_a.send(json.dumps({"type": "publish", "topic": topic, "data": {"text": f"m{i}"}}))
    for socket_ in (on_a, on_b):
        events = []
        while len(events) < 5:
            frame = await receive(socket_)
            if frame["type"] == "event":
                events.append((frame["offset"], frame["data"]["text"]))
        assert events == [(i + 1, f"m{i}") for i in range(5)]
    await on_a.close()
    await on_b.close()


async def test_presence_and_connections_agree_on_both_processes(redis_cluster, live_database):
    a, b = redis_cluster
    staff_name = f"s{uuid.uuid4().hex[:8]}"
    live_database.create_user(staff_name, PASSWORD, staff=True)
    admin = HttpSession(a).login(staff_name, PASSWORD)
    alice = signed_up(a)
    bob_on_b = same_session_on(b, signed_up(b))
    slug = new_room(alice)
    topic = f"room:{slug}"
    on_a = await joined(a, alice, topic)
    on_b = await ws_connect(b, bob_on_b)
    await receive(on_b)
    await on_b.send(json.dumps({"type": "subscribe", "topic": topic}))
    state = (await receive_until(on_b, "presence_state"))[-1]
    assert {u["username"] for u in state["users"]} == {alice.username, bob_on_b.username}
    diff = await receive(on_a)
    assert diff["type"] == "presence_diff" and len(diff["joins"]) == 1

    def listing(server):
        session = same_session_on(server, admin)
        status, body = session.request("GET", "/api/connections/")
        assert status == 200, body
        return sorted((c["connection_id"], c["server"], tuple(c["topics"])) for c in body)

    on_a_list, on_b_list = listing(a), listing(b)
    assert on_a_list == on_b_list
    assert len(on_a_list) == 2
    assert len({server for _, server, _ in on_a_list}) == 2
    assert all(topics == (topic,) for _, _, topics in on_a_list)
    await on_a.close()
    await on_b.close()


async def members_on_both(a, b) -> tuple[HttpSession, str, object, object]:
    """Two users in one room, one socket on each process, each seeing the other."""
    alice = signed_up(a)
    bob = same_session_on(b, signed_up(b))
    topic = f"room:{new_room(alice)}"
    on_a = await joined(a, alice, topic)
    on_b = await joined(b, bob, topic)
    await receive_until(on_a, "presence_diff")
    return bob, topic, on_a, on_b


async def test_sigterm_sends_4012_and_presence_leaves_while_the_other_process_serves(
    redis_cluster,
):
    a, b = redis_cluster
    _, topic, on_a, on_b = await members_on_both(a, b)
    a.signal(signal.SIGTERM)
    with pytest.raises(websockets.ConnectionClosed):
        await receive(on_a, timeout=10)
    assert on_a.close_code == 4012
    diff = await receive(on_b, timeout=10)
    assert diff["type"] == "presence_diff" and diff["leaves"] and not diff["joins"]
    assert await asyncio.to_thread(a.wait, 12) == 0
    await on_b.send(json.dumps({"type": "publish", "topic": topic, "data": {"text": "on"}}))
    frames = await receive_until(on_b, "ack")
    assert frames[-1]["offset"] == 1
    await on_b.close()


async def test_sigkill_leaves_no_ghost_connections_or_presence_within_60_s(redis_cluster):
    a, b = redis_cluster
    bob, topic, _, on_b = await members_on_both(a, b)
    a.signal(signal.SIGKILL)
    a.wait(5)
    started = time.monotonic()
    diff = await receive(on_b, timeout=60)
    assert diff["type"] == "presence_diff" and diff["leaves"], diff
    assert time.monotonic() - started < 60
    await on_b.send(json.dumps({"type": "subscribe", "topic": topic}))
    state = (await receive_until(on_b, "presence_state"))[-1]
    assert [u["username"] for u in state["users"]] == [bob.username]
    await on_b.close()


async def test_logout_on_one_process_closes_the_socket_on_the_other_with_4401(redis_cluster):
    a, b = redis_cluster
    alice = signed_up(a)
    on_b = await ws_connect(b, same_session_on(b, alice))
    await receive(on_b)
    started = time.monotonic()
    status, _ = alice.request("POST", "/api/auth/logout/")
    assert status == 200
    with pytest.raises(websockets.ConnectionClosed):
        await receive(on_b, timeout=6)
    assert on_b.close_code == 4401
    assert time.monotonic() - started < 5


async def test_deactivating_a_user_from_a_shell_closes_their_sockets_with_4401(
    redis_cluster, live_database, require_redis, redis_prefix
):
    a, b = redis_cluster
    alice = signed_up(a)
    sockets = [await ws_connect(server, same_session_on(server, alice)) for server in (a, b)]
    for socket_ in sockets:
        await receive(socket_)
    user_id = alice.user_id
    started = time.monotonic()
    await asyncio.to_thread(
        live_database.manage,
        "shell",
        "-c",
        "from realtime.models import User;"
        f"u=User.objects.get(pk={user_id}); u.is_active=False; u.save()",
        REDIS_URL=require_redis,
        REALTIME_REDIS_PREFIX=redis_prefix,
    )
    for socket_ in sockets:
        with pytest.raises(websockets.ConnectionClosed):
            await receive(socket_, timeout=6)
        assert socket_.close_code == 4401
    assert time.monotonic() - started < 5 + 3  # the shell itself takes a moment to start


async def test_a_member_removed_from_a_shell_stops_receiving_on_every_process(
    redis_cluster, live_database, require_redis, redis_prefix
):
    a, b = redis_cluster
    owner = signed_up(a)
    member = signed_up(a)
    slug = f"p{uuid.uuid4().hex[:8]}"
    status, _ = owner.request(
        "POST", "/api/rooms/", {"slug": slug, "name": slug, "is_private": True}
    )
    assert status == 201
    status, _ = owner.request("POST", f"/api/rooms/{slug}/members/", {"username": member.username})
    assert status == 201
    topic = f"room:{slug}"
    sockets = []
    for server in (a, b):
        socket_ = await ws_connect(server, same_session_on(server, member))
        await receive(socket_)
        await socket_.send(json.dumps({"type": "subscribe", "topic": topic, "ref": "s"}))
        await receive_until(socket_, "presence_state")
        sockets.append(socket_)
    await asyncio.to_thread(
        live_database.manage,
        "shell",
        "-c",
        "from realtime.models import Room;"
        f"Room.objects.get(slug={slug!r}).members.remove({member.user_id})",
        REDIS_URL=require_redis,
        REALTIME_REDIS_PREFIX=redis_prefix,
    )
    for socket_ in sockets:
        frames = await receive_until(socket_, "error", timeout=4)
        assert (frames[-1]["code"], frames[-1]["topic"]) == ("not_found", topic)
    status, _ = owner.request("POST", f"/api/rooms/{slug}/messages/", {"text": "after removal"})
    assert status == 201
    for socket_ in sockets:
        with pytest.raises(TimeoutError):
            while True:
                frame = await receive(socket_, timeout=1)
                assert frame["type"] != "event", frame
        await socket_.close()


async def test_redis_restart_keeps_sockets_open_and_recovers_missed_events(
    live_database, require_redis, private_redis
):
    redis = private_redis
    servers = [LiveServer(live_database, redis_url=redis.url) for _ in range(2)]
    a, b = (server.start() for server in servers)
    try:
        alice = signed_up(a)
        bob = same_session_on(b, signed_up(b))
        topic = f"room:{new_room(alice)}"
        on_a = await joined(a, alice, topic)
        on_b = await joined(b, bob, topic)
        redis.stop()
        # Published while Redis is down: stored, broadcast lost.
        status, body = alice.request(
            "POST", f"/api/rooms/{topic.split(':')[1]}/messages/", {"text": "during outage"}
        )
        assert status == 201, body
        await asyncio.sleep(2)
        redis.start()
        await asyncio.sleep(2)
        status, body = alice.request(
            "POST", f"/api/rooms/{topic.split(':')[1]}/messages/", {"text": "after outage"}
        )
        assert status == 201, body
        for socket_ in (on_a, on_b):
            events = []
            while len(events) < 2:
                frame = await receive(socket_, timeout=15)
                if frame["type"] == "event":
                    events.append((frame["offset"], frame["data"]["text"]))
            assert events == [(1, "during outage"), (2, "after outage")]
            await socket_.send(json.dumps({"type": "ping", "ref": "alive"}))
            assert (await receive_until(socket_, "pong"))[-1]["ref"] == "alive"
            await socket_.close()
    finally:
        for server in servers:
            server.stop()
        redis.stop()


def start_sentinel(redis_url: str, port: int, folder) -> subprocess.Popen:
    """A Redis Sentinel watching `redis_url` as master `rtmaster`."""
    host, _, master_port = redis_url.split("//")[1].split("/")[0].partition(":")
    config = folder / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
        f"sentinel monitor rtmaster {host} {master_port or 6379} 1\n"
    )
    return subprocess.Popen(["redis-server", str(config), "--sentinel"], stdout=subprocess.DEVNULL)


async def test_processes_find_redis_through_sentinel(
    live_database, require_redis, redis_prefix, tmp_path
):
    """REDIS_SENTINELS instead of REDIS_URL: the layer and the live state ask Sentinel."""
    port = free_port()
    sentinel = start_sentinel(require_redis, port, tmp_path)
    env = {
        "REDIS_SENTINELS": f"127.0.0.1:{port}",
        "REDIS_SENTINEL_MASTER": "rtmaster",
        "REALTIME_REDIS_PREFIX": redis_prefix,
    }
    servers = [LiveServer(live_database, **env) for _ in range(2)]
    try:
        a, b = (server.start() for server in servers)
        _, topic, on_a, on_b = await members_on_both(a, b)
        await on_a.send(json.dumps({"type": "publish", "topic": topic, "data": {"text": "hi"}}))
        frames = await receive_until(on_b, "event")
        assert frames[-1]["data"]["text"] == "hi"
        await on_a.close()
        await on_b.close()
    finally:
        for server in servers:
            server.stop()
        sentinel.terminate()
        sentinel.wait(10)


async def test_a_session_ended_on_one_process_is_never_let_in_from_the_cache_on_the_other(
    redis_cluster, live_database, require_redis, redis_prefix
):
    """Sessions are cached in Redis: a logout or a new password elsewhere must still count."""
    a, b = redis_cluster
    alice = signed_up(a)
    same_on_b = same_session_on(b, alice)
    # A first handshake on each process puts the session in the shared cache.
    for server, session in ((a, alice), (b, same_on_b)):
        socket_ = await ws_connect(server, session)
        assert (await receive(socket_))["user"]["id"] == alice.user_id
        await socket_.close()
    status, _ = alice.request("POST", "/api/auth/logout/")
    assert status == 200
    refused = await ws_connect(b, same_on_b)
    assert (await receive(refused))["user"] is None
    await refused.close()

    bob = signed_up(a)
    bob_on_b = same_session_on(b, bob)
    socket_ = await ws_connect(b, bob_on_b)
    assert (await receive(socket_))["user"]["id"] == bob.user_id
    await socket_.close()
    # A new password, set from a shell: the cached session no longer signs bob in.
    await asyncio.to_thread(
        live_database.manage,
        "shell",
        "-c",
        "from realtime.models import User;"
        f"u=User.objects.get(pk={bob.user_id}); u.set_password('another-password-123'); u.save()",
        REDIS_URL=require_redis,
        REALTIME_REDIS_PREFIX=redis_prefix,
    )
    refused = await ws_connect(b, bob_on_b)
    assert (await receive(refused))["user"] is None
    await refused.close()
