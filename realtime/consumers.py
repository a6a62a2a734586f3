"""
The gateway: one socket at /ws/ multiplexing a page's topics (PROTOCOL.md).

The consumer is thin: it checks frames against `protocol`, asks the topic
registry and the services, and hands its sockets to the process's `Hub` for
delivery. It has no channel-layer channel of its own: the hub receives each
event once per process and writes it to the subscribed sockets.
"""

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from realtime import connections, protocol
from realtime.backpressure import (
    daphne_protocol,
    discard_unsent,
    unwritten_bytes,
    write_now,
)
from realtime.delivery import Outgoing, get_hub
from realtime.errors import RealtimeError, TooManySubscriptions
from realtime.presence import get_presence
from realtime.protocol import Request
from realtime.ratelimit import FloodMeter, TokenBucket
from realtime.services import (
    session_expires_at,
    session_still_valid,
    socket_publish,
    subscription_catch_up,
    subscription_check,
)
from realtime.topics import Topic, parse_topic, user_brief

logger = logging.getLogger(__name__)

# Logout and password changes save the session after their signal: look a moment later.
SESSION_CHECK_DELAY = 1.0


@dataclass
class Subscription:
    """One topic on one socket."""

    topic: Topic
    # Highest offset written to the socket; later events only.
    sent: int | None = None
    # While subscribing, live events wait here until `subscribed` and the replay are out.
    held: list[tuple[int | None, Outgoing]] | None = field(default_factory=list)


