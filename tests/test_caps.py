"""
Connection caps (PROTOCOL.md, handshake): a socket over its user's cap, or
its anonymous address's, is accepted and closed at once with 4029, before
`welcome`; counted across processes with Redis, a crashed process's sockets
stop counting once it is reaped.
"""

import asyncio
import json
import signal
import uuid

import pytest
import websockets
from asgiref.sync import sync_to_async

from deploy.client import HttpSession, receive, ws_connect
from realtime.gateway.testing import communicator_for, connect
from tests.factories import UserFactory
from tests.live import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "live-pass-123"


async def refused_with(communicator) -> int:
    connected, _ = await communicator.connect()
    assert connected, "accepted first"
    output = await communicator.receive_output(2)
    assert output["type"] == "websocket.close", output  # no welcome
    return output["code"]


@pytest.fixture
def small_caps(settings):
    settings.REALTIME = {
        **settings.REALTIME,
        "MAX_CONNECTIONS_PER_USER": 3,
        "MAX_ANONYMOUS_PER_ADDRESS": 2,
    }


async def test_a_users_socket_over_the_cap_is_closed_with_4029(small_caps):
    user = await sync_to_async(UserFactory)()
    other = await sync_to_async(UserFactory)()
    sockets = [await connect(user) for _ in range(3)]
    extra = await communicator_for(user)
    assert await refused_with(extra) == 4029
    # Another user is not affected; a closed socket frees its place.
    sockets.append(await connect(other))
    await sockets.pop(0).close()
    sockets.append(await connect(user))
    for socket_ in sockets:
        await socket_.close()


async def test_anonymous_sockets_are_capped_per_address(small_caps):
    anonymous = [await connect() for _ in range(2)]
    extra = await communicator_for()
    assert await refused_with(extra) == 4029
    elsewhere = await communicator_for()
    elsewhere.scope["client"] = ["10.1.2.3", 5555]
    connected, _ = await elsewhere.connect()
    assert connected
    assert json.loads((await elsewhere.receive_output(2))["text"])["type"] == "welcome"
    await elsewhere.disconnect()
    for socket_ in anonymous:
        await socket_.close()


@pytest.mark.redis
async def test_caps_count_every_process_and_a_killed_one_stops_counting(
    live_database, require_redis, redis_prefix
):
    env = {
        "REALTIME_REDIS_PREFIX": redis_prefix,
        "REALTIME_ALIVE_SECONDS": "6",
        "REALTIME_MAX_CONNECTIONS_PER_USER": "4",
    }
    a, b = (LiveServer(live_database, redis_url=require_redis, **env).start() for _ in range(2))
    try:
        name = f"cap{uuid.uuid4().hex[:8]}"
        live_database.create_user(name, PASSWORD)
        on = {server: HttpSession(server).login(name, PASSWORD) for server in (a, b)}

        async def open_on(server):
            socket_ = await ws_connect(server, on[server])
            frame = await receive(socket_)
            assert frame["type"] == "welcome", frame
            return socket_

        sockets = [await open_on(a), await open_on(a), await open_on(b), await open_on(b)]
        for server in (a, b):
            extra = await ws_connect(server, on[server])
            with pytest.raises(websockets.ConnectionClosed):
                await receive(extra)
            assert extra.close_code == 4029
        await sockets.pop(0).close()
        await asyncio.sleep(0.2)
        sockets.append(await open_on(b))
        # B dies with three of the user's sockets; once it is no longer alive they stop counting.
        b.signal(signal.SIGKILL)
        b.wait()
        await asyncio.sleep(7)
        fresh = [await open_on(a) for _ in range(3)]
        for socket_ in fresh + sockets:
            socket_.transport.abort()
    finally:
        a.stop()
        b.stop()


async def test_handshakes_past_the_pending_limit_are_refused_at_once(user, settings):
    """An overloaded process refuses (503) rather than queueing handshakes it cannot finish."""
    settings.REALTIME = {**settings.REALTIME, "MAX_PENDING_HANDSHAKES": 0}
    refused = await communicator_for(user)
    connected, _ = await refused.connect()
    assert not connected
    # A finished handshake gives its place back: with room for one, one after
    # another all get in.
    settings.REALTIME = {**settings.REALTIME, "MAX_PENDING_HANDSHAKES": 1}
    clients = [await connect(user) for _ in range(3)]
    for client in clients:
        await client.close()


@pytest.mark.redis
async def test_a_recount_running_beside_admissions_never_loses_a_socket(
    settings, require_redis, redis_prefix
):
    """
    The beat's reconcile of this process's registry entries and caps must not
    write over a socket admitted (or released) while it ran: the other
    processes read those counts and that list.
    """
    from realtime.gateway import registry as registry_module
    from realtime.gateway.redis_state import client, key

    settings.REDIS_URL = require_redis
    settings.REALTIME = {**settings.REALTIME, "REDIS_PREFIX": redis_prefix}
    store = registry_module.RedisRegistry()
    await store.beat()
    entries = [
        registry_module.new_entry(
            connection_id=f"c{number}",
            user_id=number % 3 + 1,
            username=None,
            connected_since="2026-12-01T00:00:00+00:00",
            client_address="127.0.0.1:1",
            user_agent=None,
        )
        for number in range(60)
    ]
    try:

        async def counts_agree():
            stored = await client().hgetall(key("caps", registry_module.SERVER_NAME))
            assert stored == {field: str(count) for field, count in registry_module.HELD.items()}
            # And the registry lists exactly the live sockets.
            listed = await client().hkeys(key("conns", registry_module.SERVER_NAME))
            assert set(listed) == set(registry_module.LIVE)

        for entry in entries:
            await asyncio.gather(store.register(entry), store.reconcile())
            await counts_agree()
        for entry in entries[::2]:
            await asyncio.gather(store.unregister(entry["connection_id"]), store.reconcile())
            await counts_agree()
        assert dict(registry_module.HELD) == {"u:1": 10, "u:2": 10, "u:3": 10}
    finally:
        for entry in entries:
            registry_module.live_remove(entry["connection_id"])
        await client().aclose()


async def test_a_recount_waits_for_admissions_in_flight_and_holds_new_ones_back():
    from realtime.gateway.registry import CountGate

    gate = CountGate()
    order = []
    admitted = asyncio.Event()

    async def admission(name, hold):
        async with gate.change():
            order.append(f"{name} in")
            admitted.set()
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    async def recount():
        async with gate.recount() as quiet:
            order.append(f"recount {quiet}")
            await asyncio.sleep(0.05)
            order.append("recount done")

    first = asyncio.create_task(admission("first", 0.1))
    await admitted.wait()
    counting = asyncio.create_task(recount())
    await asyncio.sleep(0)
    second = asyncio.create_task(admission("second", 0))
    await asyncio.gather(first, counting, second)
    assert order == [
        "first in",
        "first out",
        "recount True",
        "recount done",
        "second in",
        "second out",
    ]
    # A cancelled admission gives its place back: the next recount is not held.
    stuck = asyncio.create_task(admission("cancelled", 10))
    await asyncio.sleep(0.01)
    stuck.cancel()
    async with gate.recount() as quiet:
        assert quiet
