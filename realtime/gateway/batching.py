"""
Group commit for the publishes of sockets (issue 12).

A socket's `publish` waits here while the batch before it commits; every
publish that arrived meanwhile goes into the next batch: one database call,
one transaction (`publishing.store_batch`): the users reloaded in one query
(rights of the moment), each topic's offsets handed out as one block, the
events inserted in bulk. After the commit the batch is handed to the channel
layer on the event loop (never from a database thread, which would wait for
the loop while the loop writes the previous event to a thousand sockets), in
commit order, and only then is each publish answered: `ack` = stored and
handed to delivery, or its own error.
"""

import asyncio
import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from realtime.gateway import outages
from realtime.gateway.backends import PerLoop
from realtime.gateway.control import send_event
from realtime.gateway.database import in_database
from realtime.gateway.publishing import (
    Publication,
    PublishRequest,
    RecordFailed,
    broadcasts_handed_back,
    store_batch,
)
from realtime.gateway.rights import users_of_the_moment
from realtime.gateway.topics import Topic

logger = logging.getLogger(__name__)


@dataclass
class Waiting:
    """A publish waiting for its batch: the request and who waits for its outcome."""

    request: PublishRequest
    outcome: asyncio.Future


def commit_socket_batch(requests: list[PublishRequest]) -> tuple[list, list[Publication]]:
    """
    Rights of the moment for every acting user (one query), then store the batch:
    one result per request, and what committed with them (a mention's notification).
    """
    users = users_of_the_moment([r.acting_user for r in requests])
    for request in requests:
        user = users.get(request.acting_user.pk, AnonymousUser())
        request.acting_user = user
        request.publisher = user if user.is_authenticated else None
    with broadcasts_handed_back() as also_committed:
        try:
            with transaction.atomic():
                results = store_batch(requests)
        except RecordFailed:
            # One of them failed in its family's record: all were rolled back;
            # store them again, each in a savepoint, so that it fails alone.
            with transaction.atomic():
                results = store_batch(requests, isolate=True)
    return results, also_committed


class PublishBatcher:
    """One per event loop: the batch in flight and the publishes waiting for the next."""

    def __init__(self):
        self.waiting: list[Waiting] = []
        self.committing: asyncio.Task | None = None
        self.handing_over: asyncio.Task | None = None

    async def publish(self, user, topic: Topic, data: dict, client_id: str | None) -> Publication:
        """Store and hand over one socket's publish; raises its RealtimeError."""
        return await self.submit(user, topic, data, client_id)

    def submit(self, user, topic: Topic, data: dict, client_id: str | None) -> asyncio.Future:
        """Queue one socket's publish: the future of its Publication (or its error)."""
        loop = asyncio.get_running_loop()
        waiting = Waiting(
            request=PublishRequest(topic=topic, data=data, client_id=client_id, acting_user=user),
            outcome=loop.create_future(),
        )
        self.waiting.append(waiting)
        if self.committing is None:
            self.committing = loop.create_task(self.commit_while_waiting())
        return waiting.outcome

    async def commit_while_waiting(self) -> None:
        limit = settings.REALTIME["PUBLISH_BATCH"]
        try:
            while self.waiting:
                batch, self.waiting = self.waiting[:limit], self.waiting[limit:]
                try:
                    results, also_committed = await in_database(
                        commit_socket_batch, [waiting.request for waiting in batch]
                    )
                except Exception as exc:  # the database is down: the batch fails as one
                    for waiting in batch:
                        if not waiting.outcome.done():
                            waiting.outcome.set_exception(exc)
                    continue
                # Hand over in commit order, while the next batch commits.
                self.handing_over = asyncio.get_running_loop().create_task(
                    self.hand_over(self.handing_over, batch, results, also_committed)
                )
        finally:
            self.committing = None

    async def hand_over(self, previous, batch: list[Waiting], results, also_committed):
        if previous is not None:
            await asyncio.wait([previous])
        for result in results:
            if isinstance(result, Publication) and not result.duplicate:
                await broadcast_now(result)
        for publication in also_committed:
            await broadcast_now(publication)
        for waiting, result in zip(batch, results, strict=True):
            if waiting.outcome.done():
                continue  # its socket went away meanwhile
            if isinstance(result, Exception):
                waiting.outcome.set_exception(result)
            else:
                waiting.outcome.set_result(result)


async def broadcast_now(publication: Publication) -> None:
    """Hand a committed publication to the channel layer, from the event loop."""
    try:
        await send_event(publication.topic, publication.offset, publication.ts, publication.data)
    except Exception as exc:
        # Stored already: the hubs fill it in by offset once the layer is back.
        outages.channel_layer.failed(exc)
    else:
        outages.channel_layer.succeeded()


batchers = PerLoop(PublishBatcher)
