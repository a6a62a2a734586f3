"""
The consumer: one socket at /ws/ multiplexing a page's topics (PROTOCOL.md).

It is thin: it checks frames against `protocol`, dispatches each frame type to
one handler, asks the topic registry whether the user may, calls `publish()`
and the history, and hands its socket to the process's `Hub` for delivery. It
has no channel-layer channel of its own: the hub receives each event once per
process and offers it to the subscribed sockets.
"""

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from realtime.gateway import logs, metrics, outages, protocol
from realtime.gateway.batching import batchers
from realtime.gateway.database import in_database
from realtime.gateway.errors import Forbidden, RealtimeError, TooManySubscriptions, Unavailable
from realtime.gateway.history import catch_up
from realtime.gateway.hub import Hub, get_hub
from realtime.gateway.logs import LogLimiter
from realtime.gateway.presence import get_presence
from realtime.gateway.protocol import Request
from realtime.gateway.ratelimit import FloodMeter, TokenBucket
from realtime.gateway.registry import get_registry, new_entry
from realtime.gateway.rights import authorize_subscribe, subscriptions_refused
from realtime.gateway.sessions import session_expires_at, session_still_valid
from realtime.gateway.topics import Topic, parse_topic, user_brief
from realtime.gateway.transport import DaphneSocket, Outgoing, socket_of

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
    # Whether the socket's user counts in the topic's presence through it (a
    # page that only counts unread messages subscribes with presence: false).
    in_presence: bool = False


@dataclass
class SocketState:
    """Everything one socket keeps, made when the consumer is."""

    connection_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    user: object = None
    user_brief: dict | None = None
    session_key: str | None = None
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    bucket: TokenBucket | None = None
    flood: FloodMeter | None = None
    # The daphne socket for the fast path and shedding (None elsewhere).
    wire: DaphneSocket | None = None
    hub: Hub | None = None
    entry: dict | None = None
    # Its tasks and timers (asyncio.Task, asyncio.TimerHandle): cancelled when it goes.
    pending: set = field(default_factory=set)
    closing: bool = False
    cleaned_up: bool = False
    # Counted in realtime_connections (past the handshake and the cap).
    admitted: bool = False
    # The code this server closed with (None: the client closed, or vanished).
    close_code: int | None = None
    log_limiter: LogLimiter = field(default_factory=LogLimiter)


