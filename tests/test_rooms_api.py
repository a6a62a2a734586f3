"""REST rooms and members (PROTOCOL.md): change, delete, remove a member."""

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from realtime.chat.models import Room
from realtime.gateway.testing import connect
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_owner_renames_a_room_and_makes_it_private(room, user, other_user):
    response = as_user(user).patch(
        "/api/rooms/general/", {"name": "General chat", "is_private": True}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["is_private"]) == ("General chat", True)
    # Now private and other_user is no member: a 404, as for a room that does not exist.
    assert as_user(other_user).get("/api/rooms/general/").status_code == 404


def test_others_may_not_change_or_delete_a_room(room, private_room, other_user):
    other = as_user(other_user)
    assert other.patch("/api/rooms/general/", {"name": "x"}, format="json").status_code == 403
    assert other.delete("/api/rooms/general/").status_code == 403
    assert other.patch("/api/rooms/secret/", {"name": "x"}, format="json").status_code == 404
    assert other.delete("/api/rooms/secret/").status_code == 404


def test_staff_and_the_owner_delete_a_room(room, staff):
    assert as_user(staff).delete("/api/rooms/general/").status_code == 204
    assert not Room.objects.filter(slug="general").exists()


def test_a_bad_name_is_a_400_keyed_by_field(room, user):
    response = as_user(user).patch("/api/rooms/general/", {"name": ""}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


async def test_removing_a_member_over_rest_ends_their_subscription(private_room, user):
    member = await sync_to_async(UserFactory)()
    await sync_to_async(private_room.members.add)(member)
    socket_ = await connect(member)
    await socket_.join("room:secret")
    response = await sync_to_async(as_user(user).delete)(
        f"/api/rooms/secret/members/{member.username}/"
    )
    assert response.status_code == 204
    frame = await socket_.receive(timeout=2)
    assert (frame["type"], frame["code"], frame["topic"]) == ("error", "not_found", "room:secret")
    await socket_.close()


def test_the_owner_cannot_be_removed_and_others_may_not_remove(private_room, user, other_user):
    private_room.members.add(other_user)
    response = as_user(user).delete(f"/api/rooms/secret/members/{user.username}/")
    assert response.status_code == 400
    assert "username" in response.json()
    refused = as_user(other_user).delete(f"/api/rooms/secret/members/{user.username}/")
    assert refused.status_code == 403
    missing = as_user(user).delete("/api/rooms/secret/members/nobody-here/")
    assert missing.status_code == 404
