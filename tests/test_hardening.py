"""
What a hostile or careless client gets: a clear answer and an unharmed server.
Each test here failed before its fix.
"""

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from rest_framework.test import APIClient

from realtime.gateway.testing import communicator_for, connect
from tests.test_settings import run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('{"type": "subscribe", "topic": "\\ud800", "ref": "s"}', "unknown_topic"),
        ('{"type": "ping", "ref": "\\ud800"}', "bad_message"),
        (
            '{"type": "publish", "topic": "room:general", "ref": "p", "id": "\\udfff", "data": {}}',
            "bad_message",
        ),
    ],
)
async def test_lone_surrogates_get_an_error_and_the_socket_stays_open(user, room, text, code):
    client = await connect(user)
    await client.send_text(text)
    error = await client.receive()
    assert (error["type"], error["code"]) == ("error", code)
    assert "topic" not in error or error["topic"] == "room:general"  # never the bad text
    assert await client.request({"type": "ping", "ref": "ok"}) == {"type": "pong", "ref": "ok"}
    await client.close()


async def test_a_message_text_with_a_lone_surrogate_is_invalid(user, room):
    client = await connect(user)
    await client.send_text(
        '{"type": "publish", "topic": "room:general", "ref": "p", "data": {"text": "a\\ud800"}}'
    )
    error = await client.receive()
    assert (error["code"], error["ref"]) == ("invalid", "p")
    await client.close()


def test_a_rest_body_nested_too_deep_is_a_400_even_anonymously():
    client = APIClient()
    body = "[" * 50_000 + "]" * 50_000
    response = client.post("/api/auth/login/", body, content_type="application/json")
    assert response.status_code in (400, 403), response.status_code
    api = APIClient(enforce_csrf_checks=False)
    response = api.generic("POST", "/api/auth/login/", body, content_type="application/json")
    assert response.status_code != 500


def test_healthz_tells_anonymous_callers_nothing_about_the_infrastructure(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"] == "error"
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.parametrize(
    "key",
    [
        "change-me-to-a-long-random-string",
        "short-but-not-a-placeholder",
        "a" * 60,
        "django-insecure-" + "x1y2z3" * 10,
    ],
)
def test_production_refuses_placeholder_and_weak_secret_keys(key):
    done = run(["manage.py", "check"], DJANGO_DEBUG="0", DJANGO_SECRET_KEY=key)
    assert done.returncode != 0
    assert "DJANGO_SECRET_KEY" in done.stderr


def test_a_signed_in_visit_to_login_with_next_login_goes_home(user):
    client = Client()
    client.force_login(user)
    response = client.get("/login/?next=/login/")
    assert response.status_code == 302
    assert response["Location"] == "/"


async def test_a_rotated_secret_key_keeps_websocket_users_signed_in(settings, user):
    communicator = await communicator_for(user)  # its session signed with the old key
    cookie = dict(communicator.scope["headers"])[b"cookie"].decode()
    key = cookie.split("=", 1)[1]
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret-key-" + "n" * 40
    connected, _ = await communicator.connect()
    assert connected
    welcome = await communicator.receive_json_from()
    assert welcome["user"] == {"id": user.pk, "username": user.username}
    await communicator.disconnect()
    # And the session is still good for Django's own views.
    from django.contrib.sessions.models import Session

    assert await sync_to_async(Session.objects.filter(session_key=key).exists)()
