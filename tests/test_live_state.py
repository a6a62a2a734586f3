"""
Live state that cannot drift, on real Redis under real daphne: what Redis holds
for a process (registry entries, presence places) equals its live sockets
within a beat, after a burst of aborted sockets, and nothing of it stays after
a graceful shutdown.
"""

import asyncio
import json
import signal
import socket
import time
import uuid

import pytest
import redis

from deploy.client import HttpSession, receive, receive_until, ws_connect
from tests.live import UNTHROTTLED, LiveServer

PASSWORD = "live-pass-123"
pytestmark = pytest.mark.redis


@pytest.fixture
def server(live_database, require_redis, redis_prefix):
    # A beat every second (a sixth of the alive time).
    server = LiveServer(
        live_database,
        redis_url=require_redis,
        REALTIME_REDIS_PREFIX=redis_prefix,
        REALTIME_ALIVE_SECONDS="6",
        **UNTHROTTLED,
    ).start()
    yield server
    server.stop()


class Snapshot:
    """What Redis holds for one server process and one topic."""

    def __init__(self, url: str, prefix: str, server: LiveServer, topic: str):
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self.name = f"{socket.gethostname()}:{server.process.pid}"
        self.topic = topic

    def registry(self) -> int:
        return self.redis.hlen(f"{self.prefix}conns:{self.name}")

    def presence(self) -> int:
        return self.redis.hlen(f"{self.prefix}presence:{self.topic}")

    def own_places(self) -> int:
        return self.redis.scard(f"{self.prefix}presence-of:{self.name}")

    def process_keys(self) -> list[str]:
        found = sorted(self.redis.scan_iter(f"{self.prefix}*{self.name}*"))
        if self.name in self.redis.smembers(f"{self.prefix}servers"):
            found.append("servers member")
        return found

    async def wait_for(self, predicate, what: str, timeout: float = 5) -> None:
        # Awaiting, so that the client's own sockets (aborts, closes) get handled.
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"{what} after {timeout} s"
            await asyncio.sleep(0.1)


async def open_sockets(server, sessions, topic: str, count: int) -> list:
    async def one(n):
        socket_ = await ws_connect(server, sessions[n % len(sessions)])
        await receive(socket_)
        await socket_.send(json.dumps({"type": "subscribe", "topic": topic}))
        await receive_until(socket_, "presence_state", timeout=15)
        return socket_

    sockets = []
    for first in range(0, count, 50):
        sockets += await asyncio.gather(*(one(n) for n in range(first, min(count, first + 50))))
    return sockets


def sign_in_users(live_database, server, count: int) -> list[HttpSession]:
    names = [f"ls{uuid.uuid4().hex[:8]}" for _ in range(count)]
    live_database.create_users(names, PASSWORD)
    return [HttpSession(server).login(name, PASSWORD) for name in names]


async def test_a_burst_of_aborted_sockets_leaves_no_ghost_in_redis(
    live_database, server, require_redis, redis_prefix
):
    sessions = sign_in_users(live_database, server, 10)
    slug = f"r{uuid.uuid4().hex[:8]}"
    assert sessions[0].request("POST", "/api/rooms/", {"slug": slug, "name": slug})[0] == 201
    topic = f"room:{slug}"
    state = Snapshot(require_redis, redis_prefix, server, topic)
    sockets = await open_sockets(server, sessions, topic, 300)
    await state.wait_for(lambda: state.registry() == 300 and state.presence() == 300, "300 live")
    for socket_ in sockets:
        socket_.transport.abort()
    # Within a couple of beats Redis holds exactly the live sockets: none.
    await state.wait_for(
        lambda: (state.registry(), state.presence(), state.own_places()) == (0, 0, 0),
        f"ghosts left: registry {state.registry()}, presence {state.presence()}",
    )
    # And a newcomer's presence_state lists only itself.
    newcomer = await ws_connect(server, sessions[0])
    await receive(newcomer)
    await newcomer.send(json.dumps({"type": "subscribe", "topic": topic}))
    frames = await receive_until(newcomer, "presence_state")
    assert [u["username"] for u in frames[-1]["users"]] == [sessions[0].username]
    await newcomer.close()


async def test_a_graceful_shutdown_leaves_nothing_of_its_process_in_redis(
    live_database, server, require_redis, redis_prefix
):
    sessions = sign_in_users(live_database, server, 4)
    slug = f"r{uuid.uuid4().hex[:8]}"
    assert sessions[0].request("POST", "/api/rooms/", {"slug": slug, "name": slug})[0] == 201
    topic = f"room:{slug}"
    state = Snapshot(require_redis, redis_prefix, server, topic)
    sockets = await open_sockets(server, sessions, topic, 40)
    await state.wait_for(lambda: state.registry() == 40, "40 registered")
    assert state.process_keys(), "the process has live state before"
    server.signal(signal.SIGTERM)
    assert server.wait(15) == 0
    assert state.process_keys() == []
    assert state.presence() == 0
    for socket_ in sockets:
        socket_.transport.abort()
