"""
Delivery: how a publication reaches the sockets of this process.

Stock Channels sends one channel-layer message per subscriber and dispatches
it through each consumer (a thread hop and a handler call per subscriber per
event). Here each process has one `Hub` per event loop with one channel-layer
channel: it joins a topic's group once, when its first local socket subscribes,
receives each event once, encodes it once and writes it to every local
subscriber's socket.

The hub holds connections and routes and fans out; offset ordering is
`OffsetOrder`'s (one per topic with history), presence batching
`PresenceBatch`'s, server-fed topics are their family's `feed`.
"""

import asyncio
import contextvars
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from channels.layers import get_channel_layer

from realtime.gateway import metrics, outages, protocol
from realtime.gateway.backends import PerLoop
from realtime.gateway.control import CONTROL_GROUP, group_name, send_topic_frame
from realtime.gateway.database import in_database
from realtime.gateway.errors import Unavailable
from realtime.gateway.history import event_frame, events_between, topic_offset, topic_offsets
from realtime.gateway.ordering import OffsetOrder
from realtime.gateway.presence import PresenceBatch
from realtime.gateway.protocol import CLOSE_SLOW_CONSUMER
from realtime.gateway.topics import GatewayStats, Topic
from realtime.gateway.transport import Outgoing
from realtime.gateway.upkeep import keep_live_state

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 3.0
TYPING_EVERY_SECONDS = 2.0  # at most one `typing` per user and topic forwarded this often
REJOIN_EVERY = 10  # sweeps between two rejoins of every group when nothing failed
PRESENCE_BATCH_SECONDS = 0.05


def process_task(coroutine) -> asyncio.Task:
    """
    A task of the process, not of the socket that happened to start it: with
    fresh context variables, so its log lines carry no connection's ids.
    """
    return asyncio.get_running_loop().create_task(coroutine, context=contextvars.Context())


class LocalConnection(Protocol):
    """What the hub needs of a socket (the consumer implements it)."""

    connection_id: str

    async def offer_event(self, topic: str, offset: int | None, event: Outgoing) -> None: ...
    async def offer_frame(
        self, topic: str, text: str, except_user: int | None = None, presence: bool = False
    ) -> None: ...
    async def control(self, message: dict) -> None: ...
    async def close_with(self, code: int) -> None: ...


@dataclass
class TopicRoute:
    """The local subscribers of one topic, and its ordering (topics with history)."""

    topic: Topic
    subscribers: set = field(default_factory=set)
    order: OffsetOrder | None = None
    feeder: asyncio.Task | None = None


