"""
Sign-in lockout (PROTOCOL.md, abuse limits): after REALTIME_LOGIN_FAILURES
failed sign-ins for one username within 15 minutes, or four times that many
from one client address, further attempts for it are refused for 15 minutes,
the right password included. A refusal says nothing about whether the
username exists. Counts live in Django's cache (Redis when REDIS_URL is set,
so every process shares them).

The refusal happens in an authentication backend placed first, so every path
that calls `authenticate()` (the sign-in page, `POST /api/auth/login/`, the
admin's login) is covered; the views turn it into 429 with `Retry-After`.
"""

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver

from realtime.gateway import outages

WINDOW_SECONDS = 15 * 60
LOCK_SECONDS = 15 * 60
ADDRESS_FACTOR = 4


def client_address(request) -> str:
    return (getattr(request, "META", {}) or {}).get("REMOTE_ADDR", "") if request else ""


def subjects(username: str | None, address: str) -> list[tuple[str, int]]:
    """(cache key stem, failure limit) for the username and for the address."""
    limit = settings.REALTIME["LOGIN_FAILURES"]
    found = [(f"lockout:addr:{address}", limit * ADDRESS_FACTOR)] if address else []
    if username:
        found.append((f"lockout:user:{username.lower()}", limit))
    return found


def locked_for(username: str | None, address: str) -> int:
    """Seconds until sign-in is allowed again for this username or address (0: now)."""
    try:
        keys = [f"{stem}:locked" for stem, _ in subjects(username, address)]
        locked = any(cache.get_many(keys).values())
    except Exception as exc:
        outages.cache.failed(exc)  # the cache (Redis) is down: sign-in stays possible
        return 0
    return LOCK_SECONDS if locked else 0


def failure_record(username: str | None, address: str) -> None:
    try:
        failures_add(username, address)
    except Exception as exc:
        outages.cache.failed(exc)


def failures_add(username: str | None, address: str) -> None:
    for stem, limit in subjects(username, address):
        key = f"{stem}:failures"
        cache.add(key, 0, WINDOW_SECONDS)
        try:
            failures = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, failures := 1, WINDOW_SECONDS)
        if failures >= limit:
            cache.set(f"{stem}:locked", 1, LOCK_SECONDS)


class LockoutBackend:
    """First in AUTHENTICATION_BACKENDS: refuses every attempt while locked out."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        wait = locked_for(username, client_address(request))
        if wait:
            if request is not None:
                request.sign_in_locked_for = wait
            raise PermissionDenied("Too many failed sign-ins.")
        return None  # let the next backend check the password

    def get_user(self, user_id):
        # A session may name this backend (Django's test client and tools that
        # write sessions take the first backend): the user is ModelBackend's.
        return ModelBackend().get_user(user_id)


@receiver(user_login_failed)
def count_failed_sign_in(sender, credentials, request=None, **kwargs):
    if request is not None and getattr(request, "sign_in_locked_for", 0):
        return  # refused while locked: not a new failure
    failure_record(credentials.get("username"), client_address(request))
