"""Drive the real ASGI application (origin check, sessions, auth) over WebsocketCommunicator."""

import asyncio
import json

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from config.asgi import application

ORIGIN = b"http://localhost"


@database_sync_to_async
def session_for(user) -> str:
    """A real signed-in session for `user`, as the login view would make it."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


class Client:
    """A connected socket: send frames, read frames, assert silence."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator
        self.welcome: dict | None = None

    async def send(self, frame: dict) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def send_text(self, text: str) -> None:
        await self.communicator.send_input({"type": "websocket.receive", "text": text})

    async def receive(self, timeout: float = 2) -> dict:
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
        await self.send(frame)
        return await self.receive(timeout)

    async def subscribe(self, topic: str, **fields) -> dict:
        """Subscribe; the `subscribed` reply (replay and presence frames are left to read)."""
        reply = await self.request({"type": "subscribe", "topic": topic, "ref": "s", **fields})
        assert reply["type"] == "subscribed", reply
        return reply

    async def join(self, topic: str, **fields) -> dict:
        """Subscribe and read through the replay and presence state; the `subscribed` reply."""
        reply = await self.subscribe(topic, **fields)
        if topic.startswith("room:"):
            await self.receive_until("presence_state")
            # The socket's own join, batched by the hub, follows shortly.
            while not await self.nothing_arrives(0.15):
                frame = await self.receive()
                assert frame["type"] == "presence_diff", frame
        return reply

    async def nothing_arrives(self, timeout: float = 0.3) -> bool:
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
        # Let the consumer's disconnect (presence, hub) run.
        await asyncio.sleep(0.05)


class ConnectionClosed(Exception):
    def __init__(self, code):
        super().__init__(f"closed with {code}")
        self.code = code


async def connect(user=None, *, origin: bytes | None = ORIGIN, subprotocols=None) -> Client:
    headers = []
    if origin is not None:
        headers.append((b"origin", origin))
    if user is not None:
        key = await session_for(user)
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode()))
    communicator = WebsocketCommunicator(
        application, "/ws/", headers=headers, subprotocols=subprotocols
    )
    connected, subprotocol = await communicator.connect()
    assert connected, f"refused: {subprotocol}"
    client = Client(communicator)
    client.subprotocol = subprotocol
    client.welcome = await client.receive()
    assert client.welcome["type"] == "welcome"
    return client
