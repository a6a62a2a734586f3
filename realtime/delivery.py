"""
Delivery: how a publication reaches the sockets of this process.

Stock Channels sends one channel-layer message per subscriber and dispatches
it through each consumer (a thread hop and a handler call per subscriber per
event). Here each process has one `Hub` per event loop with one channel-layer
channel: it joins a topic's group once, when its first local socket subscribes,
receives each event once, encodes it once and writes the text to every local
subscriber's socket directly.

The hub also keeps each topic's events in offset order: an event that arrives
ahead of its predecessor waits briefly, then the missing ones are read from the
database (offsets commit in order, so they are there). Messages the channel
layer lost (a Redis restart, the pub/sub layer's at-most-once delivery) are
filled in the same way.
"""

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from realtime import protocol
from realtime.connections import keep_registry
from realtime.publishing import (
    event_frame,
    events_between,
    group_name,
    topic_offset,
    topic_offsets,
)

logger = logging.getLogger(__name__)

CONTROL_GROUP = "realtime.control"
DASHBOARD_TOPIC = "dashboard"
GAP_WAIT_SECONDS = 0.15
SWEEP_SECONDS = 3.0
PRESENCE_BATCH_SECONDS = 0.05


class LocalConnection(Protocol):
    """What the hub needs of a socket (the consumer implements it)."""

    connection_id: str

    async def offer_event(self, topic: str, offset: int | None, event: "Outgoing") -> None: ...
    async def offer_frame(self, topic: str, text: str) -> None: ...
    async def control(self, message: dict) -> None: ...
    async def close_with(self, code: int) -> None: ...


class Outgoing:
    """One event on its way to many sockets: its text, and its WebSocket frame built once."""

    __slots__ = ("frame", "text")

    def __init__(self, text: str):
        self.text = text
        self.frame = None

    def prepared(self, factory):
        """The frame as daphne's WebSocket library sends it, shared by every socket."""
        if self.frame is None:
            self.frame = factory.prepareMessage(self.text.encode())
        return self.frame


