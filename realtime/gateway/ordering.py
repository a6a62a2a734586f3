"""
Offset ordering for one topic on one process: events reach the local
subscribers in offset order, each once, with nothing skipped.

Broadcasts can arrive out of order (two publishers' commits racing to the
channel layer) or not at all (a Redis restart, the pub/sub layer's at-most-once
delivery). An event that arrives ahead of a missing predecessor waits
`gap_wait` seconds for it; then the missing ones are read from the database
(offsets commit in order, so they are there). A sweep compares with the
database now and then, for a lost last event that no later one reveals.

Deliveries of one topic never overlap (one lock), so a slow write of offset N
to one socket cannot let N+1 overtake it on another. Every loop here removes
at least one waiting event per turn, so filling a gap always ends.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

GAP_WAIT_SECONDS = 0.15

# load(after, before): the stored events with after < offset < before, as
# (offset, text) pairs in offset order.
Loader = Callable[[int, int], Awaitable[list[tuple[int, str]]]]
# deliver(offset, text): hand one event to every local subscriber.
Deliverer = Callable[[int | None, str], Awaitable[None]]


class OffsetOrder:
    """The ordering of one topic: what was delivered, what waits ahead of a gap."""

    def __init__(
        self,
        topic: str,
        *,
        delivered: int | None,
        load: Loader,
        deliver: Deliverer,
        gap_wait: float = GAP_WAIT_SECONDS,
    ):
        self.topic = topic
        # Highest offset handed to subscribers (None: a topic without history).
        self.delivered = delivered
        self.load = load
        self.deliver = deliver
        self.gap_wait = gap_wait
        # Events that arrived ahead of a missing predecessor: offset -> text.
        self.ahead: dict[int, str] = {}
        self.gap_task: asyncio.Task | None = None
        self.lock = asyncio.Lock()
        self.closed = False

    async def offer(self, offset: int | None, text: str) -> None:
        """A live event: deliver it now, or hold it until the gap before it is filled."""
        async with self.lock:
            if offset is None or self.delivered is None:
                await self.deliver(offset, text)
                return
            if offset <= self.delivered or self.closed:
                return
            if offset == self.delivered + 1:
                await self.hand_over(offset, text)
                await self.drain()
                return
            self.ahead[offset] = text
        if self.gap_task is None or self.gap_task.done():
            self.gap_task = asyncio.get_running_loop().create_task(self.fill_gap())

    async def fill_gap(self) -> None:
        """Wait for stragglers, then read what is still missing from the database."""
        await asyncio.sleep(self.gap_wait)
        async with self.lock:
            while not self.closed:
                self.forget_stale()
                if not self.ahead:
                    return
                try:
                    await self.fill_missing(min(self.ahead))
                except Exception as exc:
                    # The database is unreachable: the events wait; the sweep
                    # (or the next live event) fills the gap once it is back.
                    logger.warning("%s: filling a gap failed (%r); retried later", self.topic, exc)
                    return
                await self.drain()

    async def catch_up_to(self, latest: int) -> None:
        """The sweep: the database's latest offset is `latest`; deliver up to it."""
        async with self.lock:
            if self.closed or self.delivered is None or latest <= self.delivered:
                return
            await self.fill_missing(latest + 1)
            await self.drain()

    def close(self) -> None:
        """The topic has no local subscribers any more: stop, deliver nothing else."""
        self.closed = True
        self.ahead.clear()
        if self.gap_task is not None:
            self.gap_task.cancel()

    # With the lock held ---------------------------------------------------------

    async def hand_over(self, offset: int, text: str) -> None:
        self.delivered = offset
        await self.deliver(offset, text)

    def forget_stale(self) -> None:
        """Drop waiting events already delivered (the sweep or a fill got there first)."""
        for offset in [o for o in self.ahead if o <= self.delivered]:
            del self.ahead[offset]

    async def drain(self) -> None:
        """Deliver the waiting events that now follow on."""
        self.forget_stale()
        while not self.closed and self.delivered + 1 in self.ahead:
            offset = self.delivered + 1
            await self.hand_over(offset, self.ahead.pop(offset))

    async def fill_missing(self, first_ahead: int) -> None:
        """Deliver the stored events between what was delivered and `first_ahead`."""
        if self.delivered >= first_ahead - 1:
            return
        for offset, text in await self.load(self.delivered, first_ahead):
            if self.closed:
                return
            if self.delivered < offset < first_ahead:
                await self.hand_over(offset, text)
        if self.delivered < first_ahead - 1:
            # Pruned or not visible: move on rather than hold the topic forever.
            logger.warning(
                "%s: offsets %s..%s unavailable", self.topic, self.delivered + 1, first_ahead - 1
            )
            self.delivered = first_ahead - 1
