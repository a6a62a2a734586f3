"""
The gateway through the real ASGI stack (origin check, sessions, auth): every
row of PROTOCOL.md's frames, errors and topics tables, and who gets what.
"""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import override_settings

from config.asgi import application
from realtime.chat.services import announcement_create, message_create, notification_create
from realtime.gateway import protocol
from realtime.gateway.control import connection_disconnect
from realtime.gateway.publishing import publish
from realtime.gateway.registry import connections_list
from realtime.gateway.testing import connect
from realtime.models import Event, Message, Notification, TopicSequence
from tests.factories import RoomFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

apublish = sync_to_async(publish)


def say(text, ref="p1", topic="room:general", **extra):
    return {"type": "publish", "topic": topic, "data": {"text": text}, "ref": ref, **extra}


# Handshake -------------------------------------------------------------------


@pytest.mark.parametrize("origin", [b"http://evil.example", None])
async def test_foreign_or_missing_origin_is_refused_at_the_handshake(user, origin):
    headers = [(b"origin", origin)] if origin else []
    communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
    connected, _ = await communicator.connect()
    # Closed before accept: daphne answers HTTP 403 (tests/test_server.py checks that).
    assert not connected


async def test_welcome_is_the_first_frame_and_names_the_user(user):
    client = await connect(user)
    welcome = client.welcome
    assert welcome["protocol"] == 1
    assert welcome["user"] == {"id": user.pk, "username": user.username}
    assert welcome["heartbeat"] == 25
    assert isinstance(welcome["connection_id"], str) and welcome["connection_id"]
    assert welcome["server_time"].endswith("+00:00")
    await client.close()


async def test_anonymous_connection_is_accepted_with_null_user(db):
    client = await connect()
    assert client.welcome["user"] is None
    await client.close()


async def test_subprotocol_is_accepted_when_asked(user):
    client = await connect(user, subprotocols=["realtime.v1"])
    assert client.subprotocol == "realtime.v1"
    await client.close()
    plain = await connect(user)
    assert plain.subprotocol is None
    await plain.close()


# Bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('"a string"', "bad_json"),
        ("[" * 5000 + "]" * 5000, "bad_json"),
        ("{}", "bad_message"),
        ('{"type": 5}', "bad_message"),
        ('{"type": "ping", "ref": 12}', "bad_message"),
        ('{"type": "ping", "ref": "' + "x" * 65 + '"}', "bad_message"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "subscribe"}', "bad_message"),
        ('{"type": "subscribe", "topic": 7}', "bad_message"),
        ('{"type": "subscribe", "topic": "broadcast", "since": -1}', "bad_message"),
        ('{"type": "subscribe", "topic": "broadcast", "since": "3"}', "bad_message"),
        ('{"type": "subscribe", "topic": "broadcast", "since": true}', "bad_message"),
        ('{"type": "subscribe", "topic": "broadcast", "since": 1e400}', "bad_message"),
        ('{"type": "subscribe", "topic": "broadcast", "since": ' + "9" * 400 + "}", "bad_message"),
        ('{"type": "publish", "topic": "broadcast", "data": "hi"}', "bad_message"),
        ('{"type": "publish", "topic": "broadcast", "data": {}, "id": 5}', "bad_message"),
        ('{"type": "subscribe", "topic": "nope:1"}', "unknown_topic"),
        ('{"type": "subscribe", "topic": "room:Bad Slug"}', "unknown_topic"),
        ('{"type": "subscribe", "topic": "user:abc"}', "unknown_topic"),
        ('{"type": "subscribe", "topic": "broadcast:x"}', "unknown_topic"),
        ('{"type": "unsubscribe", "topic": "nope"}', "unknown_topic"),
    ],
)
async def test_bad_frame_gets_its_error_and_the_connection_stays_usable(user, text, code):
    client = await connect(user)
    await client.send_text(text)
    error = await client.receive()
    assert error["type"] == "error"
    assert error["code"] == code, error
    assert error["message"]
    assert await client.request({"type": "ping", "ref": "still"}) == {
        "type": "pong",
        "ref": "still",
    }
    await client.close()


