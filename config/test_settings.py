"""
The test suite's settings (pytest-django's DJANGO_SETTINGS_MODULE): the real
settings, with DEBUG off as in production, plus what only a test run wants: a
key of its own, a fast password hasher, database connections closed after each
use (so the test database can be dropped at the end), and static files served
from the app folders without a `collectstatic` manifest.
"""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-suite-only-secret-key-" + "t" * 40)
# Metrics of this test run apart from a running server's.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="realtime-test-metrics-")

from config.settings import *  # noqa: F403
from config.settings import DATABASES, STORAGES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASES["default"]["CONN_MAX_AGE"] = 0
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# In-process tests count throttles and lockouts in memory (each test clears it);
# server processes started by the tests use the real settings (Redis with REDIS_URL).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