class RealtimeConsumer(AsyncJsonWebsocketConsumer):
    """Connect, receive frames, disconnect; delivery is the hub's."""

    # No per-socket channel: events arrive through the process's hub.
    channel_layer_alias = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = settings.REALTIME
        self.state = SocketState()
        self.handlers = {
            "ping": self.handle_ping,
            "subscribe": self.handle_subscribe,
            "unsubscribe": self.handle_unsubscribe,
            "publish": self.handle_publish,
            "typing": self.handle_typing,
        }

    @property
    def connection_id(self) -> str:
        return self.state.connection_id

    async def connect(self):
        state = self.state
        state.user = self.scope["user"]
        state.session_key = getattr(self.scope.get("session"), "session_key", None)
        state.user_brief = user_brief(state.user) if state.user.is_authenticated else None
        logs.connection_id.set(state.connection_id)
        logs.user_id.set(state.user_brief and state.user_brief["id"])
        state.bucket = TokenBucket(
            burst=self.config["RATE_BURST"], rate=self.config["RATE_PER_SECOND"]
        )
        state.flood = FloodMeter(
            limit=self.config["FLOOD_DROPS"], window=self.config["FLOOD_WINDOW_SECONDS"]
        )
        state.wire = socket_of(self.base_send)
        state.hub = get_hub()
        subprotocol = (
            protocol.SUBPROTOCOL
            if protocol.SUBPROTOCOL in self.scope.get("subprotocols", [])
            else None
        )
        await self.accept(subprotocol=subprotocol)
        await state.hub.attach(self)
        state.entry = new_entry(
            connection_id=state.connection_id,
            user_id=state.user_brief and state.user_brief["id"],
            username=state.user_brief and state.user_brief["username"],
            connected_since=protocol.now_iso(),
            client_address=":".join(map(str, self.scope.get("client") or [])) or None,
            user_agent=self.header("user-agent"),
        )
        registered = await self.live_state(get_registry().register(state.entry))
        self.scope.get("realtime.handshake_done", lambda: None)()
        if registered is False:
            # Over its connection cap (a Redis outage admits rather than refuses).
            metrics.handshakes.labels("over_cap").inc()
            await self.close_with(protocol.CLOSE_TOO_MANY_CONNECTIONS)
            return
        metrics.handshakes.labels("accepted").inc()
        metrics.connections.labels(self.kind()).inc()
        state.admitted = True
        await self.send_frame(
            protocol.welcome_frame(
                connection_id=state.connection_id,
                user=state.user_brief,
                heartbeat=self.config["HEARTBEAT_SECONDS"],
            )
        )
        if state.user_brief is not None:
            # Sockets end with their session: check again when it expires (the
            # middleware loaded it already, so this reads no database).
            expires_at = self.scope["session"].get_expiry_date()
            self.later(self.seconds_until(expires_at), self.verify_session)
        self.later(self.recheck_delay(), self.recheck_periodically)

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when cancelled without a disconnect (a server shutting down).
            if self.state.hub is not None and not self.state.cleaned_up:
                await self.disconnect(None)

    async def disconnect(self, code):
        state = self.state
        if state.cleaned_up or state.hub is None:
            return
        state.cleaned_up = True
        state.closing = True
        for task_or_timer in list(state.pending):
            task_or_timer.cancel()
        for name in list(state.subscriptions):
            await self.drop_subscription(name)
        await self.live_state(get_registry().unregister(state.connection_id))
        await state.hub.detach(self)
        metrics.closes.labels(str(state.close_code or code or 1006)).inc()
        if state.admitted:
            metrics.connections.labels(self.kind()).dec()

    # Inbound ------------------------------------------------------------------

    async def dispatch(self, message):
        # Skips Channels' per-message `aclose_old_connections()` thread hop: every
        # database call here goes through in_database (database_sync_to_async), which does it.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if self.state.closing:
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
        retry_after_ms = self.state.bucket.take()
        if retry_after_ms:
            if self.state.flood.drop():
                await self.close_with(protocol.CLOSE_FLOODING)
                return
            metrics.errors.labels("rate_limited").inc()
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
        logs.topic.set(None)
        logs.ref.set(None)
        try:
            content = protocol.decode(text_data)
            if isinstance(content, dict):
                logs.topic.set(
                    content.get("topic") if protocol.is_text(content.get("topic")) else None
                )
                logs.ref.set(protocol.request_ref(content))
            await self.answering(content, self.receive_json(content))
        except RealtimeError as error:
            await self.send_error(error, content)

    async def answering(self, content, request) -> None:
        """Run a request's coroutine; answer its failure with the `error` it deserves."""
        try:
            await request
        except RealtimeError as error:
            await self.send_error(error, content)
        except outages.DATABASE_DOWN as exc:
            outages.database.failed(exc)
            await self.send_error(
                Unavailable(
                    "The database is unavailable; nothing was stored. Try again.",
                    retry_after_ms=outages.RETRY_AFTER_MS,
                ),
                content,
            )
        except Exception:
            if self.state.log_limiter.allow("server_error"):
                logger.exception("server error on connection %s", self.connection_id)
            await self.send_error(
                RealtimeError("The server failed on this request; it was logged."), content
            )

    async def receive_json(self, content, **kwargs):
        try:
            request = protocol.parse_request(content)
        except RealtimeError:
            metrics.frames_in.labels("invalid").inc()
            raise
        metrics.frames_in.labels(request.type).inc()
        await self.handlers[request.type](request)

    async def send_error(self, error: RealtimeError, content) -> None:
        metrics.errors.labels(error.code).inc()
        if self.state.log_limiter.allow(error.code):
            # One line per kind of refusal per connection per minute, at most.
            logger.info("refused with %s: %s", error.code, error.message)
        topic = content.get("topic") if isinstance(content, dict) else None
        await self.send_frame(
            protocol.error_frame(
                error.code,
                error.message,
                ref=protocol.request_ref(content),
                topic=topic if protocol.is_text(topic) and len(topic) <= 100 else None,
                retry_after_ms=error.retry_after_ms,
            )
        )

    # Handlers, one per client frame type --------------------------------------

    async def handle_ping(self, request: Request) -> None:
        await self.send_frame(protocol.with_ref({"type": "pong"}, request.ref))

    async def handle_subscribe(self, request: Request) -> None:
        topic = self.topic_to_subscribe(request.topic)
        await in_database(authorize_subscribe, self.state.user, topic)
        subscription, renewing = await self.start_subscription(
            topic, presence=bool(topic.presence and request.presence and self.state.user_brief)
        )
        offset, replay, recovered = await in_database(catch_up, topic=topic, since=request.since)
        if self.state.closing or self.state.subscriptions.get(topic.name) is not subscription:
            return  # closed, or subscribed again meanwhile: that subscribe answers
        await self.send_frame(
            protocol.subscribed_frame(
                ref=request.ref,
                topic=topic.name,
                offset=offset,
                recovered=recovered if request.since is not None else None,
            )
        )
        subscription.sent = offset if topic.history else None
        if request.since is not None:
            metrics.replay_events.observe(len(replay))
        await self.send_replay(replay)
        await self.release_held(subscription)
        if subscription.in_presence and not renewing:
            await self.presence_join(topic.name)
        if topic.presence and request.presence:
            await self.send_presence_state(topic.name)

    async def handle_unsubscribe(self, request: Request) -> None:
        name = request.topic
        if name not in self.state.subscriptions:
            parse_topic(name)  # unknown_topic for a malformed name
        await self.drop_subscription(name)
        await self.send_frame(
            protocol.with_ref({"type": "unsubscribed", "topic": name}, request.ref)
        )

    async def handle_publish(self, request: Request) -> None:
        topic = parse_topic(request.topic)
        outcome = batchers.get().submit(self.state.user, topic, request.data, request.client_id)
        # Answered once its batch has committed; the socket's next frames go on
        # meanwhile (its publishes are still stored in the order it sent them),
        # so one socket's publishes can share a batch.
        content = {"ref": request.ref, "topic": request.topic}
        task = asyncio.get_running_loop().create_task(
            self.answering(content, self.ack_when_stored(request, outcome))
        )
        self.state.pending.add(task)
        task.add_done_callback(self.state.pending.discard)

    async def ack_when_stored(self, request: Request, outcome: asyncio.Future) -> None:
        publication = await outcome
        await self.send_frame(
            protocol.with_ref(
                {"type": "ack", "topic": publication.topic, "offset": publication.offset},
                request.ref,
            )
        )

    async def handle_typing(self, request: Request) -> None:
        """Forward "this user is typing" to the topic's other subscribers; no reply."""
        topic = parse_topic(request.topic)
        if self.state.user_brief is None:
            raise Forbidden("Sign in to say you are typing.")
        if topic.name not in self.state.subscriptions:
            raise Forbidden(f"Subscribe to {topic.name} before typing on it.")
        if not topic.presence:
            raise Forbidden(f"{topic.name} has no presence, so no typing.")
        self.state.hub.typing(topic.name, self.state.user_brief)

    # The steps of a subscribe ---------------------------------------------------

    def topic_to_subscribe(self, name) -> Topic:
        """The topic, unless malformed or one too many for this socket."""
        topic = parse_topic(name)
        cap = self.config["MAX_SUBSCRIPTIONS"]
        if topic.name not in self.state.subscriptions and len(self.state.subscriptions) >= cap:
            raise TooManySubscriptions(f"At most {cap} subscriptions per connection.")
        return topic

    async def start_subscription(
        self, topic: Topic, *, presence: bool = False
    ) -> tuple[Subscription, bool]:
        """
        A new subscription holding live events until `subscribed` and the replay
        are out; routed by the hub from now. A repeated subscribe re-syncs the
        topic (a client that saw a gap). Returns it and whether it renews one.
        """
        subscriptions = self.state.subscriptions
        renewing = topic.name in subscriptions
        # A renewed subscription keeps its place in presence (or its absence).
        in_presence = subscriptions[topic.name].in_presence if renewing else presence
        subscription = Subscription(topic=topic, in_presence=in_presence)
        subscriptions[topic.name] = subscription
        if not renewing:
            try:
                await self.state.hub.join(topic, self)
            except BaseException:
                # All or nothing: no subscription without its route (a retry joins again).
                if subscriptions.get(topic.name) is subscription:
                    del subscriptions[topic.name]
                raise
            await self.topics_changed()
            metrics.subscriptions.labels(topic.family.name).inc()
        return subscription, renewing

    async def send_replay(self, replay: list[dict]) -> None:
        """The missed events, counted against the backlog bound like live ones."""
        for frame in replay:
            if await self.shed_if_behind():
                return
            await self.send_frame(frame)

    async def release_held(self, subscription: Subscription) -> None:
        """Live events that arrived while subscribing, after the replay (duplicates dropped)."""
        held, subscription.held = subscription.held, None
        for offset, event in held:
            await self.offer_event(subscription.topic.name, offset, event)

    async def presence_join(self, topic: str) -> None:
        brief = self.state.user_brief
        first = await self.live_state(get_presence().join(topic, brief, self.connection_id))
        if first:
            self.state.hub.presence_changed(topic, joins=[brief], leaves=[])

    async def send_presence_state(self, topic: str) -> None:
        users = await self.live_state(get_presence().members(topic))
        if users is not None:
            await self.send_frame(protocol.presence_state_frame(topic, users))

    # Leaving ------------------------------------------------------------------

    async def drop_subscription(self, name: str) -> None:
        state = self.state
        subscription = state.subscriptions.pop(name, None)
        if subscription is None:
            return
        metrics.subscriptions.labels(subscription.topic.family.name).dec()
        await state.hub.leave(name, self)
        if not state.closing:
            await self.topics_changed()
        if subscription.in_presence:
            last = await self.live_state(
                get_presence().leave(name, state.user_brief["id"], self.connection_id)
            )
            if last:
                state.hub.presence_changed(name, joins=[], leaves=[state.user_brief])

    async def topics_changed(self) -> None:
        self.state.entry["topics"] = set(self.state.subscriptions)
        self.state.entry["present"] = {
            name for name, sub in self.state.subscriptions.items() if sub.in_presence
        }
        await self.live_state(get_registry().update(self.connection_id))

    async def live_state(self, operation):
        """Await a registry or presence operation; a Redis outage must not end the socket."""
        try:
            result = await operation
        except Exception as exc:
            outages.redis.failed(exc)
            return None
        outages.redis.succeeded()
        return result

    # Outbound (called by the hub) -------------------------------------------

    async def offer_event(self, topic: str, offset: int | None, event: Outgoing) -> None:
        state = self.state
        subscription = state.subscriptions.get(topic)
        if subscription is None or state.closing:
            return
        if subscription.held is not None:
            subscription.held.append((offset, event))
            if len(subscription.held) > self.config["MAX_BACKLOG"]:
                metrics.shed.inc()
                await self.close_with(protocol.CLOSE_SLOW_CONSUMER)
            return
        if offset is not None:
            if subscription.sent is not None and offset <= subscription.sent:
                return
            subscription.sent = offset
        if await self.shed_if_behind():
            return
        wire = state.wire
        if wire is not None and wire.is_open():
            wire.write_event(event)
        else:
            await self.send_text(event.text)

    async def shed_if_behind(self) -> bool:
        """
        True when the client cannot keep up: it is shed rather than held ever
        more for. Its close frame goes right after what is in flight; it
        reconnects and recovers the rest by offset.
        """
        wire = self.state.wire
        if wire is None or wire.unwritten_bytes() <= self.config["MAX_BACKLOG_BYTES"]:
            return False
        dropped = wire.discard_unsent()
        metrics.shed.inc()
        logger.info(
            "shedding slow connection %s (%d bytes unwritten, %d dropped)",
            self.connection_id,
            wire.unwritten_bytes() + dropped,
            dropped,
        )
        await self.close_with(protocol.CLOSE_SLOW_CONSUMER)
        return True

    async def offer_frame(
        self, topic: str, text: str, except_user: int | None = None, presence: bool = False
    ) -> None:
        subscription = self.state.subscriptions.get(topic)
        if subscription is None or subscription.held is not None or self.state.closing:
            return
        if presence and not subscription.in_presence and self.state.user_brief is not None:
            return  # subscribed with presence: false
        if except_user is not None and self.state.user_brief is not None:
            if self.state.user_brief["id"] == except_user:
                return  # the typing user's own sockets
        await self.send_text(text)

    async def control(self, message: dict) -> None:
        """A control message for every socket of every process; act if it names this one."""
        action = message.get("action")
        if action == "close" and self.matches(message):
            await self.close_with(message["code"])
        elif action == "verify_session" and self.matches(message):
            self.later(SESSION_CHECK_DELAY, self.verify_session)
        elif action == "recheck_topic" and message.get("topic") in self.state.subscriptions:
            self.later(0, self.recheck_topics, [message["topic"]])
        elif action == "recheck_user" and self.matches(message):
            self.later(0, self.recheck_topics, list(self.state.subscriptions))

    def later(self, delay: float, func, *args) -> None:
        """
        Run `func` in its own task after `delay` seconds (the hub's loop must
        not wait). Until then only a timer is kept: a task sleeping for every
        idle socket would cost a kilobyte and more each.
        """
        loop = asyncio.get_running_loop()
        pending = self.state.pending

        def due() -> None:
            pending.discard(timer)
            if self.state.closing:
                return
            task = loop.create_task(self.run_check(func, *args))
            pending.add(task)
            task.add_done_callback(pending.discard)

        timer = loop.call_later(max(0.0, delay), due)
        pending.add(timer)

    async def run_check(self, func, *args) -> None:
        try:
            await func(*args)
        except outages.DATABASE_DOWN as exc:
            # Checked again once the database is back, never skipped.
            outages.database.failed(exc)
            self.later(outages.RECHECK_AFTER_OUTAGE_SECONDS, func, *args)

    async def verify_session(self) -> None:
        """Close with 4401 once the session behind this socket has ended."""
        state = self.state
        valid = await in_database(
            session_still_valid, session_key=state.session_key, user_id=state.user_brief["id"]
        )
        if not valid:
            await self.close_with(protocol.CLOSE_SESSION_ENDED)
            return
        expires_at = await in_database(session_expires_at, session_key=state.session_key)
        if expires_at is not None:
            self.later(self.seconds_until(expires_at), self.verify_session)

    @staticmethod
    def seconds_until(moment: datetime) -> float:
        return max((moment - datetime.now(UTC)).total_seconds() + 0.5, 1.0)

    async def recheck_topics(self, names: list[str]) -> None:
        """
        Drop the subscriptions among `names` that the user may no longer have
        (removed from a private room, no longer staff, the room deleted), each
        with the `error` a new subscribe would get.
        """
        topics = [sub.topic for n in names if (sub := self.state.subscriptions.get(n))]
        if not topics:
            return
        refused = await in_database(subscriptions_refused, self.state.user, topics)
        for name, error in refused.items():
            if name in self.state.subscriptions:
                await self.drop_subscription(name)
                await self.send_frame(protocol.error_frame(error.code, error.message, topic=name))

    async def recheck_periodically(self) -> None:
        """Now and then, recheck every subscription: bounds what a missed signal can leak."""
        await self.recheck_topics(list(self.state.subscriptions))
        self.later(self.recheck_delay(), self.recheck_periodically)

    def recheck_delay(self) -> float:
        # Jittered, so that sockets opened together do not recheck together.
        return self.config["RECHECK_SECONDS"] * random.uniform(0.75, 1.25)

    def matches(self, message: dict) -> bool:
        if "connection_id" in message:
            return message["connection_id"] == self.connection_id
        brief = self.state.user_brief
        if message.get("user_id") is None or brief is None:
            return False
        if message["user_id"] != brief["id"]:
            return False
        return message.get("session_key") in (None, self.state.session_key)

    # Helpers ------------------------------------------------------------------

    def header(self, name: str) -> str | None:
        for key, value in self.scope.get("headers", []):
            if key.decode("latin1").lower() == name:
                return value.decode("latin1")[:300]
        return None

    async def send_frame(self, frame: dict) -> None:
        await self.send_text(protocol.encode(frame))

    async def send_text(self, text: str) -> None:
        if self.state.closing:
            return
        if self.state.wire is not None and self.state.wire.is_gone():
            # daphne's socket is closing (the client closed or vanished) and its
            # disconnect is on its way: writing would raise, and nobody reads.
            self.state.closing = True
            return
        await self.base_send({"type": "websocket.send", "text": text})

    async def close_with(self, code: int) -> None:
        if not self.state.closing:
            self.state.closing = True
            self.state.close_code = code
            if code != protocol.CLOSE_RESTART:  # a restart closes every socket at once
                logger.info("closing connection %s with %s", self.connection_id, code)
            await self.close(code=code)

    def kind(self) -> str:
        return "authenticated" if self.state.user_brief else "anonymous"