async def test_error_reply_carries_the_requests_ref_and_topic(user):
    client = await connect(user)
    error = await client.request({"type": "subscribe", "topic": "room:nowhere", "ref": "r9"})
    assert error == {
        "type": "error",
        "code": "not_found",
        "message": error["message"],
        "ref": "r9",
        "topic": "room:nowhere",
    }
    await client.close()


async def test_ping_gets_pong_with_the_same_ref(user):
    client = await connect(user)
    assert await client.request({"type": "ping", "ref": "abc"}) == {"type": "pong", "ref": "abc"}
    await client.close()


async def test_binary_frame_closes_with_4003(user):
    client = await connect(user)
    await client.communicator.send_to(bytes_data=b"\x00\x01")
    assert await client.closed_with() == protocol.CLOSE_BINARY


async def test_frame_over_64_kib_closes_with_4009(user):
    client = await connect(user)
    await client.send_text(json.dumps({"type": "ping", "pad": "x" * 65536}))
    assert await client.closed_with() == protocol.CLOSE_TOO_LARGE


async def test_frame_of_exactly_64_kib_is_accepted(user):
    client = await connect(user)
    frame = json.dumps({"type": "ping", "ref": "big", "pad": ""})
    frame = frame.replace('"pad": ""', '"pad": "' + "x" * (65536 - len(frame)) + '"')
    assert len(frame.encode()) == 65536
    await client.send_text(frame)
    assert await client.receive() == {"type": "pong", "ref": "big"}
    await client.close()


async def test_multibyte_frame_over_64_kib_in_bytes_closes_with_4009(user):
    client = await connect(user)
    await client.send_text(json.dumps({"type": "ping", "pad": "é" * 33000}, ensure_ascii=False))
    assert await client.closed_with() == protocol.CLOSE_TOO_LARGE


@override_settings(
    REALTIME={
        **settings.REALTIME,
        "RATE_BURST": 5,
        "RATE_PER_SECOND": 1.0,
    }
)
async def test_frames_past_the_burst_are_dropped_with_rate_limited(user):
    client = await connect(user)
    for i in range(5):
        await client.send({"type": "ping", "ref": str(i)})
    await client.send({"type": "ping", "ref": "over"})
    replies = [await client.receive() for _ in range(6)]
    assert [r["type"] for r in replies] == ["pong"] * 5 + ["error"]
    assert replies[-1]["code"] == "rate_limited"
    assert replies[-1]["ref"] == "over"
    assert 0 < replies[-1]["retry_after_ms"] <= 1000
    await asyncio.sleep(replies[-1]["retry_after_ms"] / 1000)
    assert await client.request({"type": "ping", "ref": "later"}) == {
        "type": "pong",
        "ref": "later",
    }
    await client.close()


async def test_flooding_client_is_closed_with_4429_and_others_are_unharmed(user, other_user, room):
    flooder = await connect(user)
    bystander = await connect(other_user)
    await bystander.subscribe("room:general")
    for _ in range(30 + 100):
        await flooder.send({"type": "ping"})
    assert await flooder.closed_with(timeout=5) == protocol.CLOSE_FLOODING
    await bystander.send(say("still here"))
    frames = await bystander.receive_until("ack")
    assert frames[-1]["offset"] == 1
    await bystander.close()


@override_settings(REALTIME={**settings.REALTIME, "MAX_SUBSCRIPTIONS": 2})
async def test_subscription_cap_answers_too_many_subscriptions(user):
    client = await connect(user)
    await client.subscribe("broadcast")
    await client.subscribe(f"user:{user.pk}")
    error = await client.request({"type": "subscribe", "topic": "dashboard", "ref": "x"})
    assert error["code"] == "too_many_subscriptions"
    # Re-subscribing to a topic it has is not a new subscription.
    await client.subscribe("broadcast")
    await client.close()


# Topics: who may subscribe and publish -------------------------------------


async def test_anonymous_is_forbidden_on_any_room_existing_or_not(room):
    client = await connect()
    for topic in ("room:general", "room:no-such-room"):
        error = await client.request({"type": "subscribe", "topic": topic})
        assert error["code"] == "forbidden"
        error = await client.request(say("hi", topic=topic))
        assert error["code"] == "forbidden"
    await client.close()


