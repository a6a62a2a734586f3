"""
Editing and deleting room messages (PROTOCOL.md, "Editing and deleting a room
message"), over the socket and REST: who may, the events and their offsets,
replay after a reconnect, REST history as it is now, and `mentions`.
"""

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from realtime.chat import services
from realtime.gateway.testing import connect
from realtime.models import Event, Message, Notification
from tests.factories import RoomFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post(room, author, text):
    return services.message_create(room=room, author=author, text=text)


apost = sync_to_async(post)


async def test_the_author_edits_over_the_socket_and_everyone_sees_a_numbered_event(
    room, user, other_user
):
    first = await apost(room, user, "helo")
    listener = await connect(other_user)
    await listener.join("room:general")
    author = await connect(user)
    ack = await author.publish("room:general", {"edit": first.data["id"], "text": " hello "})
    assert (ack["type"], ack["offset"]) == ("ack", 2)
    event = await listener.receive()
    assert event["offset"] == 2
    data = event["data"]
    assert (data["kind"], data["id"], data["text"]) == ("message_edited", first.data["id"], "hello")
    assert set(data) == {"kind", "id", "text", "edited_at", "mentions"}
    message = await sync_to_async(Message.objects.get)(pk=first.data["id"])
    assert message.text == "hello" and message.edited_at is not None
    assert data["edited_at"] == message.edited_at.isoformat()
    assert message.offset == 1  # the message keeps its place in the history
    await listener.close()
    await author.close()


async def test_nobody_but_the_author_edits_not_even_the_owner_or_staff(room, user, staff):
    stranger = await sync_to_async(UserFactory)()
    written = await apost(room, stranger, "mine")
    for someone in (user, staff):  # the room's owner, staff
        socket_ = await connect(someone)
        reply = await socket_.publish("room:general", {"edit": written.data["id"], "text": "x"})
        assert (reply["type"], reply["code"]) == ("error", "forbidden")
        await socket_.close()
    assert (await sync_to_async(Message.objects.get)(pk=written.data["id"])).text == "mine"
    # Nothing stored, no offset taken.
    assert await sync_to_async(Event.objects.filter(topic="room:general").count)() == 1


async def test_the_author_the_owner_and_staff_delete_others_get_forbidden(room, user, staff):
    alice = await sync_to_async(UserFactory)()
    bob = await sync_to_async(UserFactory)()
    ids = [(await apost(room, alice, f"m{n}")).data["id"] for n in range(3)]
    listener = await connect(bob)
    await listener.join("room:general")
    bob_socket = await connect(bob)
    refused = await bob_socket.publish("room:general", {"delete": ids[0]})
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    assert await listener.nothing_arrives()
    for deleter, message_id, offset in ((alice, ids[0], 4), (user, ids[1], 5), (staff, ids[2], 6)):
        socket_ = await connect(deleter)
        ack = await socket_.publish("room:general", {"delete": message_id})
        assert (ack["type"], ack["offset"]) == ("ack", offset)
        event = await listener.receive()
        assert (event["offset"], event["data"]) == (
            offset,
            {"kind": "message_deleted", "id": message_id},
        )
        await socket_.close()
    assert not await sync_to_async(Message.objects.filter(room=room).exists)()
    await listener.close()
    await bob_socket.close()


async def test_an_unknown_or_other_rooms_message_is_not_found(room, user):
    elsewhere = await sync_to_async(RoomFactory)(slug="elsewhere", owner=user)
    other = await apost(elsewhere, user, "over there")
    socket_ = await connect(user)
    for data in (
        {"edit": other.data["id"], "text": "x"},
        {"delete": other.data["id"]},
        {"edit": 999_999, "text": "x"},
        {"delete": 999_999},
    ):
        reply = await socket_.publish("room:general", data)
        assert (reply["type"], reply["code"]) == ("error", "not_found"), data
    for data in ({"edit": "1", "text": "x"}, {"delete": True}, {"edit": 1, "delete": 1}):
        reply = await socket_.publish("room:general", data)
        assert (reply["type"], reply["code"]) == ("error", "invalid"), data
    await socket_.close()


async def test_a_reconnecting_client_replays_edits_and_deletions(room, user, other_user):
    kept = await apost(room, user, "first")
    gone = await apost(room, user, "second")
    await sync_to_async(services.message_edit)(
        room=room, actor=user, message_id=kept.data["id"], text="first, edited"
    )
    await sync_to_async(services.message_delete)(room=room, actor=user, message_id=gone.data["id"])
    socket_ = await connect(other_user)
    reply = await socket_.subscribe("room:general", since=0)
    assert reply["recovered"] is True
    replay = [await socket_.receive() for _ in range(4)]
    assert [(f["offset"], f["data"]["kind"]) for f in replay] == [
        (1, "message"),
        (2, "message"),
        (3, "message_edited"),
        (4, "message_deleted"),
    ]
    assert replay[2]["data"]["text"] == "first, edited"
    assert replay[3]["data"]["id"] == gone.data["id"]
    await socket_.close()


