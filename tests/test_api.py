"""The REST API: every endpoint for the allowed user, an outsider, anonymous and without CSRF."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from realtime.chat import services
from realtime.gateway import registry as connections
from realtime.gateway.control import group_name
from realtime.models import Announcement, Event, Message, Notification, Room
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def client_for(user=None, *, csrf: bool = False) -> APIClient:
    client = APIClient(enforce_csrf_checks=csrf)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def api():
    return client_for()


def csrf_headers(client: APIClient) -> dict:
    """What a browser sends: the token from the cookie that GET /api/auth/csrf/ sets."""
    response = client.get("/api/auth/csrf/")
    assert response.status_code == 200
    return {"HTTP_X_CSRFTOKEN": response.cookies["csrftoken"].value}


def post_messages(room: Room, author, count: int) -> None:
    for n in range(1, count + 1):
        services.message_create(room=room, author=author, text=f"message {n}")


def listen(topic: str) -> str:
    """A channel-layer channel in the topic's group, to see what publish() hands to delivery."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(topic), channel)
    return channel


def received(channel: str) -> dict:
    return async_to_sync(get_channel_layer().receive)(channel)


# Anonymous: 403 everywhere but csrf, login, logout, schema and docs.

ANONYMOUS_REFUSED = [
    ("get", "/api/me/"),
    ("get", "/api/rooms/"),
    ("post", "/api/rooms/"),
    ("get", "/api/rooms/general/"),
    ("get", "/api/rooms/secret/"),
    ("get", "/api/rooms/no-such-room/"),
    ("post", "/api/rooms/general/members/"),
    ("post", "/api/rooms/no-such-room/members/"),
    ("get", "/api/rooms/general/messages/"),
    ("post", "/api/rooms/general/messages/"),
    ("post", "/api/rooms/no-such-room/messages/"),
    ("get", "/api/notifications/"),
    ("post", "/api/notifications/read/"),
    ("post", "/api/publish/"),
    ("get", "/api/connections/"),
    ("delete", "/api/connections/abc/"),
]


@pytest.mark.parametrize(("method", "path"), ANONYMOUS_REFUSED)
def test_anonymous_requests_are_refused_with_403(api, room, private_room, method, path):
    response = getattr(api, method)(path, {}, format="json")
    assert response.status_code == 403
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/auth/csrf/", "application/json"),
        ("/api/schema/", "application/vnd.oai.openapi"),
        ("/api/docs/", "text/html"),
    ],
)
def test_anonymous_may_read_csrf_schema_and_docs(api, path, content_type):
    response = api.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)


# Unsafe requests on a session need the CSRF token.

SESSION_UNSAFE = [
    ("post", "/api/auth/logout/", {}),
    ("post", "/api/rooms/", {"slug": "new-room", "name": "New"}),
    ("post", "/api/rooms/general/members/", {"username": "someone"}),
    ("post", "/api/rooms/general/messages/", {"text": "hello"}),
    ("post", "/api/notifications/read/", {"ids": [1]}),
    ("post", "/api/publish/", {"topic": "broadcast", "data": {"text": "hi"}}),
    ("delete", "/api/connections/abc/", None),
]