async def test_outsider_cannot_subscribe_to_private_room_and_sees_not_found(
    private_room, other_user
):
    client = await connect(other_user)
    hidden = await client.request({"type": "subscribe", "topic": "room:secret", "ref": "a"})
    missing = await client.request({"type": "subscribe", "topic": "room:nothing", "ref": "a"})
    assert hidden["code"] == missing["code"] == "not_found"
    assert hidden["message"].replace("secret", "") == missing["message"].replace("nothing", "")
    error = await client.request(say("hi", topic="room:secret"))
    assert error["code"] == "not_found"
    await client.close()


async def test_member_and_staff_may_subscribe_to_private_room(private_room, other_user, staff):
    await sync_to_async(private_room.members.add)(other_user)
    for who in (other_user, staff):
        client = await connect(who)
        reply = await client.subscribe("room:secret")
        assert reply["offset"] == 0
        await client.close()


async def test_member_of_private_room_receives_message_and_outsider_does_not(
    private_room, user, other_user
):
    outsider = await connect(other_user)
    member = await connect(user)
    await member.subscribe("room:secret")
    await outsider.request({"type": "subscribe", "topic": "room:secret"})
    await member.send(say("for members", topic="room:secret"))
    frames = await member.receive_until("ack")
    assert any(f["type"] == "event" and f["data"]["text"] == "for members" for f in frames)
    assert await outsider.nothing_arrives()
    await member.close()
    await outsider.close()


async def test_user_topic_is_for_that_user_only(user, other_user):
    client = await connect(user)
    assert (await client.subscribe(f"user:{user.pk}"))["offset"] == 0
    other = await client.request({"type": "subscribe", "topic": f"user:{other_user.pk}"})
    nobody = await client.request({"type": "subscribe", "topic": "user:999999"})
    assert other["code"] == nobody["code"] == "forbidden"
    error = await client.request(
        {"type": "publish", "topic": f"user:{user.pk}", "data": {"title": "x"}}
    )
    assert error["code"] == "forbidden"
    await client.close()


async def test_notification_reaches_only_its_user(user, other_user):
    alice = await connect(user)
    bob = await connect(other_user)
    await alice.subscribe(f"user:{user.pk}")
    await bob.subscribe(f"user:{other_user.pk}")
    await sync_to_async(notification_create)(user=user, title="Hello", url="/x/")
    event = await alice.receive()
    assert event["type"] == "event" and event["offset"] == 1
    assert event["data"] == {
        "kind": "notification",
        "id": event["data"]["id"],
        "title": "Hello",
        "body": "",
        "url": "/x/",
        "created_at": event["data"]["created_at"],
    }
    assert await bob.nothing_arrives()
    await alice.close()
    await bob.close()


async def test_broadcast_is_for_everyone_and_published_by_staff_only(user, staff):
    anonymous = await connect()
    member = await connect(user)
    admin = await connect(staff)
    for client in (anonymous, member, admin):
        await client.subscribe("broadcast")
    error = await member.request(say("not me", topic="broadcast"))
    assert error["code"] == "forbidden"
    await admin.send(say("Maintenance at noon", topic="broadcast", ref="b"))
    frames = await admin.receive_until("ack")
    assert frames[-1] == {"type": "ack", "topic": "broadcast", "offset": 1, "ref": "b"}
    for client in (anonymous, member):
        event = await client.receive()
        assert event["data"]["kind"] == "announcement"
        assert event["data"]["text"] == "Maintenance at noon"
        assert event["offset"] == 1
    for client in (anonymous, member, admin):
        await client.close()


async def test_dashboard_is_staff_only_and_ticks_with_statistics(user, staff):
    member = await connect(user)
    error = await member.request({"type": "subscribe", "topic": "dashboard"})
    assert error["code"] == "forbidden"
    anonymous = await connect()
    assert (await anonymous.request({"type": "subscribe", "topic": "dashboard"}))["code"] == (
        "forbidden"
    )
    admin = await connect(staff)
    reply = await admin.subscribe("dashboard")
    assert reply["offset"] is None
    tick = await admin.receive(timeout=3)
    assert tick["type"] == "event" and tick["topic"] == "dashboard" and tick["offset"] is None
    assert tick["data"]["connections"] == 3
    assert tick["data"]["users_online"] == 2
    assert "messages_per_second" in tick["data"]
    second = await admin.receive(timeout=3)
    assert second["topic"] == "dashboard"
    error = await admin.request({"type": "publish", "topic": "dashboard", "data": {}})
    assert error["code"] == "forbidden"
    for client in (member, anonymous, admin):
        await client.close()


