"""
Authorization of the moment: a right taken away ends the subscriptions that
depend on it within 2 seconds of the commit, through every path (the admin's
member inline, queryset deletes, either side of the relation, a room made
private or deleted, staff status removed), and every subscribe and publish
reads the user's current flags.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import Client as HttpClient

from realtime.chat.models import RoomMembership as Membership
from realtime.gateway.testing import connect
from tests.factories import RoomFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


async def revoked(client, topic: str, code: str = "not_found", within: float = 2.0) -> None:
    """The subscription ends with an `error` naming the topic, within `within` seconds."""
    frame = await client.receive(timeout=within)
    assert (frame["type"], frame["code"], frame["topic"]) == ("error", code, topic), frame
    assert "ref" not in frame


async def nothing_more_from(client, room, author) -> None:
    """A message published after the revocation does not reach the socket."""
    from realtime.chat.services import message_create

    await sync_to_async(message_create)(room=room, author=author, text="after")
    assert await client.nothing_arrives(0.5)


@pytest.fixture
def member_in_private_room(db, private_room, other_user):
    private_room.members.add(other_user)
    return other_user


async def test_a_demoted_staff_user_loses_staff_topics_and_powers_on_open_sockets(
    private_room, user
):
    staff = await sync_to_async(StaffFactory)()
    client = await connect(staff)
    await client.join("room:secret")
    assert (await client.publish("broadcast", {"text": "still staff"}))["type"] == "ack"
    await client.subscribe("dashboard")
    staff.is_staff = False
    await sync_to_async(staff.save)()
    errors = {}
    async with asyncio.timeout(2):
        while len(errors) < 2:
            frame = await client.receive()
            if frame["type"] == "error":
                errors[frame["topic"]] = frame["code"]
    assert errors == {"dashboard": "forbidden", "room:secret": "not_found"}
    await client.send(
        {"type": "publish", "topic": "broadcast", "ref": "p", "data": {"text": "no longer"}}
    )
    [refused] = [f for f in await client.receive_until("error") if f["type"] == "error"]
    assert (refused["code"], refused["ref"]) == ("forbidden", "p")
    refused = await client.request({"type": "subscribe", "topic": "dashboard", "ref": "d"})
    assert refused["code"] == "forbidden"
    await client.close()


async def test_the_next_publish_reads_the_flags_of_now_even_without_a_signal(user):
    staff = await sync_to_async(StaffFactory)()
    client = await connect(staff)
    # An update() sends no signal: the publish itself must see the change.
    await sync_to_async(type(staff).objects.filter(pk=staff.pk).update)(is_staff=False)
    refused = await client.publish("broadcast", {"text": "no longer staff"})
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    await client.close()


async def test_a_member_removed_in_the_admins_inline_stops_receiving(
    private_room, user, member_in_private_room
):
    member = member_in_private_room
    client = await connect(member)
    await client.join("room:secret")
    admin = await sync_to_async(StaffFactory)(is_superuser=True)
    http = HttpClient()
    await sync_to_async(http.force_login)(admin)
    rows = await sync_to_async(list)(Membership.objects.filter(room=private_room).order_by("pk"))
    form = {
        "slug": private_room.slug,
        "name": private_room.name,
        "is_private": "on",
        "owner": private_room.owner_id,
        "Room_members-TOTAL_FORMS": str(len(rows)),
        "Room_members-INITIAL_FORMS": str(len(rows)),
        "Room_members-MIN_NUM_FORMS": "0",
        "Room_members-MAX_NUM_FORMS": "1000",
    }
    for n, row in enumerate(rows):
        form[f"Room_members-{n}-id"] = row.pk
        form[f"Room_members-{n}-room"] = private_room.pk
        form[f"Room_members-{n}-user"] = row.user_id
        if row.user_id == member.pk:
            form[f"Room_members-{n}-DELETE"] = "on"
    response = await sync_to_async(http.post)(
        f"/admin/realtime/room/{private_room.pk}/change/", form
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not await sync_to_async(private_room.members.filter(pk=member.pk).exists)()
    await revoked(client, "room:secret")
    await nothing_more_from(client, private_room, user)
    await client.close()


@pytest.mark.parametrize(
    "remove",
    [
        lambda room, member: room.members.remove(member),
        lambda room, member: member.rooms.remove(room),
        lambda room, member: room.members.clear(),
        lambda room, member: Membership.objects.filter(room=room, user=member).delete(),
    ],
    ids=["room.members.remove", "user.rooms.remove", "room.members.clear", "queryset delete"],
)
async def test_a_member_removed_by_any_path_stops_receiving(
    private_room, user, member_in_private_room, remove
):
    client = await connect(member_in_private_room)
    await client.join("room:secret")
    await sync_to_async(remove)(private_room, member_in_private_room)
    await revoked(client, "room:secret")
    await nothing_more_from(client, private_room, user)
    await client.close()


async def test_a_room_made_private_ends_the_subscriptions_of_non_members(room, user, other_user):
    client = await connect(other_user)
    await client.join("room:general")
    room.is_private = True
    await sync_to_async(room.save)()
    await revoked(client, "room:general")
    await nothing_more_from(client, room, user)
    await client.close()


async def test_a_deleted_room_ends_its_subscriptions(user):
    room = await sync_to_async(RoomFactory)(slug="doomed", owner=user)
    client = await connect(user)
    await client.join("room:doomed")
    await sync_to_async(room.delete)()
    await revoked(client, "room:doomed")
    await client.close()


async def test_a_change_no_signal_reports_is_caught_by_the_periodic_recheck(
    settings, private_room, user, member_in_private_room
):
    settings.REALTIME = {**settings.REALTIME, "RECHECK_SECONDS": 1}
    client = await connect(member_in_private_room)
    await client.join("room:secret")
    # A raw delete bypasses every signal.
    await sync_to_async(Membership.objects.filter(user=member_in_private_room)._raw_delete)(
        "default"
    )
    await revoked(client, "room:secret", within=2.5)
    await client.close()


async def test_members_and_others_are_untouched_by_someone_elses_removal(
    private_room, user, member_in_private_room
):
    bystander = await sync_to_async(UserFactory)()
    await sync_to_async(private_room.members.add)(bystander)
    stays = await connect(bystander)
    await stays.join("room:secret")
    await sync_to_async(private_room.members.remove)(member_in_private_room)
    await asyncio.sleep(0.3)
    assert await stays.nothing_arrives(0.5)
    await stays.send(
        {"type": "publish", "topic": "room:secret", "ref": "p", "data": {"text": "still here"}}
    )
    assert "ack" in [frame["type"] for frame in await stays.receive_until("ack")]
    await stays.close()


def test_rights_are_rechecked_only_once_the_change_is_written(monkeypatch, room):
    """Outside a transaction `on_commit` runs at once: from pre_save, before the UPDATE."""
    from django.contrib.auth import get_user_model

    from realtime.chat import signals

    users = get_user_model().objects
    staff = StaffFactory()
    seen = []

    def rechecked(user_id):
        seen.append(users.get(pk=user_id).is_staff)

    def verified(user_id):
        seen.append(users.get(pk=user_id).is_active)

    def revoked_topic(topic):
        seen.append(type(room).objects.get(pk=room.pk).is_private)

    monkeypatch.setattr(signals, "user_rights_changed", lambda *, user_id: rechecked(user_id))
    monkeypatch.setattr(signals, "user_sessions_verify", lambda *, user_id: verified(user_id))
    monkeypatch.setattr(signals, "topic_revoke", lambda *, topic: revoked_topic(topic))
    staff.is_staff = False
    staff.save()
    staff.is_active = False
    staff.save()
    room.is_private = True
    room.save()
    # Each check read the row as written: no longer staff; inactive (its sessions
    # and its rights); private.
    assert seen == [False, False, False, True]
