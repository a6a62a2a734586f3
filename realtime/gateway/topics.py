"""
The registry of topic families: who may subscribe, who may publish, what `data`
is accepted, whether a topic keeps history and presence, what a stored
publication becomes, and what the server feeds to a topic by itself.

A Django project adds a family (say `document:<id>`) with one subclass of
`TopicFamily` and `@register` above it, in a module its `AppConfig.ready()`
imports; the consumer, `publish()`, the REST publishing endpoint and the hub
pick it up. Nothing else names a family.
"""

import re
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from realtime.gateway.errors import Forbidden, Invalid, UnknownTopic

FAMILIES: dict[str, "TopicFamily"] = {}

# Who may publish on a family's topics through the server-to-server REST
# endpoint: the caller as the publisher, the server on the caller's request
# (no publisher recorded), or nobody.
RestPublishing = Literal["caller", "server", "nobody"]


@dataclass(frozen=True)
class Topic:
    """A parsed topic name: `room:general` is family `room`, key `general`."""

    name: str
    family: "TopicFamily"
    key: str | None

    @property
    def history(self) -> bool:
        return self.family.history

    @property
    def presence(self) -> bool:
        return self.family.presence


@dataclass(frozen=True)
class Recording:
    """One publication for a family to record: its cleaned `data`, by whom, where, when."""

    data: dict
    publisher: Any
    offset: int | None
    created_at: datetime


@dataclass(frozen=True)
class GatewayStats:
    """What the gateway of this process measured, handed to a family's `feed`."""

    # Worst publish-to-write delay since the previous feed of the topic.
    delivery_lag_ms: float


def register(cls: type["TopicFamily"]) -> type["TopicFamily"]:
    """Class decorator: make the family's topics known to the gateway."""
    FAMILIES[cls.name] = cls()
    return cls


def parse_topic(name: Any) -> Topic:
    """The topic called `name`, or UnknownTopic when no family has that shape."""
    if not isinstance(name, str) or len(name) > 100:
        raise UnknownTopic("Topic names are strings of at most 100 characters.")
    family_name, sep, key = name.partition(":")
    family = FAMILIES.get(family_name)
    if family is None:
        raise UnknownTopic(f"No topic family {family_name!r}.")
    if family.key_pattern is None:
        if sep:
            raise UnknownTopic(f"Topic {family_name!r} takes no key.")
        return Topic(name=name, family=family, key=None)
    if not sep or not re.fullmatch(family.key_pattern, key):
        raise UnknownTopic(f"Topic names of this family look like {family.example!r}.")
    return Topic(name=name, family=family, key=key)


_batch_memo: ContextVar[dict | None] = ContextVar("realtime_batch_memo", default=None)


@contextmanager
def batch_memo() -> Iterator[None]:
    """While a batch of publishes is stored: what `memoized` computes is computed once."""
    token = _batch_memo.set({})
    try:
        yield
    finally:
        _batch_memo.reset(token)


def memoized[T](key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, once per batch of publishes for `key` (every time outside a batch).

    A family's lookups that every publish of a batch repeats (the room of a
    topic, a membership) read the database once per batch, still inside the
    batch's transaction: rights as of now, at a batch's cost.
    """
    memo = _batch_memo.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def user_brief(user) -> dict:
    """A user as the protocol names one: `{id, username}`."""
    return {"id": user.pk, "username": user.get_username()}


class TopicFamily:
    """One kind of topic. Subclasses override what differs from 'nobody may'."""

    name: ClassVar[str]
    key_pattern: ClassVar[str | None] = None
    example: ClassVar[str] = ""
    history: ClassVar[bool] = True
    presence: ClassVar[bool] = False
    # POST /api/publish/: who publishes, and which `data` keys it passes on (None: all).
    rest_publishing: ClassVar[RestPublishing] = "nobody"
    rest_fields: ClassVar[tuple[str, ...] | None] = None
    # Server-fed topics: while a process has subscribers of such a topic, it
    # publishes `feed()` to them every `feed_interval` seconds (no history).
    feed_interval: ClassVar[float | None] = None

    def check_subscribe(self, user, topic: Topic) -> None:
        """Raise Forbidden or NotFound unless `user` may subscribe now."""
        raise Forbidden("Nobody may subscribe to this topic.")

    def check_publish(self, user, topic: Topic) -> None:
        """Raise Forbidden or NotFound unless `user` may publish from a socket."""
        raise Forbidden("Only the server publishes on this topic.")

    def clean(self, topic: Topic, data: dict) -> dict:
        """The accepted form of a publication's `data`, or Invalid."""
        raise Invalid("This topic takes no publications.")

    def record(
        self, topic: Topic, data: dict, *, publisher, offset: int | None, created_at: datetime
    ) -> dict:
        """Store what `data` stands for (inside publish()'s transaction); the event's data."""
        return data

    def record_batch(self, topic: Topic, recordings: list[Recording]) -> list[dict]:
        """
        Record several publications of one topic at once (group commit), in
        offset order: their events' data, in the same order. By default each
        is `record`ed; a family that stores rows overrides it to insert them
        in bulk. If it raises, the batch is stored again with each publication
        passed alone, in a savepoint of its own, so that one failure fails one.
        """
        return [self.record_one(topic, recording) for recording in recordings]

    def record_one(self, topic: Topic, recording: Recording) -> dict:
        """`record` one Recording."""
        return self.record(
            topic,
            recording.data,
            publisher=recording.publisher,
            offset=recording.offset,
            created_at=recording.created_at,
        )

    def feed(self, topic: Topic, stats: GatewayStats) -> dict:
        """The next `data` of a server-fed topic (runs in a database thread)."""
        raise NotImplementedError(f"{type(self).__name__} sets feed_interval but has no feed()")