async def test_empty_or_too_long_text_is_invalid(user, room):
    client = await connect(user)
    for text in ("", "   ", "x" * 2001):
        error = await client.request(say(text, ref="t"))
        assert (error["code"], error["ref"]) == ("invalid", "t")
    error = await client.request(
        {"type": "publish", "topic": "room:general", "data": {"text": 5}, "ref": "t"}
    )
    assert error["code"] == "invalid"
    assert await sync_to_async(Message.objects.count)() == 0
    await client.close()


async def test_publish_does_not_require_subscribing_and_acks_with_offset(user, room):
    client = await connect(user)
    ack = await client.request(say("  hello  ", ref="p"))
    assert ack == {"type": "ack", "topic": "room:general", "offset": 1, "ref": "p"}
    message = await sync_to_async(Message.objects.get)()
    assert (message.text, message.offset, message.author_id) == ("hello", 1, user.pk)
    await client.close()


async def test_event_data_of_a_room_message_has_the_protocols_fields(user, room):
    client = await connect(user)
    await client.subscribe("room:general")
    await client.send(say("shape"))
    event = next(f for f in await client.receive_until("ack") if f["type"] == "event")
    assert set(event) == {"type", "topic", "offset", "ts", "data"}
    assert event["data"] == {
        "kind": "message",
        "id": event["data"]["id"],
        "text": "shape",
        "author": {"id": user.pk, "username": user.username},
        "created_at": event["data"]["created_at"],
        # Additive (PROTOCOL.md, Decisions): the real users it mentions.
        "mentions": [],
    }
    await client.close()


async def test_unsubscribed_topic_receives_nothing_more(user, other_user, room):
    listener = await connect(other_user)
    await listener.join("room:general")
    reply = await listener.request({"type": "unsubscribe", "topic": "room:general", "ref": "u"})
    assert reply == {"type": "unsubscribed", "topic": "room:general", "ref": "u"}
    talker = await connect(user)
    await talker.request(say("gone"))
    assert await listener.nothing_arrives()
    await listener.close()
    await talker.close()


# Offsets, history, recovery ----------------------------------------------------


async def test_offsets_count_up_without_gaps_per_topic(user, room):
    await sync_to_async(RoomFactory)(slug="other", owner=user)
    client = await connect(user)
    offsets = []
    for i, topic in enumerate(["room:general", "room:other", "room:general", "room:general"]):
        offsets.append((await client.request(say(str(i), topic=topic)))["offset"])
    assert offsets == [1, 1, 2, 3]
    await client.close()


async def test_subscribed_reports_the_latest_offset(user, room):
    for i in range(3):
        await sync_to_async(message_create)(room=room, author=user, text=f"m{i}")
    client = await connect(user)
    reply = await client.join("room:general")
    assert reply["offset"] == 3
    assert "recovered" not in reply
    assert await client.nothing_arrives()
    await client.close()


async def test_subscribe_since_replays_missed_events_in_order_then_continues_live(user, room):
    for i in range(5):
        await sync_to_async(message_create)(room=room, author=user, text=f"m{i}")
    client = await connect(user)
    await client.send({"type": "subscribe", "topic": "room:general", "since": 2, "ref": "s"})
    subscribed = await client.receive()
    assert subscribed == {
        "type": "subscribed",
        "topic": "room:general",
        "offset": 5,
        "recovered": True,
        "ref": "s",
    }
    replay = [await client.receive() for _ in range(3)]
    assert [(e["offset"], e["data"]["text"]) for e in replay] == [(3, "m2"), (4, "m3"), (5, "m4")]
    await sync_to_async(message_create)(room=room, author=user, text="live")
    frames = await client.receive_until("event")
    assert (frames[-1]["offset"], frames[-1]["data"]["text"]) == (6, "live")
    await client.close()


