"""
OffsetOrder on its own: fake events, a fake loader, every interleaving of live,
late, duplicate, lost and swept events. Each event reaches the subscribers
once, in offset order, and filling a gap always ends.
"""

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.gateway.ordering import OffsetOrder


class FakeTopic:
    """A topic's stored events and what its subscribers were handed."""

    def __init__(self, stored: int, *, start: int = 0):
        self.stored = {offset: f"event {offset}" for offset in range(start + 1, stored + 1)}
        self.delivered: list[int | None] = []
        self.loads: list[tuple[int, int]] = []
        self.order = OffsetOrder(
            "room:test", delivered=start, load=self.load, deliver=self.deliver, gap_wait=0.01
        )

    async def load(self, after: int, before: int) -> list[tuple[int, str]]:
        self.loads.append((after, before))
        await asyncio.sleep(0)
        return [(o, text) for o, text in sorted(self.stored.items()) if after < o < before]

    async def deliver(self, offset: int | None, text: str) -> None:
        if offset is not None:
            assert text == self.stored[offset]
        self.delivered.append(offset)
        await asyncio.sleep(0)  # a write that yields, as a socket write can

    async def settle(self) -> None:
        task = self.order.gap_task
        if task is not None:
            await asyncio.wait_for(task, timeout=2)


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=5))


def test_events_in_order_are_delivered_at_once_without_reading_the_database():
    async def scenario():
        topic = FakeTopic(3)
        for offset in (1, 2, 3):
            await topic.order.offer(offset, f"event {offset}")
        assert topic.delivered == [1, 2, 3]
        assert topic.loads == []

    run(scenario())


def test_an_event_ahead_waits_for_a_late_predecessor_that_arrives_in_time():
    async def scenario():
        topic = FakeTopic(3)
        await topic.order.offer(2, "event 2")
        await topic.order.offer(1, "event 1")
        await topic.order.offer(3, "event 3")
        await topic.settle()
        assert topic.delivered == [1, 2, 3]
        assert topic.loads == []

    run(scenario())


def test_a_lost_event_is_read_from_the_database_once_the_gap_wait_is_over():
    async def scenario():
        topic = FakeTopic(3)
        await topic.order.offer(1, "event 1")
        await topic.order.offer(3, "event 3")
        assert topic.delivered == [1]
        await topic.settle()
        assert topic.delivered == [1, 2, 3]
        assert topic.loads == [(1, 3)]

    run(scenario())


def test_duplicates_and_old_events_are_dropped():
    async def scenario():
        topic = FakeTopic(2)
        for offset in (1, 1, 2, 1, 2):
            await topic.order.offer(offset, f"event {offset}")
        assert topic.delivered == [1, 2]

    run(scenario())


def test_the_sweep_delivers_a_lost_last_event():
    async def scenario():
        topic = FakeTopic(2)
        await topic.order.offer(1, "event 1")
        await topic.order.catch_up_to(2)
        assert topic.delivered == [1, 2]

    run(scenario())


def test_a_gap_fill_ends_when_the_sweep_already_delivered_what_waits_ahead():
    # The sweep delivers offset 3 while 3 also waits ahead of the gap: the
    # waiting copy is dropped, and filling the gap ends (it used to spin forever).
    async def scenario():
        topic = FakeTopic(3)
        await topic.order.offer(3, "event 3")
        await topic.order.catch_up_to(3)
        await topic.settle()
        assert topic.delivered == [1, 2, 3]
        assert topic.order.ahead == {}

    run(scenario())


def test_offsets_no_longer_stored_are_skipped_rather_than_holding_the_topic():
    async def scenario():
        topic = FakeTopic(4)
        del topic.stored[2]  # pruned before this process read it
        await topic.order.offer(1, "event 1")
        await topic.order.offer(3, "event 3")
        await topic.order.offer(4, "event 4")
        await topic.settle()
        assert topic.delivered == [1, 3, 4]

    run(scenario())


def test_a_closed_topic_delivers_nothing_more():
    async def scenario():
        topic = FakeTopic(3)
        await topic.order.offer(2, "event 2")
        topic.order.close()
        await topic.order.offer(1, "event 1")
        await topic.order.catch_up_to(3)
        assert topic.delivered == []

    run(scenario())


def test_topics_without_history_pass_every_event_through():
    async def scenario():
        delivered = []

        async def deliver(offset, text):
            delivered.append(text)

        order = OffsetOrder("dashboard", delivered=None, load=None, deliver=deliver)
        await order.offer(None, "a")
        await order.offer(None, "b")
        assert delivered == ["a", "b"]

    run(scenario())


# Every interleaving: each step is a live arrival of an offset (any order,
# repeated, or never), a sweep, or a pause that lets a gap fill run.
STORED = 6
steps = st.lists(
    st.one_of(
        st.tuples(st.just("live"), st.integers(min_value=1, max_value=STORED)),
        st.tuples(st.just("sweep"), st.integers(min_value=0, max_value=STORED)),
        st.tuples(st.just("pause"), st.integers(min_value=0, max_value=2)),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, start=st.integers(min_value=0, max_value=2))
def test_any_interleaving_delivers_each_event_once_in_order_and_ends(steps, start):
    async def scenario():
        topic = FakeTopic(STORED, start=start)
        for kind, value in steps:
            if kind == "live":
                await topic.order.offer(value, f"event {value}")
            elif kind == "sweep":
                await topic.order.catch_up_to(value)
            else:
                await asyncio.sleep(value * 0.006)
            assert topic.delivered == sorted(set(topic.delivered)), "out of order or twice"
        await topic.settle()
        await topic.order.catch_up_to(STORED)
        await topic.settle()
        assert topic.delivered == list(range(start + 1, STORED + 1))
        assert topic.order.ahead == {}

    run(scenario())