@pytest.mark.parametrize(("method", "path", "body"), SESSION_UNSAFE)
def test_a_session_request_without_csrf_token_is_refused(staff, room, method, path, body):
    client = client_for(staff, csrf=True)
    response = getattr(client, method)(path, body, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert not Room.objects.filter(slug="new-room").exists()
    assert not Message.objects.exists()
    assert not Announcement.objects.exists()


@pytest.mark.parametrize(("method", "path", "body"), SESSION_UNSAFE)
def test_a_session_request_with_the_csrf_token_passes_the_check(staff, room, method, path, body):
    UserFactory(username="someone")
    client = client_for(staff, csrf=True)
    response = getattr(client, method)(path, body, format="json", **csrf_headers(client))
    assert response.status_code in {200, 201, 204, 404}, response.content
    if response.status_code == 404:  # only the unknown connection
        assert path.startswith("/api/connections/")


# auth/csrf, auth/login, auth/logout, me


def test_csrf_endpoint_sets_the_csrftoken_cookie(api):
    response = api.get("/api/auth/csrf/")
    assert response.status_code == 200
    assert response.cookies["csrftoken"].value
    assert response.json()["csrf_token"]


def test_login_with_good_credentials_starts_a_session(user):
    client = client_for(csrf=True)
    response = client.post(
        "/api/auth/login/",
        {"username": user.username, "password": PASSWORD},
        format="json",
        **csrf_headers(client),
    )
    assert response.status_code == 200
    assert response.json() == {"id": user.pk, "username": user.username, "is_staff": False}
    assert response.cookies["sessionid"].value
    assert client.get("/api/me/").json()["id"] == user.pk


def test_login_with_a_wrong_password_is_400_and_starts_no_session(user):
    client = client_for(csrf=True)
    response = client.post(
        "/api/auth/login/",
        {"username": user.username, "password": "wrong"},
        format="json",
        **csrf_headers(client),
    )
    assert response.status_code == 400
    assert response.json()["non_field_errors"]
    assert "sessionid" not in response.cookies
    assert client.get("/api/me/").status_code == 403


def test_login_of_an_inactive_user_is_400(user):
    user.is_active = False
    user.save()
    response = client_for().post(
        "/api/auth/login/", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 400


def test_login_with_missing_fields_answers_400_keyed_by_field(api):
    response = api.post("/api/auth/login/", {"username": 5}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_login_without_csrf_token_is_refused(user):
    client = client_for(csrf=True)
    response = client.post(
        "/api/auth/login/", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert "sessionid" not in response.cookies


def test_logout_ends_the_session(user):
    client = client_for(user, csrf=True)
    assert client.get("/api/me/").status_code == 200
    response = client.post("/api/auth/logout/", format="json", **csrf_headers(client))
    assert response.status_code == 200
    assert client.get("/api/me/").status_code == 403


def test_anonymous_logout_is_a_harmless_200(api):
    response = api.post("/api/auth/logout/", format="json")
    assert response.status_code == 200


def test_me_describes_the_signed_in_user(staff):
    response = client_for(staff).get("/api/me/")
    assert response.status_code == 200
    assert response.json() == {"id": staff.pk, "username": staff.username, "is_staff": True}


# rooms


def test_room_list_shows_public_rooms_and_the_private_rooms_one_belongs_to(
    user, other_user, staff, room, private_room
):
    assert [r["slug"] for r in client_for(user).get("/api/rooms/").json()] == ["general", "secret"]
    assert [r["slug"] for r in client_for(other_user).get("/api/rooms/").json()] == ["general"]
    assert [r["slug"] for r in client_for(staff).get("/api/rooms/").json()] == ["general", "secret"]


def test_creating_a_room_makes_the_creator_its_owner_and_member(user):
    response = client_for(user).post(
        "/api/rooms/", {"slug": "team-1", "name": "Team one", "is_private": True}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["slug"] == "team-1"
    assert body["is_private"] is True
    assert body["owner"] == {"id": user.pk, "username": user.username}
    assert body["members"] == [{"id": user.pk, "username": user.username}]
    room = Room.objects.get(slug="team-1")
    assert room.owner == user
    assert list(room.members.all()) == [user]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "Bad Slug", "name": "x"}, "slug"),
        ({"slug": "-leading-hyphen", "name": "x"}, "slug"),
        ({"slug": "a" * 51, "name": "x"}, "slug"),
        ({"slug": "fine"}, "name"),
        ({"slug": "fine", "name": "x" * 101}, "name"),
        ({"slug": "fine", "name": "x", "is_private": "perhaps"}, "is_private"),
        ({"name": "x"}, "slug"),
    ],
)
def test_creating_a_room_with_bad_fields_is_400_keyed_by_field(user, body, field):
    response = client_for(user).post("/api/rooms/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Room.objects.exists()


def test_creating_a_room_with_a_taken_slug_is_400(user, other_user, private_room):
    response = client_for(other_user).post(
        "/api/rooms/", {"slug": "secret", "name": "Mine"}, format="json"
    )
    assert response.status_code == 400
    assert "slug" in response.json()
    assert Room.objects.get(slug="secret").owner == user


def test_room_detail_shows_a_public_room_to_any_signed_in_user(other_user, room):
    response = client_for(other_user).get("/api/rooms/general/")
    assert response.status_code == 200
    assert response.json()["slug"] == "general"
    assert response.json()["topic"] == "room:general"


def test_a_private_room_is_a_404_for_an_outsider_identical_to_a_missing_one(
    other_user, private_room
):
    client = client_for(other_user)
    hidden = client.get("/api/rooms/secret/")
    missing = client.get("/api/rooms/no-such-room/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


def test_a_private_room_is_visible_to_its_members_and_to_staff(user, staff, private_room):
    assert client_for(user).get("/api/rooms/secret/").status_code == 200
    response = client_for(staff).get("/api/rooms/secret/")
    assert response.status_code == 200
    assert response.json()["members"] == [{"id": user.pk, "username": user.username}]


# members


def test_the_owner_adds_a_member(user, other_user, private_room):
    response = client_for(user).post(
        "/api/rooms/secret/members/", {"username": other_user.username}, format="json"
    )
    assert response.status_code == 201
    assert response.json() == {"id": other_user.pk, "username": other_user.username}
    assert private_room.members.filter(pk=other_user.pk).exists()
    assert client_for(other_user).get("/api/rooms/secret/").status_code == 200


def test_staff_add_a_member_to_a_room_they_do_not_own(staff, other_user, private_room):
    response = client_for(staff).post(
        "/api/rooms/secret/members/", {"username": other_user.username}, format="json"
    )
    assert response.status_code == 201
    assert private_room.members.filter(pk=other_user.pk).exists()


def test_a_non_owner_who_can_see_the_room_gets_403_adding_a_member(user, other_user, room):
    third = UserFactory()
    response = client_for(other_user).post(
        "/api/rooms/general/members/", {"username": third.username}, format="json"
    )
    assert response.status_code == 403
    assert not room.members.filter(pk=third.pk).exists()


def test_a_member_who_is_not_the_owner_gets_403_adding_a_member(user, other_user, private_room):
    private_room.members.add(other_user)
    third = UserFactory()
    response = client_for(other_user).post(
        "/api/rooms/secret/members/", {"username": third.username}, format="json"
    )
    assert response.status_code == 403
    assert not private_room.members.filter(pk=third.pk).exists()


def test_an_outsider_adding_a_member_to_a_private_room_gets_404(other_user, private_room):
    response = client_for(other_user).post(
        "/api/rooms/secret/members/", {"username": other_user.username}, format="json"
    )
    assert response.status_code == 404
    assert not private_room.members.filter(pk=other_user.pk).exists()


@pytest.mark.parametrize("body", [{"username": "nobody-here"}, {}, {"username": 7}])
def test_adding_an_unknown_or_missing_username_is_400_keyed_by_username(user, room, body):
    response = client_for(user).post("/api/rooms/general/members/", body, format="json")
    assert response.status_code == 400
    assert "username" in response.json()


def test_adding_an_inactive_user_is_400(user, other_user, room):
    other_user.is_active = False
    other_user.save()
    response = client_for(user).post(
        "/api/rooms/general/members/", {"username": other_user.username}, format="json"
    )
    assert response.status_code == 400
    assert not room.members.filter(pk=other_user.pk).exists()


# messages


def test_message_history_without_before_is_the_newest_page_oldest_first(user, room):
    post_messages(room, user, 7)
    response = client_for(user).get("/api/rooms/general/messages/?limit=3")
    assert response.status_code == 200
    body = response.json()
    assert [m["offset"] for m in body["results"]] == [5, 6, 7]
    assert [m["text"] for m in body["results"]] == ["message 5", "message 6", "message 7"]
    assert body["results"][0]["author"] == {"id": user.pk, "username": user.username}
    assert body["has_more"] is True


def test_message_history_before_an_offset_pages_backwards_to_the_start(user, room):
    post_messages(room, user, 7)
    client = client_for(user)
    page = client.get("/api/rooms/general/messages/?limit=3&before=5").json()
    assert [m["offset"] for m in page["results"]] == [2, 3, 4]
    assert page["has_more"] is True
    page = client.get("/api/rooms/general/messages/?limit=3&before=2").json()
    assert [m["offset"] for m in page["results"]] == [1]
    assert page["has_more"] is False


def test_message_history_defaults_to_50_and_clamps_the_limit_to_200(user, room):
    post_messages(room, user, 201)
    client = client_for(user)
    default = client.get("/api/rooms/general/messages/").json()
    assert len(default["results"]) == 50
    assert default["results"][-1]["offset"] == 201
    clamped = client.get("/api/rooms/general/messages/?limit=1000").json()
    assert [m["offset"] for m in clamped["results"]] == list(range(2, 202))
    assert clamped["has_more"] is True


def test_message_history_of_an_empty_room_is_empty(user, room):
    assert client_for(user).get("/api/rooms/general/messages/").json() == {
        "results": [],
        "has_more": False,
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=-3", "limit"),
        ("limit=ten", "limit"),
        ("before=abc", "before"),
        ("before=0", "before"),
        ("before=99999999999999999999999", "before"),
    ],
)
def test_message_history_with_bad_parameters_is_400_keyed_by_parameter(user, room, query, field):
    response = client_for(user).get(f"/api/rooms/general/messages/?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_an_outsider_gets_404_for_a_private_rooms_history(user, other_user, private_room):
    post_messages(private_room, user, 2)
    response = client_for(other_user).get("/api/rooms/secret/messages/")
    assert response.status_code == 404
    assert "message 1" not in response.content.decode()


def test_posting_a_message_stores_it_with_its_offset_and_broadcasts_it(
    user, room, django_capture_on_commit_callbacks
):
    post_messages(room, user, 2)
    channel = listen("room:general")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(user).post(
            "/api/rooms/general/messages/", {"text": "  hello @nobody  "}, format="json"
        )
    assert response.status_code == 201
    body = response.json()
    assert body["offset"] == 3
    assert body["text"] == "hello @nobody"
    assert body["author"] == {"id": user.pk, "username": user.username}
    assert Message.objects.get(pk=body["id"]).offset == 3
    event = received(channel)
    assert event["topic"] == "room:general"
    assert event["offset"] == 3
    assert event["data"]["kind"] == "message"
    assert event["data"]["id"] == body["id"]


def test_any_signed_in_user_may_post_in_a_public_room(other_user, room):
    response = client_for(other_user).post(
        "/api/rooms/general/messages/", {"text": "hi"}, format="json"
    )
    assert response.status_code == 201


def test_posting_a_mention_notifies_the_mentioned_user(user, other_user, room):
    client_for(user).post(
        "/api/rooms/general/messages/", {"text": f"hey @{other_user.username}"}, format="json"
    )
    notification = Notification.objects.get(user=other_user)
    assert user.username in notification.title


@pytest.mark.parametrize("text", ["", "   ", "x" * 2001, 42, None, ["a"]])
def test_posting_an_invalid_text_is_400_keyed_by_text(user, room, text):
    response = client_for(user).post("/api/rooms/general/messages/", {"text": text}, format="json")
    assert response.status_code == 400
    assert "text" in response.json()
    assert not Message.objects.exists()
    assert not Event.objects.exists()


def test_an_outsider_posting_in_a_private_room_gets_404(other_user, private_room):
    response = client_for(other_user).post(
        "/api/rooms/secret/messages/", {"text": "let me in"}, format="json"
    )
    assert response.status_code == 404
    assert not Message.objects.exists()


# notifications


def test_notifications_list_the_users_own_newest_first_with_the_unread_count(user, other_user):
    for title in ("first", "second", "third"):
        services.notification_create(user=user, title=title)
    services.notification_create(user=other_user, title="not yours")
    response = client_for(user).get("/api/notifications/?limit=2")
    assert response.status_code == 200
    body = response.json()
    assert [n["title"] for n in body["results"]] == ["third", "second"]
    assert body["results"][0]["offset"] == 3
    assert body["results"][0]["read_at"] is None
    assert body["has_more"] is True
    assert body["unread"] == 3
    older = client_for(user).get(f"/api/notifications/?before={body['results'][1]['id']}").json()
    assert [n["title"] for n in older["results"]] == ["first"]
    assert older["has_more"] is False


def test_notifications_with_a_bad_limit_are_400(user):
    response = client_for(user).get("/api/notifications/?limit=zero")
    assert response.status_code == 400
    assert "limit" in response.json()


def test_marking_notifications_read_marks_only_ones_own_and_tells_the_other_tabs(
    user, other_user, django_capture_on_commit_callbacks
):
    mine = [services.notification_create(user=user, title=t).data["id"] for t in ("a", "b")]
    theirs = services.notification_create(user=other_user, title="c").data["id"]
    channel = listen(f"user:{user.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(user).post(
            "/api/notifications/read/", {"ids": [mine[0], theirs, 999999]}, format="json"
        )
    assert response.status_code == 200
    assert response.json() == {"ids": [mine[0]]}
    assert Notification.objects.get(pk=mine[0]).read_at is not None
    assert Notification.objects.get(pk=mine[1]).read_at is None
    assert Notification.objects.get(pk=theirs).read_at is None
    event = received(channel)
    assert event["data"] == {"kind": "read", "ids": [mine[0]]}
    assert event["offset"] == 3


@pytest.mark.parametrize("body", [{}, {"ids": "1"}, {"ids": ["a"]}, {"ids": [0]}])
def test_marking_read_with_bad_ids_is_400_keyed_by_ids(user, body):
    response = client_for(user).post("/api/notifications/read/", body, format="json")
    assert response.status_code == 400
    assert "ids" in response.json()


# publish


def token_client(user) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_staff_publish_to_a_room_by_session_as_themselves(staff, room):
    response = client_for(staff).post(
        "/api/publish/", {"topic": "room:general", "data": {"text": "hello"}}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"topic": "room:general", "offset": 1}
    assert Message.objects.get(room=room).author == staff


def test_staff_publish_an_announcement_by_token_without_csrf(staff):
    response = token_client(staff).post(
        "/api/publish/", {"topic": "broadcast", "data": {"text": "maintenance at 5"}}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"topic": "broadcast", "offset": 1}
    announcement = Announcement.objects.get()
    assert announcement.text == "maintenance at 5"
    assert announcement.author == staff


def test_staff_publish_a_notification_as_the_server_with_empty_body_and_url(
    staff, user, django_capture_on_commit_callbacks
):
    channel = listen(f"user:{user.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client(staff).post(
            "/api/publish/", {"topic": f"user:{user.pk}", "data": {"title": "Hi"}}, format="json"
        )
    assert response.status_code == 200
    assert response.json() == {"topic": f"user:{user.pk}", "offset": 1}
    event = received(channel)
    assert event["data"]["kind"] == "notification"
    assert (event["data"]["title"], event["data"]["body"], event["data"]["url"]) == ("Hi", "", "")
    assert Event.objects.get(topic=f"user:{user.pk}").publisher is None


def test_a_non_staff_user_may_not_publish_by_session_or_token(user, room):
    body = {"topic": "room:general", "data": {"text": "hi"}}
    assert client_for(user).post("/api/publish/", body, format="json").status_code == 403
    assert token_client(user).post("/api/publish/", body, format="json").status_code == 403
    assert not Message.objects.exists()


def test_an_unknown_token_is_refused_with_403(room):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    response = client.post(
        "/api/publish/", {"topic": "room:general", "data": {"text": "hi"}}, format="json"
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topic": "dashboard", "data": {"connections": 1}}, "topic"),
        ({"topic": "weather:today", "data": {"text": "sunny"}}, "topic"),
        ({"topic": "room:Not A Slug", "data": {"text": "hi"}}, "topic"),
        ({"topic": "broadcast:extra", "data": {"text": "hi"}}, "topic"),
        ({"topic": 5, "data": {"text": "hi"}}, "topic"),
        ({"data": {"text": "hi"}}, "topic"),
        ({"topic": "broadcast", "data": {"text": ""}}, "data"),
        ({"topic": "broadcast", "data": {"text": "x" * 2001}}, "data"),
        ({"topic": "broadcast", "data": "hi"}, "data"),
        ({"topic": "broadcast"}, "data"),
        ({"topic": "user:1", "data": {"kind": "read", "ids": [1]}}, "data"),
        ({"topic": "user:1", "data": {"body": "no title"}}, "data"),
    ],
)
def test_publishing_a_refused_topic_or_data_is_400_keyed_by_field(staff, body, field):
    if body.get("topic") == "user:1":
        body = {**body, "topic": f"user:{staff.pk}"}
    response = client_for(staff).post("/api/publish/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Event.objects.exists()


@pytest.mark.parametrize("topic", ["room:no-such-room", "user:999999"])
def test_publishing_to_a_missing_room_or_user_is_404(staff, topic):
    data = {"text": "hi"} if topic.startswith("room:") else {"title": "hi"}
    response = client_for(staff).post(
        "/api/publish/", {"topic": topic, "data": data}, format="json"
    )
    assert response.status_code == 404
    assert not Event.objects.exists()


# connections


@pytest.fixture
def live_connection(user):
    connection_id = "conn-test-1"
    connections.LIVE[connection_id] = {
        "connection_id": connection_id,
        "user_id": user.pk,
        "username": user.username,
        "server": "test-server",
        "client": None,
        "user_agent": None,
        "connected_since": "2026-01-01T00:00:00+00:00",
        "topics": {"room:general"},
    }
    yield connection_id
    connections.LIVE.pop(connection_id, None)


def test_staff_list_live_connections(staff, user, live_connection):
    response = client_for(staff).get("/api/connections/")
    assert response.status_code == 200
    [entry] = [c for c in response.json() if c["connection_id"] == live_connection]
    assert entry["user"] == {"id": user.pk, "username": user.username}
    assert entry["server"] == "test-server"
    assert entry["topics"] == ["room:general"]
    assert entry["connected_since"].startswith("2026-01-01T00:00:00")


def test_a_non_staff_user_may_not_list_or_close_connections(user, live_connection):
    client = client_for(user)
    assert client.get("/api/connections/").status_code == 403
    assert client.delete(f"/api/connections/{live_connection}/").status_code == 403
    assert live_connection in connections.LIVE


def test_staff_close_a_live_connection_with_204(staff, live_connection):
    response = client_for(staff).delete(f"/api/connections/{live_connection}/")
    assert response.status_code == 204


def test_closing_an_unknown_connection_is_404(staff):
    response = client_for(staff).delete("/api/connections/no-such-connection/")
    assert response.status_code == 404
