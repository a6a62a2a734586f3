"""
Who a socket's session signs in, and whether it still does (PROTOCOL.md, close
4401). Read-only: unlike Django's `get_user` (which cycles or flushes the
session it checks) and Channels' (which flushes it, and ignores
SECRET_KEY_FALLBACKS), checking a socket's session never changes the session
the person's browser uses over HTTP.
"""

from datetime import datetime

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
)
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils.crypto import constant_time_compare


def session_store(session_key: str | None):
    """The session as the database has it: the record, never a cached copy."""
    return DatabaseSessionStore(session_key)


def user_of_session(session):
    """The user `session` signs in (its hash checked with the current and fallback keys)."""
    try:
        user_id = session[SESSION_KEY]
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return AnonymousUser()
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return AnonymousUser()
    backend = load_backend(backend_path)
    if not hasattr(backend, "get_user"):
        return AnonymousUser()
    user = backend.get_user(get_user_model()._meta.pk.to_python(user_id))
    if user is None:
        return AnonymousUser()
    if hasattr(user, "get_session_auth_hash"):
        session_hash = session.get(HASH_SESSION_KEY)
        hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
        if not session_hash or not any(constant_time_compare(session_hash, h) for h in hashes):
            return AnonymousUser()
    return user


def session_still_valid(*, session_key: str | None, user_id: int) -> bool:
    """Whether the session still signs in this user (not logged out, expired, or stale)."""
    if not session_key:
        return False
    user = user_of_session(session_store(session_key))
    return user.is_authenticated and user.pk == user_id


def session_expires_at(*, session_key: str | None) -> datetime | None:
    if not session_key:
        return None
    return session_store(session_key).get_expiry_date()