@dataclass
class TopicRoute:
    """The local subscribers of one topic, and where its offsets stand."""

    topic: str
    subscribers: set = field(default_factory=set)
    # Highest offset handed to subscribers (None: no history, or not yet known).
    delivered: int | None = None
    # Events that arrived ahead of a missing predecessor: offset -> (frame text).
    ahead: dict[int, str] = field(default_factory=dict)
    gap_task: asyncio.Task | None = None


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
        self.tickers: dict[str, asyncio.Task] = {}
        self.presence_pending: dict[str, tuple[dict, dict]] = {}
        self.background_tasks: set[asyncio.Task] = set()
        # Worst publish-to-write delay seen since the last dashboard tick.
        self.lag_ms = 0.0

    # Connections ------------------------------------------------------------

    async def attach(self, connection: LocalConnection) -> None:
        async with self.ready:
            if self.reader is None or self.reader.done():
                self.channel = await self.layer.new_channel(prefix="hub.")
                await self.layer.group_add(CONTROL_GROUP, self.channel)
                self.reader = asyncio.get_running_loop().create_task(self.read())
                self.sweeper = asyncio.get_running_loop().create_task(self.sweep())
                self.keeper = asyncio.get_running_loop().create_task(keep_registry())
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
                if route.gap_task:
                    route.gap_task.cancel()
            for task in self.tickers.values():
                task.cancel()
            self.tickers.clear()
            self.routes.clear()
            self.reader.cancel()
            self.reader = None
            self.sweeper.cancel()
            self.keeper.cancel()
            try:
                await self.layer.group_discard(CONTROL_GROUP, self.channel)
            except Exception:
                logger.warning("could not leave the control group", exc_info=True)

    # Topics -----------------------------------------------------------------

    async def join(self, topic: str, connection: LocalConnection, *, history: bool) -> None:
        """Route `topic`'s events to `connection` from now on."""
        route = self.routes.get(topic)
        if route is None:
            route = self.routes[topic] = TopicRoute(topic=topic)
            await self.layer.group_add(group_name(topic), self.channel)
            if history:
                # Everything up to here is in the database; later events come by the group.
                route.delivered = await database_sync_to_async(topic_offset)(topic)
        route.subscribers.add(connection)
        if topic == DASHBOARD_TOPIC and topic not in self.tickers:
            self.tickers[topic] = asyncio.get_running_loop().create_task(self.tick_dashboard())

    async def tick_dashboard(self) -> None:
        """While anyone here watches `dashboard`, send them live statistics."""
        from realtime.dashboard import dashboard_stats

        interval = settings.REALTIME["DASHBOARD_INTERVAL_SECONDS"]
        while True:
            route = self.routes.get(DASHBOARD_TOPIC)
            if route is None:
                return
            try:
                data = await database_sync_to_async(dashboard_stats)()
                data["delivery_lag_ms"] = round(self.lag_ms, 1)
                self.lag_ms = 0.0
                frame = event_frame(DASHBOARD_TOPIC, None, protocol.now_iso(), data)
                await self.fan_out(route, None, protocol.encode(frame))
            except Exception:
                logger.exception("dashboard tick failed")
            await asyncio.sleep(interval)

    async def leave(self, topic: str, connection: LocalConnection) -> None:
        route = self.routes.get(topic)
        if route is None:
            return
        route.subscribers.discard(connection)
        if not route.subscribers:
            del self.routes[topic]
            if route.gap_task:
                route.gap_task.cancel()
            ticker = self.tickers.pop(topic, None)
            if ticker:
                ticker.cancel()
            try:
                await self.layer.group_discard(group_name(topic), self.channel)
            except Exception:
                logger.warning("could not leave group of %s", topic, exc_info=True)

    def presence_changed(self, topic: str, *, joins: list[dict], leaves: list[dict]) -> None:
        """
        Queue a presence change; this process sends one `presence_diff` per
        topic per PRESENCE_BATCH_SECONDS. A thousand users joining at once
        would otherwise cost a diff per join to every subscriber (N² frames).
        A join and a leave of the same user within the window cancel out.
        """
        pending = self.presence_pending.get(topic)
        if pending is None:
            pending = self.presence_pending[topic] = ({}, {})
            loop = asyncio.get_running_loop()
            loop.call_later(
                PRESENCE_BATCH_SECONDS, lambda: self.background(self.flush_presence(topic))
            )
        joined, left = pending
        for user in joins:
            if left.pop(user["id"], None) is None:
                joined[user["id"]] = user
        for user in leaves:
            if joined.pop(user["id"], None) is None:
                left[user["id"]] = user

    async def flush_presence(self, topic: str) -> None:
        joined, left = self.presence_pending.pop(topic, ({}, {}))
        if joined or left:
            frame = protocol.presence_diff_frame(topic, list(joined.values()), list(left.values()))
            await send_topic_frame(topic, frame)

    def background(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.background_tasks.add(task)
        task.add_done_callback(self.background_tasks.discard)

    def subscribers(self, topic: str) -> Iterable[LocalConnection]:
        route = self.routes.get(topic)
        return tuple(route.subscribers) if route else ()

    # Inbound from the channel layer -----------------------------------------

    async def read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis went away: keep the sockets, retry; offsets fill the gap later.
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
            await self.on_event(message["topic"], message["offset"], message)
        elif kind == "realtime.frame":
            text = protocol.encode(message["frame"])
            for connection in self.subscribers(message["topic"]):
                await connection.offer_frame(message["topic"], text)
        elif kind == "realtime.control":
            for connection in list(self.connections.values()):
                await connection.control(message)

    async def on_event(self, topic: str, offset: int | None, message: dict) -> None:
        route = self.routes.get(topic)
        if route is None:
            return
        text = protocol.encode(event_frame(topic, offset, message["ts"], message["data"]))
        lag_ms = (datetime.now(UTC) - datetime.fromisoformat(message["ts"])).total_seconds() * 1000
        self.lag_ms = max(self.lag_ms, lag_ms)
        if offset is None or route.delivered is None:
            await self.fan_out(route, offset, text)
            return
        if offset <= route.delivered:
            return
        if offset == route.delivered + 1:
            await self.fan_out(route, offset, text)
            await self.drain(route)
            return
        route.ahead[offset] = text
        if route.gap_task is None or route.gap_task.done():
            route.gap_task = asyncio.get_running_loop().create_task(self.fill_gap(route))

    async def sweep(self) -> None:
        """
        Now and then, compare each topic's delivered offset with the database: a
        publication whose broadcast was lost (Redis down, a full channel) with no
        later event to reveal the gap is delivered here.
        """
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            routes = {t: r for t, r in self.routes.items() if r.delivered is not None}
            if not routes:
                continue
            try:
                latest = await database_sync_to_async(topic_offsets)(list(routes))
                for topic, offset in latest.items():
                    route = routes[topic]
                    if offset > route.delivered and self.routes.get(topic) is route:
                        await self.fill_missing(route, offset + 1)
                        await self.drain(route)
            except Exception:
                logger.warning("delivery sweep failed", exc_info=True)

    async def drain(self, route: TopicRoute) -> None:
        while route.delivered is not None and route.delivered + 1 in route.ahead:
            offset = route.delivered + 1
            await self.fan_out(route, offset, route.ahead.pop(offset))

    async def fill_gap(self, route: TopicRoute) -> None:
        """Wait for stragglers, then read what is still missing from the database."""
        await asyncio.sleep(GAP_WAIT_SECONDS)
        while route.ahead and self.routes.get(route.topic) is route:
            await self.fill_missing(route, min(route.ahead))
            await self.drain(route)

    async def fill_missing(self, route: TopicRoute, first_ahead: int) -> None:
        """Deliver the stored events between what was delivered and `first_ahead`."""
        if route.delivered < first_ahead - 1:
            missing = await database_sync_to_async(events_between)(
                route.topic, route.delivered, first_ahead
            )
            for frame in missing:
                if frame["offset"] > route.delivered:
                    await self.fan_out(route, frame["offset"], protocol.encode(frame))
            if route.delivered < first_ahead - 1:
                # Pruned or not visible: move on rather than hold the topic forever.
                logger.warning(
                    "%s: offsets %s..%s unavailable", route.topic, route.delivered + 1, first_ahead
                )
                route.delivered = first_ahead - 1

    async def fan_out(self, route: TopicRoute, offset: int | None, text: str) -> None:
        if offset is not None:
            route.delivered = offset
        event = Outgoing(text)
        for connection in tuple(route.subscribers):
            await connection.offer_event(route.topic, offset, event)


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def get_hub() -> Hub:
    """The hub of the running event loop (daphne has one; each test has its own)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        for stale in [other for other in _hubs if other.is_closed()]:
            del _hubs[stale]
        hub = _hubs[loop] = Hub()
    return hub


async def send_control(message: dict) -> None:
    """Send a control message (close sockets, revoke a topic) to every process."""
    await get_channel_layer().group_send(CONTROL_GROUP, {"type": "realtime.control", **message})


async def send_topic_frame(topic: str, frame: dict) -> None:
    """Send a non-event frame (presence) to every subscriber of `topic` on every process."""
    await get_channel_layer().group_send(
        group_name(topic), {"type": "realtime.frame", "topic": topic, "frame": frame}
    )


def running_hub() -> Hub | None:
    """The running loop's hub if it has one (without making one)."""
    return _hubs.get(asyncio.get_running_loop())


async def hubs_close_all(code: int) -> None:
    """Close every socket of this process with `code` (a graceful restart)."""
    hub = running_hub()
    for connection in list(hub.connections.values()) if hub else ():
        await connection.close_with(code)


async def hubs_flush_presence() -> None:
    """Send the presence diffs still waiting for their batch (before exiting)."""
    hub = running_hub()
    for topic in list(hub.presence_pending) if hub else ():
        await hub.flush_presence(topic)


def hubs_connection_count() -> int:
    """Sockets of this process that have not finished their disconnect logic."""
    hub = running_hub()
    return len(hub.connections) if hub else 0
