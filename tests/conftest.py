"""Common fixtures, and the rule for tests that need a real service."""

import os
import shutil

import pytest
from django.conf import settings

from tests.factories import RoomFactory, StaffFactory, UserFactory

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
CHROMIUM = "/usr/bin/chromium"


def need_service(available: bool, reason: str) -> None:
    """Skip with `reason` when a service is missing, or fail under REQUIRE_SERVICES=1."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def postgres_available() -> bool:
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "")


@pytest.fixture
def require_postgres():
    need_service(
        postgres_available(), "PostgreSQL not configured (set DATABASE_URL=postgres://...)"
    )


@pytest.fixture
def require_redis():
    need_service(bool(redis_url()), "Redis not configured (set REDIS_URL=redis://...)")
    return redis_url()


@pytest.fixture
def require_chromium():
    need_service(shutil.which(CHROMIUM) is not None, f"Chromium not installed at {CHROMIUM}")
    return CHROMIUM


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings):
    """Unit and consumer tests run on the in-process layer; Redis tests pick Redis explicitly."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 10_000},
        }
    }
    settings.REALTIME = {
        **settings.REALTIME,
        "REGISTRY_BACKEND": "realtime.gateway.registry.LocalRegistry",
        "PRESENCE_BACKEND": "realtime.gateway.presence.LocalPresence",
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def fresh_cache():
    """Throttle and lockout counts start at zero in every test."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def redis_prefix(require_redis):
    """A key prefix of this test's own on the real Redis; its keys are removed afterwards."""
    import uuid

    import redis

    prefix = f"rt-test-{uuid.uuid4().hex[:8]}:"
    yield prefix
    connection = redis.Redis.from_url(require_redis)
    for stale in connection.scan_iter(f"{prefix}*"):
        connection.delete(stale)
    connection.close()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def staff(db):
    return StaffFactory()


@pytest.fixture
def room(db, user):
    return RoomFactory(slug="general", owner=user)


@pytest.fixture
def private_room(db, user):
    return RoomFactory(slug="secret", owner=user, is_private=True)


@pytest.fixture(scope="session")
def live_database(tmp_path_factory):
    """A migrated database for real server processes (PostgreSQL when configured)."""
    from tests.live import LiveDatabase

    url = os.environ.get("DATABASE_URL", "")
    database = LiveDatabase(
        tmp_path_factory.mktemp("live"), url if url.startswith("postgres") else None
    )
    yield database
    database.drop()


@pytest.fixture
def daphne_server(live_database):
    """One daphne process (`manage.py serve`) on the in-process channel layer."""
    from tests.live import LiveServer

    server = LiveServer(live_database).start()
    yield server
    server.stop()


@pytest.fixture
def redis_cluster(live_database, require_redis, redis_prefix):
    """Two daphne processes sharing PostgreSQL (when configured) and Redis."""
    from tests.live import LiveServer

    # Dead processes are reaped within 12 + 4 s here (30 + 10 s by default).
    env = {"REALTIME_REDIS_PREFIX": redis_prefix, "REALTIME_ALIVE_SECONDS": "12"}
    servers = [LiveServer(live_database, redis_url=require_redis, **env) for _ in range(2)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of this test's own (stopped and restarted by the test)."""
    from tests.live import RedisServer

    need_service(shutil.which("redis-server") is not None, "redis-server not installed")
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()
