"""Presence on its own: the local store's first-join/last-leave rule, and batching diffs."""

import asyncio

from realtime.gateway.presence import LocalPresence, PresenceBatch

ALICE = {"id": 1, "username": "alice"}
BOB = {"id": 2, "username": "bob"}


def test_a_user_joins_with_their_first_socket_and_leaves_with_their_last_one():
    async def scenario():
        presence = LocalPresence()
        assert await presence.join("room:a", ALICE, "c1") is True
        assert await presence.join("room:a", ALICE, "c2") is False
        assert await presence.members("room:a") == [ALICE]
        assert await presence.leave("room:a", 1, "c1") is None
        assert await presence.members("room:a") == [ALICE]
        assert await presence.leave("room:a", 1, "c2") == ALICE
        assert await presence.members("room:a") == []

    asyncio.run(scenario())


def test_leaving_a_topic_one_never_joined_is_not_a_last_leave():
    async def scenario():
        presence = LocalPresence()
        assert await presence.leave("room:a", 1, "c1") is None
        await presence.join("room:a", ALICE, "c1")
        assert await presence.leave("room:a", 1, "other") is None

    asyncio.run(scenario())


def test_members_are_listed_by_username_per_topic():
    async def scenario():
        presence = LocalPresence()
        await presence.join("room:a", BOB, "c2")
        await presence.join("room:a", ALICE, "c1")
        await presence.join("room:b", BOB, "c3")
        assert await presence.members("room:a") == [ALICE, BOB]
        assert await presence.members("room:b") == [BOB]

    asyncio.run(scenario())


def test_a_batch_gathers_joins_and_leaves_into_one_diff():
    batch = PresenceBatch()
    batch.add(joins=[ALICE], leaves=[])
    batch.add(joins=[BOB], leaves=[])
    assert batch.diff() == ([ALICE, BOB], [])


def test_a_join_and_a_leave_of_the_same_user_in_one_batch_cancel_out():
    batch = PresenceBatch()
    batch.add(joins=[ALICE], leaves=[])
    batch.add(joins=[], leaves=[ALICE])
    assert batch.diff() is None
    batch.add(joins=[], leaves=[BOB])
    batch.add(joins=[BOB], leaves=[])
    assert batch.diff() is None


def test_a_leave_then_join_of_another_user_keeps_both():
    batch = PresenceBatch()
    batch.add(joins=[], leaves=[ALICE])
    batch.add(joins=[BOB], leaves=[])
    assert batch.diff() == ([BOB], [ALICE])
