"""Settings from the environment, checked in fresh processes (the suite runs on test settings)."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
STRIPPED = ("PYTEST", "DJANGO_", "DATABASE_URL", "REDIS_URL")


def run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """Run a Python command in the project with only the given settings variables set."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED)}
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_of(**env: str) -> dict:
    script = (
        "import json; from django.conf import settings; "
        "print(json.dumps({'db': settings.DATABASES['default'], "
        "'layer': settings.CHANNEL_LAYERS['default'], 'debug': settings.DEBUG, "
        "'hosts': settings.ALLOWED_HOSTS}, default=str))"
    )
    done = run(["-c", script], DJANGO_SETTINGS_MODULE="config.settings", **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def secret_key() -> str:
    return secrets.token_urlsafe(50)


def test_production_refuses_to_start_without_a_secret_key():
    done = run(["manage.py", "check"], DJANGO_DEBUG="0")
    assert done.returncode != 0
    assert "DJANGO_SECRET_KEY" in done.stderr
    assert "ImproperlyConfigured" in done.stderr


def test_production_refuses_the_development_key_too():
    from config.settings import DEVELOPMENT_SECRET_KEY

    done = run(["manage.py", "check"], DJANGO_DEBUG="0", DJANGO_SECRET_KEY=DEVELOPMENT_SECRET_KEY)
    assert done.returncode != 0
    assert "DJANGO_SECRET_KEY" in done.stderr


def test_production_over_plain_http_starts_with_a_real_key():
    done = run(["manage.py", "check"], DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secret_key())
    assert done.returncode == 0, done.stderr
    assert "no issues" in done.stdout


def test_the_deploy_check_is_clean_behind_https():
    done = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secret_key(),
        DJANGO_HTTPS="1",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues (0 silenced)" in done.stdout


def test_the_deploy_check_does_complain_without_https():
    done = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secret_key(),
    )
    assert done.returncode != 0
    assert "SECURE_SSL_REDIRECT" in done.stdout + done.stderr


def test_the_embedded_defaults_are_sqlite_and_the_in_process_layer():
    found = settings_of(DJANGO_DEBUG="1")
    assert found["db"]["ENGINE"] == "django.db.backends.sqlite3"
    assert found["db"]["NAME"].endswith("db.sqlite3")
    assert found["layer"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    assert found["debug"] is True
    assert found["hosts"] == ["localhost", "127.0.0.1"]


def test_database_url_switches_the_database():
    found = settings_of(DJANGO_DEBUG="1", DATABASE_URL="postgres://app:pw@db.example:5433/realtime")
    assert found["db"]["ENGINE"] == "django.db.backends.postgresql"
    assert (found["db"]["HOST"], found["db"]["PORT"], found["db"]["NAME"]) == (
        "db.example",
        5433,
        "realtime",
    )
    assert found["db"]["USER"] == "app"


def test_redis_url_switches_the_channel_layer_to_redis():
    found = settings_of(DJANGO_DEBUG="1", REDIS_URL="redis://cache.example:6380/2")
    assert found["layer"]["BACKEND"].startswith("channels_redis.")
    assert "redis://cache.example:6380/2" in json.dumps(found["layer"]["CONFIG"])


def test_django_https_accepts_the_documented_spellings_and_nothing_else():
    script = (
        "import json, os, runpy; found = {}\n"
        "for value in ['1', 'true', 'yes', 'on', 'TRUE', '0', 'off', '']:\n"
        "    os.environ['DJANGO_HTTPS'] = value\n"
        "    s = runpy.run_path('config/settings.py')\n"
        "    found[value] = [s.get('SESSION_COOKIE_SECURE', False), "
        "s.get('SECURE_SSL_REDIRECT', False)]\n"
        "print(json.dumps(found))"
    )
    done = run(["-c", script], DJANGO_DEBUG="1")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert {value for value, on in found.items() if on == [True, True]} == {
        "1",
        "true",
        "yes",
        "on",
        "TRUE",
    }
    assert found["0"] == found["off"] == found[""] == [False, False]


def test_allowed_hosts_come_from_the_environment():
    found = settings_of(DJANGO_DEBUG="1", DJANGO_ALLOWED_HOSTS="chat.example.com,.example.org")
    assert found["hosts"] == ["chat.example.com", ".example.org"]