async def test_since_at_the_latest_offset_recovers_with_nothing_to_replay(user, room):
    await sync_to_async(message_create)(room=room, author=user, text="one")
    client = await connect(user)
    reply = await client.subscribe("room:general", since=1)
    assert reply["recovered"] is True and reply["offset"] == 1
    frames = await client.receive_until("presence_state")
    assert [f["type"] for f in frames if f["type"] == "event"] == []
    await client.close()


async def test_since_beyond_retention_is_not_recovered_and_replays_nothing(user, room):
    for i in range(4):
        await sync_to_async(message_create)(room=room, author=user, text=f"m{i}")
    await sync_to_async(Event.objects.filter(topic="room:general", offset__lte=2).delete)()
    client = await connect(user)
    reply = await client.subscribe("room:general", since=0)
    assert reply["recovered"] is False and reply["offset"] == 4
    frames = await client.receive_until("presence_state")
    assert not [f for f in frames if f["type"] == "event"]
    await client.close()


async def test_a_replay_is_bounded_by_max_replay(settings, user, room):
    settings.REALTIME = {**settings.REALTIME, "MAX_REPLAY": 5}
    for i in range(8):
        await sync_to_async(message_create)(room=room, author=user, text=f"m{i}")
    client = await connect(user)
    # 7 missed, more than 5: nothing replayed, not recovered (reload over REST).
    reply = await client.subscribe("room:general", since=1)
    assert (reply["recovered"], reply["offset"]) == (False, 8)
    frames = await client.receive_until("presence_state")
    assert not [f for f in frames if f["type"] == "event"]
    # 5 missed: replayed whole.
    reply = await client.subscribe("room:general", since=3)
    assert reply["recovered"] is True
    frames = await client.receive_until("presence_state")
    assert [f["offset"] for f in frames if f["type"] == "event"] == [4, 5, 6, 7, 8]
    await client.close()


async def test_since_ahead_of_the_topic_is_not_recovered(user, room):
    client = await connect(user)
    reply = await client.subscribe("room:general", since=50)
    assert reply["recovered"] is False and reply["offset"] == 0
    await client.close()


async def test_resending_a_publish_with_the_same_id_is_stored_once(user, other_user, room):
    listener = await connect(other_user)
    await listener.join("room:general")
    client = await connect(user)
    first = await client.request(say("once", ref="a", id="msg-1"))
    second = await client.request(say("once", ref="b", id="msg-1"))
    assert first["offset"] == second["offset"] == 1
    assert second["ref"] == "b"
    assert await sync_to_async(Message.objects.count)() == 1
    frames = await listener.receive_until("event")
    assert frames[-1]["offset"] == 1
    assert await listener.nothing_arrives()
    # The same id from another user is another message.
    other = await connect(other_user)
    ack = await other.request(say("mine", id="msg-1"))
    assert ack["offset"] == 2
    for client_ in (listener, client, other):
        await client_.close()


async def test_kind_read_events_are_numbered_and_replayed(user):
    from realtime.chat.services import notifications_mark_read

    first = await sync_to_async(notification_create)(user=user, title="one")
    notification = await sync_to_async(Notification.objects.get)()
    await sync_to_async(notifications_mark_read)(user=user, ids=[notification.pk])
    client = await connect(user)
    await client.subscribe(f"user:{user.pk}", since=0)
    replay = [await client.receive() for _ in range(2)]
    assert [e["offset"] for e in replay] == [first.offset, first.offset + 1]
    assert replay[1]["data"] == {"kind": "read", "ids": [notification.pk]}
    await client.close()


async def test_mention_notifies_a_user_who_can_see_the_room(user, other_user, private_room):
    outsider = await sync_to_async(UserFactory)(username="carol")
    await sync_to_async(private_room.members.add)(other_user)
    bob = await connect(other_user)
    await bob.subscribe(f"user:{other_user.pk}")
    client = await connect(user)
    await client.request(
        say(f"hey @{other_user.username} and @carol", topic="room:secret", ref="m")
    )
    event = await bob.receive()
    assert event["data"]["kind"] == "notification"
    assert user.username in event["data"]["title"]
    message = await sync_to_async(private_room.messages.get)()
    assert event["data"]["url"] == f"/rooms/secret/#message-{message.pk}"
    assert not await sync_to_async(Notification.objects.filter(user=outsider).exists)()
    await bob.close()
    await client.close()