class RealtimeConsumer(AsyncJsonWebsocketConsumer):
    """Connect, receive frames, disconnect; delivery is the hub's."""

    # No per-socket channel: events arrive through the process's hub.
    channel_layer_alias = None

    async def connect(self):
        self.config = settings.REALTIME
        self.connection_id = uuid.uuid4().hex
        self.user = self.scope["user"]
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        self.subscriptions: dict[str, Subscription] = {}
        self.bucket = TokenBucket(
            burst=self.config["RATE_BURST"], rate=self.config["RATE_PER_SECOND"]
        )
        self.flood = FloodMeter(
            limit=self.config["FLOOD_DROPS"], window=self.config["FLOOD_WINDOW_SECONDS"]
        )
        self.closing = False
        self.tasks: set[asyncio.Task] = set()
        self.wire = daphne_protocol(self.base_send)
        self.max_unwritten = self.config["MAX_BACKLOG_BYTES"]
        self.hub = get_hub()
        subprotocol = (
            protocol.SUBPROTOCOL
            if protocol.SUBPROTOCOL in self.scope.get("subprotocols", [])
            else None
        )
        self.user_brief = user_brief(self.user) if self.user.is_authenticated else None
        await self.accept(subprotocol=subprotocol)
        await self.hub.attach(self)
        self.entry = connections.new_entry(
            connection_id=self.connection_id,
            user_id=self.user_brief and self.user_brief["id"],
            username=self.user_brief and self.user_brief["username"],
            connected_since=protocol.now_iso(),
            client_address=":".join(map(str, self.scope.get("client") or [])) or None,
            user_agent=self.header("user-agent"),
        )
        await self.live_state(connections.get_registry().register(self.entry))
        await self.send_frame(
            protocol.welcome_frame(
                connection_id=self.connection_id,
                user=self.user_brief,
                heartbeat=self.config["HEARTBEAT_SECONDS"],
            )
        )
        if self.user_brief is not None:
            # Sockets end with their session: check again when it expires (the
            # middleware loaded it already, so this reads no database).
            expires_at = self.scope["session"].get_expiry_date()
            self.later(self.seconds_until(expires_at), self.verify_session)

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when cancelled without a disconnect (a server shutting down).
            if getattr(self, "hub", None) is not None and not getattr(self, "cleaned_up", False):
                await self.disconnect(None)

    async def disconnect(self, code):
        if getattr(self, "cleaned_up", False):
            return
        self.cleaned_up = True
        self.closing = True
        for task in list(self.tasks):
            task.cancel()
        for name in list(self.subscriptions):
            await self.drop_subscription(name)
        await self.live_state(connections.get_registry().unregister(self.connection_id))
        await self.hub.detach(self)

    # Inbound ------------------------------------------------------------------

    async def dispatch(self, message):
        # Skips Channels' per-message `aclose_old_connections()` thread hop: every
        # database call here goes through database_sync_to_async, which does it.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if self.closing:
            return
        if text_data is None:
            await self.close_with(protocol.CLOSE_BINARY)
            return
        limit = self.config["MAX_FRAME_BYTES"]
        if len(text_data) > limit or (
            len(text_data) * 4 > limit and len(text_data.encode("utf-8", "surrogatepass")) > limit
        ):
            await self.close_with(protocol.CLOSE_TOO_LARGE)
            return
        retry_after_ms = self.bucket.take()
        if retry_after_ms:
            if self.flood.drop():
                await self.close_with(protocol.CLOSE_FLOODING)
                return
            await self.send_frame(
                protocol.error_frame(
                    "rate_limited",
                    "Too many frames; this one was dropped.",
                    ref=protocol.dropped_frame_ref(text_data),
                    retry_after_ms=retry_after_ms,
                )
            )
            return
        content = None
        try:
            content = await self.decode_json(text_data)
            await self.receive_json(content)
        except RealtimeError as error:
            await self.send_error(error, content)
        except Exception:
            logger.exception("server error on connection %s", self.connection_id)
            await self.send_error(
                RealtimeError("The server failed on this request; it was logged."), content
            )

    async def receive_json(self, content, **kwargs):
        request = protocol.parse_request(content)
        if request.type == "ping":
            await self.send_frame(protocol.with_ref({"type": "pong"}, request.ref))
        elif request.type == "subscribe":
            await self.subscribe(request)
        elif request.type == "unsubscribe":
            await self.unsubscribe(request)
        else:
            await self.publish(request)

    async def send_error(self, error: RealtimeError, content) -> None:
        topic = content.get("topic") if isinstance(content, dict) else None
        await self.send_frame(
            protocol.error_frame(
                error.code,
                error.message,
                ref=protocol.request_ref(content),
                topic=topic if isinstance(topic, str) and len(topic) <= 100 else None,
            )
        )

    # Requests -----------------------------------------------------------------

    async def subscribe(self, request: Request) -> None:
        topic = parse_topic(request.topic)
        if (
            topic.name not in self.subscriptions
            and len(self.subscriptions) >= self.config["MAX_SUBSCRIPTIONS"]
        ):
            raise TooManySubscriptions(
                f"At most {self.config['MAX_SUBSCRIPTIONS']} subscriptions per connection."
            )
        await database_sync_to_async(subscription_check)(user=self.user, topic=topic)
        # A repeated subscribe re-syncs the topic (a client that saw a gap).
        subscription = Subscription(topic=topic)
        renewing = self.subscriptions.get(topic.name)
        self.subscriptions[topic.name] = subscription
        if renewing is None:
            await self.hub.join(topic.name, self, history=topic.history)
            await self.topics_changed()
        offset, replay, recovered = await database_sync_to_async(subscription_catch_up)(
            topic=topic, since=request.since
        )
        if self.closing or self.subscriptions.get(topic.name) is not subscription:
            return
        await self.send_frame(
            protocol.subscribed_frame(
                ref=request.ref,
                topic=topic.name,
                offset=offset,
                recovered=recovered if request.since is not None else None,
            )
        )
        subscription.sent = offset if topic.history else None
        for frame in replay:
            await self.send_text(protocol.encode(frame))
        held, subscription.held = subscription.held, None
        for held_offset, event in held:
            await self.offer_event(topic.name, held_offset, event)
        if topic.presence and self.user_brief and renewing is None:
            first = await self.live_state(
                get_presence().join(topic.name, self.user_brief, self.connection_id)
            )
            if first:
                await self.presence_changed(topic.name, joins=[self.user_brief], leaves=[])
        if topic.presence:
            users = await self.live_state(get_presence().members(topic.name))
            if users is not None:
                await self.send_frame(protocol.presence_state_frame(topic.name, users))

    async def unsubscribe(self, request: Request) -> None:
        name = request.topic
        if name not in self.subscriptions:
            parse_topic(name)  # unknown_topic for a malformed name
        await self.drop_subscription(name)
        await self.send_frame(
            protocol.with_ref({"type": "unsubscribed", "topic": name}, request.ref)
        )

    async def drop_subscription(self, name: str) -> None:
        subscription = self.subscriptions.pop(name, None)
        if subscription is None:
            return
        await self.hub.leave(name, self)
        if not self.closing:
            await self.topics_changed()
        if subscription.topic.presence and self.user_brief:
            last = await self.live_state(
                get_presence().leave(name, self.user_brief["id"], self.connection_id)
            )
            if last:
                await self.presence_changed(name, joins=[], leaves=[self.user_brief])

    async def topics_changed(self) -> None:
        self.entry["topics"] = set(self.subscriptions)
        await self.live_state(connections.get_registry().update(self.connection_id))

    async def live_state(self, operation):
        """Await a registry or presence operation; a Redis outage must not end the socket."""
        try:
            return await operation
        except Exception:
            logger.warning("live state unavailable (Redis down?)", exc_info=True)
            return None

    async def presence_changed(self, topic: str, *, joins: list, leaves: list) -> None:
        self.hub.presence_changed(topic, joins=joins, leaves=leaves)

    async def publish(self, request: Request) -> None:
        topic = parse_topic(request.topic)
        publication = await database_sync_to_async(socket_publish)(
            user=self.user, topic=topic, data=request.data, client_id=request.client_id
        )
        await self.send_frame(
            protocol.with_ref(
                {"type": "ack", "topic": publication.topic, "offset": publication.offset},
                request.ref,
            )
        )

    # Outbound (called by the hub) -------------------------------------------

    async def offer_event(self, topic: str, offset: int | None, event: Outgoing) -> None:
        subscription = self.subscriptions.get(topic)
        if subscription is None or self.closing:
            return
        if subscription.held is not None:
            subscription.held.append((offset, event))
            if len(subscription.held) > self.config["MAX_BACKLOG"]:
                await self.close_with(protocol.CLOSE_SLOW_CONSUMER)
            return
        if offset is not None:
            if subscription.sent is not None and offset <= subscription.sent:
                return
            subscription.sent = offset
        if self.wire is not None and unwritten_bytes(self.wire) > self.max_unwritten:
            # It cannot keep up: shed it rather than hold ever more for it. Its
            # close frame goes right after what is in flight; it reconnects
            # and recovers the rest by offset.
            dropped = discard_unsent(self.wire)
            logger.info(
                "shedding slow connection %s (%d bytes unwritten, %d dropped)",
                self.connection_id,
                unwritten_bytes(self.wire) + dropped,
                dropped,
            )
            await self.close_with(protocol.CLOSE_SLOW_CONSUMER)
            return
        if self.wire is not None and self.wire.state == self.wire.STATE_OPEN:
            # Under daphne: the frame built once for every socket, written directly.
            prepared = event.prepared(self.wire.factory)
            if self.wire._perMessageCompress is not None or not write_now(
                self.wire, prepared.payloadHybi
            ):
                self.wire.sendPreparedMessage(prepared)
        else:
            await self.send_text(event.text)

    async def offer_frame(self, topic: str, text: str) -> None:
        subscription = self.subscriptions.get(topic)
        if subscription is not None and subscription.held is None and not self.closing:
            await self.send_text(text)

    async def control(self, message: dict) -> None:
        """A control message for every socket of every process; act if it names this one."""
        action = message.get("action")
        if action == "close" and self.matches(message):
            await self.close_with(message["code"])
        elif action == "verify_session" and self.matches(message):
            self.later(SESSION_CHECK_DELAY, self.verify_session)
        elif action == "recheck_topic" and message.get("topic") in self.subscriptions:
            self.later(0, self.recheck_topic, message["topic"])

    def later(self, delay: float, func, *args) -> None:
        """Run `func` in its own task after `delay` seconds (the hub's loop must not wait)."""

        async def run():
            await asyncio.sleep(delay)
            if not self.closing:
                await func(*args)

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def verify_session(self) -> None:
        """Close with 4401 once the session behind this socket has ended."""
        valid = await database_sync_to_async(session_still_valid)(
            session_key=self.session_key, user_id=self.user_brief["id"]
        )
        if not valid:
            await self.close_with(protocol.CLOSE_SESSION_ENDED)
            return
        expires_at = await database_sync_to_async(session_expires_at)(session_key=self.session_key)
        if expires_at is not None:
            self.later(self.seconds_until(expires_at), self.verify_session)

    @staticmethod
    def seconds_until(moment: datetime) -> float:
        return max((moment - datetime.now(UTC)).total_seconds() + 0.5, 1.0)

    async def recheck_topic(self, name: str) -> None:
        """Drop a subscription the user may no longer have (removed from a private room)."""
        subscription = self.subscriptions.get(name)
        if subscription is None:
            return
        try:
            await database_sync_to_async(subscription_check)(
                user=self.user, topic=subscription.topic
            )
        except RealtimeError as error:
            await self.drop_subscription(name)
            await self.send_frame(protocol.error_frame(error.code, error.message, topic=name))

    def matches(self, message: dict) -> bool:
        if "connection_id" in message:
            return message["connection_id"] == self.connection_id
        if message.get("user_id") is None or self.user_brief is None:
            return False
        if message["user_id"] != self.user_brief["id"]:
            return False
        return message.get("session_key") in (None, self.session_key)

    # Helpers ------------------------------------------------------------------

    def header(self, name: str) -> str | None:
        for key, value in self.scope.get("headers", []):
            if key.decode("latin1").lower() == name:
                return value.decode("latin1")[:300]
        return None

    async def send_frame(self, frame: dict) -> None:
        await self.send_text(protocol.encode(frame))

    async def send_text(self, text: str) -> None:
        if not self.closing:
            await self.base_send({"type": "websocket.send", "text": text})

    async def close_with(self, code: int) -> None:
        if not self.closing:
            self.closing = True
            await self.close(code=code)

    @classmethod
    async def decode_json(cls, text_data):
        return protocol.decode(text_data)

    @classmethod
    async def encode_json(cls, content):
        return protocol.encode(content)
