"""
How the gateway picks its parts, once: a backend named by a dotted-path
setting (as Django's `SESSION_ENGINE`), and one object per event loop.

A backend is built the first time it is asked for and kept until the setting
changes (tests switch `REALTIME` with pytest-django's `settings` fixture).
"""

import asyncio
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string


@cache
def backend(name: str):
    """The instance of the class that `settings.REALTIME[name]` names (built once)."""
    return import_string(settings.REALTIME[name])()


class PerLoop[T]:
    """One `T` per running event loop (daphne has one loop; each async test its own)."""

    def __init__(self, factory: Callable[[], T]):
        self.factory = factory
        self.objects: dict[asyncio.AbstractEventLoop, T] = {}

    def get(self) -> T:
        """The running loop's object, made on first use."""
        loop = asyncio.get_running_loop()
        found = self.objects.get(loop)
        if found is None:
            for stale in [other for other in self.objects if other.is_closed()]:
                del self.objects[stale]
            found = self.objects[loop] = self.factory()
        return found

    def peek(self) -> T | None:
        """The running loop's object if it has one (without making one)."""
        return self.objects.get(asyncio.get_running_loop())


@receiver(setting_changed)
def forget_backends(*, setting, **kwargs):
    if setting in ("REALTIME", "REDIS_URL", "REDIS_SENTINELS"):
        backend.cache_clear()