async def test_server_side_publish_inside_a_rolled_back_transaction_never_goes_out(user, room):
    from django.db import transaction

    client = await connect(user)
    await client.join("room:general")

    def publish_then_fail():
        with transaction.atomic():
            message_create(room=room, author=user, text="never")
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        await sync_to_async(publish_then_fail)()
    assert await client.nothing_arrives()
    assert await sync_to_async(Message.objects.count)() == 0
    # The offset was not spent: the next message is 1.
    publication = await sync_to_async(message_create)(room=room, author=user, text="kept")
    assert publication.offset == 1
    await client.close()


async def test_events_that_the_channel_layer_lost_are_filled_in_from_the_database(user, room):
    client = await connect(user)
    await client.join("room:general")

    def store_without_broadcast(text):
        # A publication whose broadcast never reached the layer (Redis down).
        from realtime.gateway import publishing

        original = publishing.broadcast
        publishing.broadcast = lambda publication: None
        try:
            return message_create(room=room, author=user, text=text)
        finally:
            publishing.broadcast = original

    await sync_to_async(store_without_broadcast)("lost")
    await sync_to_async(message_create)(room=room, author=user, text="after")
    events = [await client.receive() for _ in range(2)]
    assert [(e["offset"], e["data"]["text"]) for e in events] == [(1, "lost"), (2, "after")]
    await client.close()


# Presence ----------------------------------------------------------------------


async def test_presence_state_lists_subscribers_and_diffs_track_joins_and_leaves(
    user, other_user, room
):
    alice = await connect(user)
    frames = await alice.request({"type": "subscribe", "topic": "room:general"})
    assert frames["type"] == "subscribed"
    state = [f for f in await alice.receive_until("presence_state")][-1]
    assert state["users"] == [{"id": user.pk, "username": user.username}]
    assert (await alice.receive())["joins"] == [{"id": user.pk, "username": user.username}]
    bob = await connect(other_user)
    await bob.subscribe("room:general")
    state = (await bob.receive_until("presence_state"))[-1]
    assert {u["id"] for u in state["users"]} == {user.pk, other_user.pk}
    diff = await alice.receive()
    assert diff == {
        "type": "presence_diff",
        "topic": "room:general",
        "joins": [{"id": other_user.pk, "username": other_user.username}],
        "leaves": [],
    }
    await bob.close()
    diff = await alice.receive()
    assert diff["leaves"] == [{"id": other_user.pk, "username": other_user.username}]
    await alice.close()


async def test_user_with_two_tabs_joins_once_and_leaves_once(user, other_user, room):
    watcher = await connect(other_user)
    await watcher.join("room:general")
    tab1 = await connect(user)
    await tab1.subscribe("room:general")
    tab2 = await connect(user)
    await tab2.subscribe("room:general")
    diffs = []
    while not await watcher.nothing_arrives(0.3):
        diffs.append(await watcher.receive())
    assert [d["joins"] for d in diffs] == [[{"id": user.pk, "username": user.username}]]
    await tab1.close()
    assert await watcher.nothing_arrives()
    await tab2.close()
    diff = await watcher.receive()
    assert diff["leaves"] == [{"id": user.pk, "username": user.username}]
    await watcher.close()


# Revocation, admin disconnect, session end -------------------------------------


async def test_member_removed_from_private_room_gets_no_further_events(
    private_room, user, other_user
):
    await sync_to_async(private_room.members.add)(other_user)
    member = await connect(other_user)
    await member.subscribe("room:secret")
    await member.receive_until("presence_state")
    await sync_to_async(private_room.members.remove)(other_user)
    error = await member.receive()
    assert (error["type"], error["code"], error["topic"]) == ("error", "not_found", "room:secret")
    await sync_to_async(message_create)(room=private_room, author=user, text="after removal")
    assert await member.nothing_arrives()
    denied = await member.request(say("let me in", topic="room:secret"))
    assert denied["code"] == "not_found"
    await member.close()


