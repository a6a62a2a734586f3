"""
A signed-in, protocol-aware test client for projects that use the gateway.

It drives the project's real ASGI application (origin check, session, auth
middleware, the consumer and the hub) through Channels' `WebsocketCommunicator`,
so a test sees what a browser would: frames in order, close codes, and silence
where nothing should arrive. Use it from async pytest tests with database
access (pytest-django's `transactional_db`, or `django_db` with
`transaction=True`: the consumer reads the database from its own thread).

    from realtime.gateway.testing import connect

    async def test_member_hears_a_message(user, room):
        client = await connect(user)
        await client.join("room:general")
        ack = await client.request({"type": "publish", "topic": "room:general",
                                    "ref": "p", "data": {"text": "hi"}})
        assert ack["type"] == "ack"
        event = await client.receive()
        assert event["data"]["text"] == "hi"
        assert await client.nothing_arrives()
        await client.close()
"""

import asyncio
import json

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.utils.module_loading import import_string

from realtime.gateway.sessions import session_store
from realtime.gateway.topics import parse_topic

ORIGIN = b"http://localhost"
HOST = b"localhost"
PATH = "/ws/"


class ConnectionClosed(Exception):
    """The server closed the socket while a frame was expected."""

    def __init__(self, code):
        super().__init__(f"closed with {code}")
        self.code = code


@database_sync_to_async
def session_for(user) -> str:
    """A real signed-in session for `user`, as Django's login view would make it."""
    session = session_store(None)
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


class Client:
    """A connected socket: send frames, read frames, assert silence and close codes."""

    def __init__(self, communicator: WebsocketCommunicator, subprotocol: str | None):
        self.communicator = communicator
        self.subprotocol = subprotocol
        self.welcome: dict | None = None

    async def send(self, frame: dict) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def send_text(self, text: str) -> None:
        """Send raw text (not necessarily JSON, not necessarily valid)."""
        await self.communicator.send_input({"type": "websocket.receive", "text": text})

    async def receive(self, timeout: float = 2) -> dict:
        """The next frame; ConnectionClosed if the server closed instead."""
        output = await self.communicator.receive_output(timeout)
        if output["type"] == "websocket.close":
            raise ConnectionClosed(output.get("code"))
        return json.loads(output["text"])

    async def receive_until(self, frame_type: str, timeout: float = 3) -> list[dict]:
        """Frames up to and including the first of `frame_type`."""
        frames = []
        while True:
            frames.append(await self.receive(timeout))
            if frames[-1]["type"] == frame_type:
                return frames

    async def request(self, frame: dict, timeout: float = 2) -> dict:
        """Send a frame and return the next one."""
        await self.send(frame)
        return await self.receive(timeout)

    async def subscribe(self, topic: str, **fields) -> dict:
        """Subscribe; the `subscribed` reply (replay and presence frames are left to read)."""
        reply = await self.request({"type": "subscribe", "topic": topic, "ref": "s", **fields})
        assert reply["type"] == "subscribed", reply
        return reply

    async def join(self, topic: str, **fields) -> dict:
        """Subscribe and read through the presence state and own join; the `subscribed` reply."""
        reply = await self.subscribe(topic, **fields)
        if parse_topic(topic).presence:
            await self.receive_until("presence_state")
            # The socket's own join, batched by the hub, follows shortly.
            while not await self.nothing_arrives(0.15):
                frame = await self.receive()
                assert frame["type"] == "presence_diff", frame
        return reply

    async def publish(self, topic: str, data: dict, **fields) -> dict:
        """Publish and return the reply (`ack` or `error`)."""
        return await self.request(
            {"type": "publish", "topic": topic, "ref": "p", "data": data, **fields}
        )

    async def nothing_arrives(self, timeout: float = 0.3) -> bool:
        """True when no frame arrives within `timeout` seconds."""
        return await self.communicator.receive_nothing(timeout)

    async def closed_with(self, timeout: float = 2) -> int | None:
        """Read until the server closes; the close code. Then the client side closes too."""
        while True:
            output = await self.communicator.receive_output(timeout)
            if output["type"] == "websocket.close":
                code = output.get("code")
                await self.communicator.send_input({"type": "websocket.disconnect", "code": code})
                await self.communicator.wait(timeout)
                return code

    async def close(self) -> None:
        await self.communicator.disconnect()
        # Let the consumer's disconnect logic (presence, hub) run.
        await asyncio.sleep(0.05)


async def communicator_for(
    user=None,
    *,
    origin: bytes | None = ORIGIN,
    subprotocols: list[str] | None = None,
    application=None,
    path: str = PATH,
) -> WebsocketCommunicator:
    """
    A not yet connected socket through the project's ASGI application
    (`settings.ASGI_APPLICATION` unless given), signed in as `user`
    (anonymous when None): for tests of what happens at the handshake.
    """
    headers = [(b"host", HOST)]
    if origin is not None:
        headers.append((b"origin", origin))
    if user is not None:
        key = await session_for(user)
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode()))
    if application is None:
        application = import_string(settings.ASGI_APPLICATION)
    return WebsocketCommunicator(application, path, headers=headers, subprotocols=subprotocols)


async def connect(user=None, **options) -> Client:
    """A socket signed in as `user` (anonymous when None), past `welcome`."""
    communicator = await communicator_for(user, **options)
    connected, subprotocol = await communicator.connect()
    assert connected, f"refused: {subprotocol}"
    client = Client(communicator, subprotocol)
    client.welcome = await client.receive()
    assert client.welcome["type"] == "welcome", client.welcome
    return client