class Hub:
    """Per-process fan-out from the channel layer to local sockets."""

    def __init__(self):
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.routes: dict[str, TopicRoute] = {}
        self.connections: dict[str, LocalConnection] = {}
        self.reader: asyncio.Task | None = None
        self.sweeper: asyncio.Task | None = None
        self.keeper: asyncio.Task | None = None
        self.ready = asyncio.Lock()
        self.presence_pending: dict[str, PresenceBatch] = {}
        # Routes being opened (one group_add per topic however many subscribe at once).
        self.opening: dict[str, asyncio.Lock] = {}
        # Set when the channel layer failed; the sweep rejoins every group until it works.
        self.layer_suspect = False
        self.background_tasks: set[asyncio.Task] = set()
        # Worst publish-to-write delay seen since the last feed of a server-fed topic.
        self.lag_ms = 0.0
        # (user id, topic) -> when this process last forwarded that user's `typing`.
        self.typing_sent: dict[tuple[int, str], float] = {}

    # Connections ------------------------------------------------------------

    async def attach(self, connection: LocalConnection) -> None:
        async with self.ready:
            if self.reader is None or self.reader.done():
                self.channel = await self.layer.new_channel(prefix="hub.")
                try:
                    await self.layer.group_add(CONTROL_GROUP, self.channel)
                except Exception:
                    # The sweep joins it once the broker is back.
                    self.layer_suspect = True
                    logger.warning("channel layer unavailable: control group not joined yet")
                self.reader = process_task(self.read())
                self.sweeper = process_task(self.sweep())
                self.keeper = process_task(keep_live_state())
        self.connections[connection.connection_id] = connection

    async def detach(self, connection: LocalConnection) -> None:
        self.connections.pop(connection.connection_id, None)
        for topic in [t for t, r in self.routes.items() if connection in r.subscribers]:
            await self.leave(topic, connection)
        if not self.connections:
            await self.stop()

    async def stop(self) -> None:
        async with self.ready:
            if self.connections or self.reader is None:
                return
            for route in self.routes.values():
                self.close_route(route)
            self.routes.clear()
            self.reader.cancel()
            self.reader = None
            self.sweeper.cancel()
            self.keeper.cancel()
            try:
                await self.layer.group_discard(CONTROL_GROUP, self.channel)
            except Exception:
                logger.warning("could not leave the control group", exc_info=True)

    async def close_all(self, code: int) -> None:
        """Close every socket of this process with `code` (a graceful restart)."""
        for connection in list(self.connections.values()):
            await connection.close_with(code)

    # Topics -----------------------------------------------------------------

    async def join(self, topic: Topic, connection: LocalConnection) -> None:
        """
        Route `topic`'s events to `connection` from now on; all or nothing: when
        the channel layer or the database cannot be reached, Unavailable and no
        route (a later join tries again).
        """
        route = self.routes.get(topic.name)
        if route is None:
            async with self.opening.setdefault(topic.name, asyncio.Lock()):
                route = self.routes.get(topic.name)
                if route is None:
                    route = self.routes[topic.name] = await self.open_route(topic)
            self.opening.pop(topic.name, None)
        route.subscribers.add(connection)

    async def open_route(self, topic: Topic) -> TopicRoute:
        """A route joined to its group, with its ordering from the database's offset."""
        try:
            await self.layer.group_add(group_name(topic.name), self.channel)
        except Exception as exc:
            self.layer_suspect = True
            metrics.backend_failures.labels("channel_layer").inc()
            await self.discard_group(topic.name)
            logger.warning("channel layer refused joining %s: %r", topic.name, exc)
            raise Unavailable("The message broker is unavailable; try again.") from exc
        route = TopicRoute(topic=topic)
        if topic.history:
            # Everything up to here is in the database; later events come by the group.
            try:
                delivered = await in_database(topic_offset, topic.name)
            except Exception as exc:
                await self.discard_group(topic.name)
                raise Unavailable("The database is unavailable; try again.") from exc
            route.order = OffsetOrder(
                topic.name,
                delivered=delivered,
                load=lambda after, before: self.load(topic.name, after, before),
                deliver=lambda offset, text: self.fan_out(route, offset, text),
            )
        if topic.family.feed_interval is not None:
            route.feeder = process_task(self.feed(route))
        return route

    async def discard_group(self, topic: str) -> None:
        try:
            await self.layer.group_discard(group_name(topic), self.channel)
        except Exception:
            logger.warning("could not leave group of %s", topic, exc_info=True)

    async def rejoin_groups(self) -> None:
        """
        Join the control group and every route's group again (joining is
        idempotent): after a broker outage, no route stays deaf.
        """
        try:
            await self.layer.group_add(CONTROL_GROUP, self.channel)
            for topic in list(self.routes):
                await self.layer.group_add(group_name(topic), self.channel)
        except Exception:
            self.layer_suspect = True
            logger.warning("channel layer still unavailable; groups not rejoined yet")
        else:
            if self.layer_suspect:
                logger.info("channel layer back: %d topic groups rejoined", len(self.routes))
            self.layer_suspect = False

    async def leave(self, topic: str, connection: LocalConnection) -> None:
        route = self.routes.get(topic)
        if route is None:
            return
        route.subscribers.discard(connection)
        if not route.subscribers:
            del self.routes[topic]
            self.close_route(route)
            await self.discard_group(topic)

    @staticmethod
    def close_route(route: TopicRoute) -> None:
        if route.order is not None:
            route.order.close()
        if route.feeder is not None:
            route.feeder.cancel()

    def subscribers(self, topic: str) -> Iterable[LocalConnection]:
        route = self.routes.get(topic)
        return tuple(route.subscribers) if route else ()

    async def feed(self, route: TopicRoute) -> None:
        """While anyone here subscribes to a server-fed topic, publish its family's feed."""
        topic = route.topic
        while self.routes.get(topic.name) is route:
            try:
                stats = GatewayStats(delivery_lag_ms=self.lag_ms)
                self.lag_ms = 0.0
                data = await in_database(topic.family.feed, topic, stats)
                frame = event_frame(topic.name, None, protocol.now_iso(), data)
                await self.fan_out(route, None, protocol.encode(frame))
            except Exception:
                logger.exception("feed of %s failed", topic.name)
            await asyncio.sleep(topic.family.feed_interval)

    # Presence ---------------------------------------------------------------

    def presence_changed(self, topic: str, *, joins: list[dict], leaves: list[dict]) -> None:
        """Queue a presence change; one `presence_diff` per topic goes out per batch."""
        batch = self.presence_pending.get(topic)
        if batch is None:
            batch = self.presence_pending[topic] = PresenceBatch()
            asyncio.get_running_loop().call_later(
                PRESENCE_BATCH_SECONDS, lambda: self.background(self.flush_presence(topic))
            )
        batch.add(joins=joins, leaves=leaves)

    async def flush_presence(self, topic: str) -> None:
        batch = self.presence_pending.pop(topic, None)
        diff = batch.diff() if batch else None
        if diff is None:
            return
        try:
            await send_topic_frame(topic, protocol.presence_diff_frame(topic, *diff))
        except Exception as exc:
            # The broker is down: this diff is lost; newcomers still get presence_state.
            outages.channel_layer.failed(exc)

    async def flush_all_presence(self) -> None:
        """Send the presence diffs still waiting for their batch (before exiting)."""
        for topic in list(self.presence_pending):
            await self.flush_presence(topic)

    # Typing ---------------------------------------------------------------

    def typing(self, topic: str, user: dict) -> bool:
        """
        Forward `user`'s `typing` on `topic` to its other subscribers on every
        process (not stored, no offset), at most once per TYPING_EVERY_SECONDS
        per user and topic from this process; False when dropped by that limit.
        """
        now = asyncio.get_running_loop().time()
        key = (user["id"], topic)
        last = self.typing_sent.get(key)
        if last is not None and now - last < TYPING_EVERY_SECONDS:
            return False
        if len(self.typing_sent) > 10_000:
            self.typing_sent = {
                k: t for k, t in self.typing_sent.items() if now - t < TYPING_EVERY_SECONDS
            }
        self.typing_sent[key] = now
        self.background(self.send_typing(topic, user))
        return True

    async def send_typing(self, topic: str, user: dict) -> None:
        try:
            await send_topic_frame(
                topic, protocol.typing_frame(topic, user), except_user=user["id"]
            )
        except Exception as exc:
            # The broker is down: a typing hint is not worth keeping.
            outages.channel_layer.failed(exc)

    def background(self, coroutine) -> None:
        task = process_task(coroutine)
        self.background_tasks.add(task)
        task.add_done_callback(self.background_tasks.discard)

    # Inbound from the channel layer -----------------------------------------

    async def read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis went away: keep the sockets, retry; offsets fill the gap later.
                self.layer_suspect = True
                metrics.backend_failures.labels("channel_layer").inc()
                logger.warning("channel layer receive failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            try:
                await self.handle(message)
            except Exception:
                logger.exception("delivery failed for %r", message.get("type"))

    async def handle(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "realtime.event":
            await self.on_event(message)
        elif kind == "realtime.frame":
            text = protocol.encode(message["frame"])
            except_user = message.get("except_user")
            presence = message["frame"].get("type") == "presence_diff"
            for connection in self.subscribers(message["topic"]):
                await connection.offer_frame(message["topic"], text, except_user, presence)
        elif kind == "realtime.control":
            for connection in list(self.connections.values()):
                await connection.control(message)

    async def on_event(self, message: dict) -> None:
        topic, offset = message["topic"], message["offset"]
        route = self.routes.get(topic)
        if route is None:
            return
        text = protocol.encode(event_frame(topic, offset, message["ts"], message["data"]))
        lag = (datetime.now(UTC) - datetime.fromisoformat(message["ts"])).total_seconds()
        metrics.delivery_lag_seconds.observe(max(lag, 0.0))
        self.lag_ms = max(self.lag_ms, lag * 1000)
        if route.order is None:
            await self.fan_out(route, offset, text)
        else:
            await route.order.offer(offset, text)

    async def load(self, topic: str, after: int, before: int) -> list[tuple[int, str]]:
        """Stored events between two offsets, encoded (OffsetOrder's loader)."""
        frames = await in_database(events_between, topic, after, before)
        return [(frame["offset"], protocol.encode(frame)) for frame in frames]

    async def sweep(self) -> None:
        """
        Now and then, compare each topic's delivered offset with the database: a
        publication whose broadcast was lost (Redis down, a full channel) with no
        later event to reveal the gap is delivered here. After a channel-layer
        failure, and every REJOIN_EVERY sweeps anyway, every group is joined again.
        """
        sweeps = 0
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            sweeps += 1
            if self.layer_suspect or sweeps % REJOIN_EVERY == 0:
                await self.rejoin_groups()
            orders = {t: r.order for t, r in self.routes.items() if r.order is not None}
            if not orders:
                continue
            try:
                latest = await in_database(topic_offsets, list(orders))
                for topic, offset in latest.items():
                    await orders[topic].catch_up_to(offset)
            except outages.DATABASE_DOWN as exc:
                outages.database.failed(exc)
            except Exception:
                logger.warning("delivery sweep failed", exc_info=True)

    async def fan_out(self, route: TopicRoute, offset: int | None, text: str) -> None:
        """
        Offer one event to every local subscriber. A subscriber that fails is
        closed with 4008 (it reconnects and recovers by offset); the others get
        the event all the same.
        """
        event = Outgoing(text)
        subscribers = tuple(route.subscribers)
        metrics.deliveries.inc(len(subscribers))
        for connection in subscribers:
            try:
                await connection.offer_event(route.topic.name, offset, event)
            except Exception:
                logger.warning(
                    "delivery to %s failed; closing it (it recovers by offset)",
                    connection.connection_id,
                    exc_info=True,
                )
                self.background(connection.close_with(CLOSE_SLOW_CONSUMER))


hubs = PerLoop(Hub)


def get_hub() -> Hub:
    """The hub of the running event loop (daphne has one; each test has its own)."""
    return hubs.get()


def running_hub() -> Hub | None:
    """The running loop's hub if it has one (without making one)."""
    return hubs.peek()