async def test_admin_disconnect_closes_that_socket_with_4000_only(user, other_user):
    target = await connect(user)
    bystander = await connect(other_user)
    live = {c["connection_id"]: c for c in await sync_to_async(connections_list)()}
    assert live[target.welcome["connection_id"]]["username"] == user.username
    found = await sync_to_async(connection_disconnect)(target.welcome["connection_id"])
    assert found is True
    assert await target.closed_with() == protocol.CLOSE_ADMIN
    assert await bystander.request({"type": "ping", "ref": "x"}) == {"type": "pong", "ref": "x"}
    assert await sync_to_async(connection_disconnect)("no-such-connection") is False
    await bystander.close()


async def test_deactivating_a_user_closes_their_sockets_with_4401(user, other_user):
    target = await connect(user)
    bystander = await connect(other_user)

    def deactivate():
        user.is_active = False
        user.save()

    await sync_to_async(deactivate)()
    assert await target.closed_with(timeout=5) == protocol.CLOSE_SESSION_ENDED
    assert await bystander.request({"type": "ping", "ref": "x"}) == {"type": "pong", "ref": "x"}
    await bystander.close()


async def test_logout_closes_that_sessions_socket_with_4401(user):
    from django.test import Client as HttpClient

    http = HttpClient()
    await sync_to_async(http.force_login)(user)
    key = http.cookies["sessionid"].value
    communicator = WebsocketCommunicator(
        application,
        "/ws/",
        headers=[
            (b"origin", b"http://localhost"),
            (b"host", b"localhost"),
            (b"cookie", f"sessionid={key}".encode()),
        ],
    )
    assert (await communicator.connect())[0]
    welcome = json.loads(await communicator.receive_from())
    assert welcome["user"]["id"] == user.pk
    other_session = await connect(user)
    await sync_to_async(http.logout)()
    output = await communicator.receive_output(timeout=5)
    assert (output["type"], output.get("code")) == ("websocket.close", 4401)
    # The user's other session is still signed in.
    assert await other_session.request({"type": "ping", "ref": "x"})
    await other_session.close()


async def test_expired_session_closes_the_socket_with_4401(user):
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    client = await connect(user)
    await sync_to_async(Session.objects.update)(expire_date=timezone.now() - timedelta(seconds=1))
    # An expiry is noticed on the socket's schedule; a verify nudges it here.
    from realtime.gateway.control import user_sessions_verify

    await sync_to_async(user_sessions_verify)(user_id=user.pk)
    assert await client.closed_with(timeout=5) == protocol.CLOSE_SESSION_ENDED


async def test_server_error_in_a_handler_answers_server_error_and_keeps_the_socket(
    user, room, monkeypatch
):
    from realtime.gateway import batching

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(batching, "commit_socket_batch", broken)
    client = await connect(user)
    error = await client.request(say("x", ref="e"))
    assert (error["code"], error["ref"]) == ("server_error", "e")
    assert await client.request({"type": "ping", "ref": "ok"}) == {"type": "pong", "ref": "ok"}
    await client.close()


async def test_staff_publish_through_publish_function_reaches_socket(staff, user):
    client = await connect(user)
    await client.subscribe("broadcast")
    await sync_to_async(announcement_create)(author=staff, text="From the admin")
    event = await client.receive()
    assert event["data"]["text"] == "From the admin"
    assert await sync_to_async(TopicSequence.objects.get)(topic="broadcast")
    await client.close()


async def test_another_staff_user_can_see_private_rooms(private_room):
    other_staff = await sync_to_async(StaffFactory)()
    client = await connect(other_staff)
    ack = await client.request(say("staff visit", topic="room:secret"))
    assert ack["type"] == "ack"
    await client.close()


async def test_a_lost_last_event_is_delivered_by_the_sweep(user, room, monkeypatch):
    from realtime.gateway import hub, publishing

    monkeypatch.setattr(hub, "SWEEP_SECONDS", 0.2)
    client = await connect(user)
    await client.join("room:general")
    # Its broadcast never reaches the layer, and no later event reveals the gap.
    monkeypatch.setattr(publishing, "broadcast", lambda publication: None)
    await sync_to_async(message_create)(room=room, author=user, text="lost at the tail")
    event = await client.receive(timeout=3)
    assert (event["offset"], event["data"]["text"]) == (1, "lost at the tail")
    await client.close()


