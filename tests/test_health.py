"""GET /healthz: 200 when the database and the channel layer answer, 503 naming what failed."""

import json
import os
import subprocess
import sys

import pytest
from channels.layers import channel_layers
from django.conf import settings


def test_healthz_is_200_when_the_database_and_channel_layer_answer(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "channel_layer": "ok"},
    }


@pytest.mark.parametrize(
    "backend",
    ["channels_redis.pubsub.RedisPubSubChannelLayer", "channels_redis.core.RedisChannelLayer"],
)
def test_healthz_is_503_naming_the_channel_layer_when_redis_is_unreachable(
    client, db, settings, backend
):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": backend, "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    channel_layers.backends.clear()
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["channel_layer"] == "error"


def test_healthz_is_503_naming_the_database_when_it_is_unreachable():
    # A fresh process whose DATABASE_URL points at a port where no PostgreSQL listens.
    script = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/healthz'); print(json.dumps([r.status_code, r.json()]))"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "REDIS_URL"))},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "1",
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": "postgres://nobody:nothing@127.0.0.1:1/nowhere",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    status, body = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == 503
    assert body["checks"]["database"] == "error"
    assert body["checks"]["channel_layer"] == "ok"