# REST --------------------------------------------------------------------------


def test_rest_patch_edits_and_the_socket_subscribers_hear_it(room, user):
    first = post(room, user, "typo")
    response = as_user(user).patch(
        f"/api/rooms/general/messages/{first.data['id']}/", {"text": "fixed"}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["id"], body["text"], body["offset"]) == (first.data["id"], "fixed", 1)
    assert body["edited_at"]
    event = Event.objects.get(topic="room:general", offset=2)
    assert event.data["kind"] == "message_edited" and event.data["text"] == "fixed"


def test_rest_delete_answers_204_and_publishes_the_deletion(room, user):
    first = post(room, user, "oops")
    response = as_user(user).delete(f"/api/rooms/general/messages/{first.data['id']}/")
    assert response.status_code == 204
    assert Event.objects.get(topic="room:general", offset=2).data == {
        "kind": "message_deleted",
        "id": first.data["id"],
    }
    again = as_user(user).delete(f"/api/rooms/general/messages/{first.data['id']}/")
    assert again.status_code == 404


def test_rest_refusals_404_then_403_then_400(room, user, other_user, private_room):
    first = post(room, user, "hello")
    hidden = post(private_room, user, "secret")
    other = as_user(other_user)
    url = f"/api/rooms/general/messages/{first.data['id']}/"
    assert other.patch(url, {"text": "x"}, format="json").status_code == 403
    assert other.patch(url, {"text": ""}, format="json").status_code == 403
    assert other.delete(url).status_code == 403
    secret = f"/api/rooms/secret/messages/{hidden.data['id']}/"
    assert other.patch(secret, {"text": "x"}, format="json").status_code == 404
    assert other.delete(secret).status_code == 404
    assert (
        as_user(user)
        .patch("/api/rooms/general/messages/424242/", {"text": "x"}, format="json")
        .status_code
        == 404
    )
    too_long = as_user(user).patch(url, {"text": "x" * 2001}, format="json")
    assert too_long.status_code == 400 and "text" in too_long.json()
    # Another room's message through this room's URL: not found.
    assert (
        as_user(user).delete(f"/api/rooms/general/messages/{hidden.data['id']}/").status_code == 404
    )
    huge = f"/api/rooms/general/messages/{2**70}/"
    assert as_user(user).delete(huge).status_code == 404
    assert as_user(user).patch(huge, {"text": "x"}, format="json").status_code == 404
    assert APIClient().delete(url).status_code == 403
    assert Message.objects.get(pk=first.data["id"]).text == "hello"


def test_rest_history_shows_messages_as_they_are_now(room, user):
    ids = [post(room, user, f"m{n}").data["id"] for n in range(4)]
    services.message_edit(room=room, actor=user, message_id=ids[1], text="m1 edited")
    services.message_delete(room=room, actor=user, message_id=ids[2])
    page = as_user(user).get("/api/rooms/general/messages/").json()
    assert [(m["id"], m["text"]) for m in page["results"]] == [
        (ids[0], "m0"),
        (ids[1], "m1 edited"),
        (ids[3], "m3"),
    ]
    assert [m["edited_at"] is not None for m in page["results"]] == [False, True, False]
    older = as_user(user).get("/api/rooms/general/messages/?before=3&limit=1").json()
    assert [m["text"] for m in older["results"]] == ["m1 edited"]
    assert older["has_more"] is True


def test_mentions_name_only_users_that_exist(room, user, other_user):
    text = f"hi @{other_user.username} and @nobody-here, @{user.username}."
    publication = post(room, user, text)
    expected = [
        {"id": other_user.pk, "username": other_user.username},
        {"id": user.pk, "username": user.username},
    ]
    assert publication.data["mentions"] == expected
    page = as_user(user).get("/api/rooms/general/messages/").json()
    assert page["results"][0]["mentions"] == expected


def test_an_edit_notifies_only_the_newly_mentioned(room, user, other_user):
    third = UserFactory()
    first = post(room, user, f"hey @{other_user.username}")
    assert Notification.objects.filter(user=other_user).count() == 1
    services.message_edit(
        room=room,
        actor=user,
        message_id=first.data["id"],
        text=f"hey @{other_user.username} and @{third.username}",
    )
    assert Notification.objects.filter(user=other_user).count() == 1
    assert Notification.objects.filter(user=third).count() == 1
    edited = Event.objects.get(topic="room:general", offset=2).data
    assert [m["username"] for m in edited["mentions"]] == [other_user.username, third.username]