async def test_admin_live_connections_page_lists_and_disconnects_with_4000_and_logs_it(
    user, other_user, room
):
    from django.contrib.admin.models import LogEntry
    from django.test import Client as HttpClient

    admin_user = await sync_to_async(StaffFactory)(is_superuser=True)
    target = await connect(user)
    await target.join("room:general")
    bystander = await connect(other_user)
    http = HttpClient()
    await sync_to_async(http.force_login)(admin_user)
    url = "/admin/realtime/liveconnection/"
    page = await sync_to_async(http.get)(url, {"topic": "room:general"})
    assert page.status_code == 200
    html = page.content.decode()
    assert target.welcome["connection_id"] in html
    assert bystander.welcome["connection_id"] not in html
    response = await sync_to_async(http.post)(
        url, {"connection_id": target.welcome["connection_id"]}
    )
    assert response.status_code == 302
    assert await target.closed_with(timeout=3) == protocol.CLOSE_ADMIN
    assert await bystander.request({"type": "ping", "ref": "x"}) == {"type": "pong", "ref": "x"}
    entry = await sync_to_async(LogEntry.objects.get)()
    assert entry.user_id == admin_user.pk
    assert target.welcome["connection_id"] in entry.change_message
    # A user's every socket at once.
    tabs = [await connect(other_user) for _ in range(2)]
    await sync_to_async(http.post)(url, {"user_id": str(other_user.pk)})
    for tab in [bystander, *tabs]:
        assert await tab.closed_with(timeout=3) == protocol.CLOSE_ADMIN


async def test_non_staff_cannot_open_the_live_connections_page(user):
    from django.test import Client as HttpClient

    http = HttpClient()
    await sync_to_async(http.force_login)(user)
    response = await sync_to_async(http.get)("/admin/realtime/liveconnection/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


async def test_presence_changes_close_together_arrive_as_one_diff(room):
    users = [await sync_to_async(UserFactory)() for _ in range(4)]
    watcher = await connect(users[0])
    await watcher.join("room:general")
    others = [await connect(user) for user in users[1:]]
    await asyncio.gather(*(client.subscribe("room:general") for client in others))
    frames = []
    while not await watcher.nothing_arrives(0.3):
        frames.append(await watcher.receive())
    diffs = [f for f in frames if f["type"] == "presence_diff"]
    joined = [u["id"] for d in diffs for u in d["joins"]]
    assert sorted(joined) == sorted(u.pk for u in users[1:])
    assert len(diffs) < 3
    for client in [watcher, *others]:
        await client.close()


async def test_a_subscription_without_presence_is_not_seen_as_online(user, other_user, room):
    """A page that only counts unread messages subscribes with `presence: false`."""
    present = await connect(other_user)
    await present.join(room.topic)
    counting = await connect(user)
    reply = await counting.subscribe(room.topic, presence=False)
    assert reply["type"] == "subscribed"
    # No presence_state for it, and nobody sees its user join.
    assert await counting.nothing_arrives(0.4)
    assert await present.nothing_arrives(0.4)
    # It still gets the room's events, and no presence frames of others: a
    # third person coming in is announced to the present socket only.
    other = await connect(await sync_to_async(UserFactory)())
    await other.subscribe(room.topic)
    diff = await present.receive()
    assert (diff["type"], diff["topic"]) == ("presence_diff", room.topic)
    await present.publish(room.topic, {"text": "hello"})
    frame = await counting.receive()
    assert (frame["type"], frame["data"]["text"]) == ("event", "hello")
    assert await counting.nothing_arrives(0.3)
    # Leaving without presence is no leave for the others either.
    await counting.close()
    assert all(f["type"] != "presence_diff" for f in await drain(present))
    for client in (present, other):
        await client.close()


async def test_presence_must_be_a_boolean(user, room):
    client = await connect(user)
    error = await client.request(
        {"type": "subscribe", "topic": room.topic, "ref": "s", "presence": "no"}
    )
    assert (error["type"], error["code"]) == ("error", "bad_message")
    await client.close()


async def drain(client, quiet: float = 0.4) -> list[dict]:
    frames = []
    while not await client.nothing_arrives(quiet):
        frames.append(await client.receive())
    return frames
