"""Whether the session behind a socket still signs its user in (PROTOCOL.md, close 4401)."""

from datetime import datetime
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user


def session_store(session_key: str):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def session_still_valid(*, session_key: str | None, user_id: int) -> bool:
    """Whether the session still signs in this user (not logged out, expired, or stale)."""
    if not session_key:
        return False
    user = get_user(SimpleNamespace(session=session_store(session_key)))
    return user.is_authenticated and user.pk == user_id


def session_expires_at(*, session_key: str | None) -> datetime | None:
    if not session_key:
        return None
    return session_store(session_key).get_expiry_date()
