"""
The cached session engine (realtime/gateway/session_store.py): a handshake
reads its session from the cache, and no cached copy ever signs in a session
that ended.
"""

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client as HttpClient

from realtime.gateway.session_store import SessionStore
from realtime.gateway.sessions import user_of_session
from realtime.gateway.testing import HOST, ORIGIN, PATH
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(user) -> tuple[HttpClient, str]:
    browser = HttpClient()
    assert browser.login(username=user.username, password=PASSWORD)
    return browser, browser.cookies["sessionid"].value


def test_a_read_session_is_served_from_the_cache(user, django_assert_num_queries):
    _, key = signed_in(user)
    assert user_of_session(SessionStore(key)) == user
    # Only the user's own row is read: the session comes from the cache.
    with django_assert_num_queries(1):
        assert user_of_session(SessionStore(key)) == user


def test_a_logout_takes_the_session_out_of_the_cache(user):
    browser, key = signed_in(user)
    assert user_of_session(SessionStore(key)) == user  # cached now
    browser.post("/api/auth/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    assert not user_of_session(SessionStore(key)).is_authenticated


async def test_a_handshake_after_a_logout_is_anonymous_though_the_session_was_cached(user):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.conf import settings
    from django.utils.module_loading import import_string

    browser, key = await sync_to_async(signed_in)(user)
    headers = [(b"host", HOST), (b"origin", ORIGIN), (b"cookie", f"sessionid={key}".encode())]
    application = import_string(settings.ASGI_APPLICATION)

    async def welcome_user():
        socket_ = WebsocketCommunicator(application, PATH, headers=headers)
        connected, _ = await socket_.connect()
        assert connected
        frame = await socket_.receive_json_from(timeout=5)
        await socket_.disconnect()
        return frame["user"]

    assert (await welcome_user())["id"] == user.pk
    await sync_to_async(browser.post)("/api/auth/logout/")
    assert await welcome_user() is None


def test_an_unreachable_cache_is_read_around(user, monkeypatch):
    _, key = signed_in(user)

    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    store = SessionStore(key)
    monkeypatch.setattr(store._cache, "get", unreachable)
    monkeypatch.setattr(store._cache, "set", unreachable)
    assert store.load()[SESSION_KEY] == str(user.pk)


def test_a_logout_that_cannot_reach_the_cache_fails_and_leaves_nothing_stale(user, monkeypatch):
    _, key = signed_in(user)
    assert user_of_session(SessionStore(key)) == user  # cached now
    store = SessionStore(key)

    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(store._cache, "delete", unreachable)
    with pytest.raises(ConnectionError):
        store.delete()
    # Neither copy was dropped: the session is still what both say it is, and
    # a retried logout ends it in both.
    assert Session.objects.filter(session_key=key).exists()
    assert cache.get(SessionStore.cache_key_prefix + key) is not None
    monkeypatch.undo()
    SessionStore(key).delete()
    assert not user_of_session(SessionStore(key)).is_authenticated


def test_one_process_without_redis_keeps_the_sessions_of_thousands_of_users():
    """Django's default of 300 entries would send every handshake past 300 users to the database."""
    from django.core.cache.backends.locmem import LocMemCache

    from config.settings import LOCAL_MEMORY_CACHE

    local = LocMemCache("sessions-of-one-process", LOCAL_MEMORY_CACHE)
    keys = [f"django.contrib.sessions.cached_db{number:05d}" for number in range(5_000)]
    for key in keys:
        local.set(key, {SESSION_KEY: key}, 3600)
    assert all(local.get(key) is not None for key in keys)
    local.clear()
