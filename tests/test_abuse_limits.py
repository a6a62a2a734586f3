"""
Abuse limits (PROTOCOL.md): sign-in lockout, write throttles with
`Retry-After`, the same refusal in words on the site's forms, the mention cap.
"""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from realtime.chat.models import Notification
from realtime.chat.services import message_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def api_login(client: APIClient, username: str, password: str):
    return client.post(
        "/api/auth/login/", {"username": username, "password": password}, format="json"
    )


@pytest.fixture
def limits(settings):
    settings.REALTIME = {**settings.REALTIME, "LOGIN_FAILURES": 3, "REST_WRITE_RATE": "4/minute"}


def test_a_username_is_locked_after_its_failures_right_password_included(limits):
    user = UserFactory(password="right-password-1")
    client = APIClient()
    for _ in range(3):
        assert api_login(client, user.username, "wrong").status_code == 400
    refused = api_login(client, user.username, "right-password-1")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    # The same answer for a username that does not exist.
    for _ in range(3):
        api_login(client, "nobody-at-all", "wrong")
    unknown = api_login(client, "nobody-at-all", "whatever")
    assert unknown.status_code == 429
    assert unknown.json() == refused.json()


def test_one_address_is_locked_after_four_times_the_failures(limits):
    client = APIClient()
    for n in range(12):
        api_login(client, f"guess-{n}", "wrong")
    user = UserFactory(password="right-password-1")
    assert api_login(client, user.username, "right-password-1").status_code == 429


def test_the_sign_in_page_says_it_in_words_with_429(limits):
    user = UserFactory(password="right-password-1")
    client = Client()
    for _ in range(3):
        client.post("/login/", {"username": user.username, "password": "wrong"})
    page = client.post("/login/", {"username": user.username, "password": "right-password-1"})
    assert page.status_code == 429
    assert int(page["Retry-After"]) > 0
    assert "Too many failed sign-ins" in page.content.decode()
    assert "_auth_user_id" not in client.session


def test_rest_writes_are_throttled_per_user_with_retry_after(limits, room, user, other_user):
    client = APIClient()
    client.force_authenticate(user)
    for n in range(4):
        response = client.post("/api/rooms/general/messages/", {"text": f"m{n}"}, format="json")
        assert response.status_code == 201
    refused = client.post("/api/rooms/general/messages/", {"text": "one more"}, format="json")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    # Reads are not writes; another user has their own budget.
    assert client.get("/api/rooms/general/messages/").status_code == 200
    other = APIClient()
    other.force_authenticate(other_user)
    response = other.post("/api/rooms/general/messages/", {"text": "mine"}, format="json")
    assert response.status_code == 201


def test_staff_publishing_through_the_api_is_not_throttled(limits, staff, room):
    client = APIClient()
    client.force_authenticate(staff)
    for n in range(8):
        response = client.post(
            "/api/publish/", {"topic": "broadcast", "data": {"text": f"a{n}"}}, format="json"
        )
        assert response.status_code == 200


def test_forms_share_the_budget_and_say_it_in_words(limits, user):
    client = Client()
    client.force_login(user)
    for n in range(4):
        client.post("/", {"slug": f"room-{n}", "name": f"Room {n}"})
    page = client.post("/", {"slug": "room-x", "name": "Room x"})
    assert page.status_code == 429
    assert int(page["Retry-After"]) > 0
    assert "too fast" in page.content.decode()


def test_anonymous_sign_ups_are_throttled_per_address(limits):
    client = Client()
    for n in range(4):
        client.post(
            "/signup/",
            {"username": f"new{n}", "password1": "pw-long-enough-1", "password2": "x"},
        )
    page = client.post("/signup/", {"username": "new9", "password1": "a", "password2": "a"})
    assert page.status_code == 429


def test_a_message_notifies_at_most_ten_mentioned_users(room, user):
    named = [UserFactory() for _ in range(14)]
    text = " ".join(f"@{u.username}" for u in named)
    message_create(room=room, author=user, text=text)
    notified = set(Notification.objects.values_list("user__username", flat=True))
    assert notified == {u.username for u in named[:10]}


def test_with_the_cache_down_writes_and_sign_ins_still_work(settings, room, user):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    client = APIClient()
    client.force_authenticate(user)
    response = client.post("/api/rooms/general/messages/", {"text": "still"}, format="json")
    assert response.status_code == 201
    user.set_password("right-password-1")
    user.save()
    assert api_login(APIClient(), user.username, "right-password-1").status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_a_session_naming_the_first_backend_signs_in_over_http_and_websockets(user):
    """Tools that write sessions take AUTHENTICATION_BACKENDS[0]: the lockout backend."""
    from asgiref.sync import sync_to_async
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    from realtime.gateway.sessions import session_store

    def make_session():
        session = session_store(None)
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        return session.session_key

    key = await sync_to_async(make_session)()
    http = Client()
    http.cookies[settings.SESSION_COOKIE_NAME] = key
    response = await sync_to_async(http.get)("/api/me/")
    assert response.status_code == 200
    from realtime.gateway.testing import communicator_for

    communicator = await communicator_for()
    communicator.scope["headers"].append(
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode())
    )
    connected, _ = await communicator.connect()
    assert connected
    welcome = await communicator.receive_json_from()
    assert welcome["user"]["id"] == user.pk
    await communicator.disconnect()
