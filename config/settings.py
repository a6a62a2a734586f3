"""
Settings for the realtime platform, read from the environment.

Every variable is documented in README.md (Configuration) and
docs/PROTOCOL.md. The embedded defaults run one process on SQLite and the
in-process channel layer; DATABASE_URL and REDIS_URL switch to PostgreSQL and
Redis.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

DEVELOPMENT_SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"

# GENERAL
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/ref/settings/#debug
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# https://docs.djangoproject.com/en/stable/ref/settings/#secret-key
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
# Placeholders that documentation and examples show; never a production key.
PLACEHOLDER_SECRET_KEYS = {DEVELOPMENT_SECRET_KEY, "change-me-to-a-long-random-string"}
if not DEBUG and (
    SECRET_KEY in PLACEHOLDER_SECRET_KEYS
    or len(SECRET_KEY) < 50
    or len(set(SECRET_KEY)) < 5
    or SECRET_KEY.startswith("django-insecure-")
):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is unset, a placeholder, or too weak (fewer than 50 "
        "characters) while DJANGO_DEBUG is off. Set DJANGO_SECRET_KEY to a long random "
        "string, e.g. the output of: "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
# https://docs.djangoproject.com/en/stable/ref/settings/#allowed-hosts
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
# https://docs.djangoproject.com/en/stable/ref/settings/#time-zone
TIME_ZONE = "UTC"
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = False
# https://docs.djangoproject.com/en/stable/ref/settings/#default-auto-field
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
# https://channels.readthedocs.io/en/stable/installation.html
ASGI_APPLICATION = "config.asgi.application"

# DATABASES
# ------------------------------------------------------------------------------
# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections: the gateway's database threads (REALTIME_DATABASE_WORKERS)
# each keep one, and a new PostgreSQL connection per request costs more than the query.
# https://docs.djangoproject.com/en/stable/ref/databases/#persistent-connections
# (config/test_settings.py closes each one, so the test database can be dropped.)
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable database fails a request within seconds (PROTOCOL.md
    # `unavailable`), not after the operating system's TCP timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
    # DATABASE_POOL=1: Django's PostgreSQL connection pool (psycopg_pool) instead
    # of a persistent connection per thread; it requires CONN_MAX_AGE = 0.
    # Measured against the default in docs/performance.md ("Connection pool").
    if env.bool("DATABASE_POOL", default=False):
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": 2,
            "max_size": env.int("DATABASE_POOL_SIZE", default=8),
            # As connect_timeout: an outage is answered `unavailable` within seconds.
            "timeout": 3,
        }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the server, `manage.py` and tests share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )

# CHANNEL LAYER
# ------------------------------------------------------------------------------
# https://channels.readthedocs.io/en/stable/topics/channel_layers.html
REDIS_URL = env.str("REDIS_URL", default="")
# Redis Sentinel instead of one address: REDIS_SENTINELS=host:26379,host2:26379
# https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/
REDIS_SENTINELS = [
    (host, int(port))
    for host, _, port in (item.rpartition(":") for item in env.list("REDIS_SENTINELS", default=[]))
]
REDIS_SENTINEL_MASTER = env.str("REDIS_SENTINEL_MASTER", default="mymaster")
REDIS_ENABLED = bool(REDIS_URL or REDIS_SENTINELS)
# core (channels_redis.core.RedisChannelLayer) or pubsub (the default, by measurement).
REDIS_CHANNEL_LAYER = env.str("REDIS_CHANNEL_LAYER", default="pubsub")
REDIS_PREFIX = env.str("REALTIME_REDIS_PREFIX", default="rt:")
# socket_timeout above the core layer's 5 s blocking pop: with redis-py's 5 s
# default, idle consumers were closed with 1011 every 5 s (docs/performance.md).
REDIS_HOST = (
    {"master_name": REDIS_SENTINEL_MASTER, "sentinels": REDIS_SENTINELS}
    if REDIS_SENTINELS
    else {"address": REDIS_URL}
) | {"socket_timeout": 15, "socket_connect_timeout": 5, "health_check_interval": 10}
if REDIS_ENABLED and REDIS_CHANNEL_LAYER == "core":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # A large pool: at 100, group_discard failed in disconnect storms.
                "hosts": [REDIS_HOST | {"max_connections": 1000}],
                "capacity": 10_000,
                "prefix": REDIS_PREFIX + "asgi",
            },
        }
    }
elif REDIS_ENABLED:
    # The pub/sub layer, chosen by measurement (docs/performance.md): one PUBLISH
    # per group message, and its sockets survive a Redis restart.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_HOST], "prefix": REDIS_PREFIX + "asgi"},
        }
    }
else:
    # One process: each socket's events come through the process's one hub
    # channel, so its queue must hold a burst of events.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 10_000},
        }
    }

# CACHE (sign-in lockout and REST throttles: shared by every process with Redis)
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/topics/cache/
# One process without Redis: the cache in its memory. It holds the sessions of
# every signed-in user (their handshakes read them from it), login and rate
# counters: Django's default of 300 entries would drop them past 300 users.
LOCAL_MEMORY_CACHE = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "OPTIONS": {"MAX_ENTRIES": env.int("LOCAL_CACHE_ENTRIES", default=100_000)},
}
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX + "cache",
        }
    }
else:
    CACHES = {"default": LOCAL_MEMORY_CACHE}

# APPS
# ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "realtime",
]

# AUTHENTICATION
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/topics/auth/customizing/#substituting-a-custom-user-model
AUTH_USER_MODEL = "realtime.User"
# The sign-in lockout first: it refuses attempts while a username or address is locked.
AUTHENTICATION_BACKENDS = [
    "realtime.chat.lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "rooms"
LOGOUT_REDIRECT_URL = "login"
# https://docs.djangoproject.com/en/stable/ref/settings/#auth-password-validators
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# MIDDLEWARE
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/topics/http/middleware/
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
]

# STATIC
# ------------------------------------------------------------------------------
# https://whitenoise.readthedocs.io/en/stable/django.html
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Serve from the finders when collectstatic has not run (development, tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# TEMPLATES
# ------------------------------------------------------------------------------
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    }
]

# SECURITY
# ------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/stable/ref/settings/#session-cookie-httponly
# Cached sessions (the database is the record): a WebSocket handshake reads its
# session at memory speed; an ended session never survives in the cache
# (realtime/gateway/session_store.py).
SESSION_ENGINE = "realtime.gateway.session_store"
SESSION_COOKIE_HTTPONLY = True
# Lax: sent on top-level navigation, never on cross-site subrequests.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# The CSRF cookie is read by our own JavaScript for the REST calls.
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# https://docs.djangoproject.com/en/stable/ref/csp/
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

# HTTPS behind a TLS-terminating proxy: DJANGO_HTTPS=1.
HTTPS = env.bool("DJANGO_HTTPS", default=False)
if HTTPS:
    # https://docs.djangoproject.com/en/stable/ref/settings/#secure-proxy-ssl-header
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # https://docs.djangoproject.com/en/stable/ref/middleware/#http-strict-transport-security
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = [f"https://{host.lstrip('.')}" for host in ALLOWED_HOSTS if host != "*"]
    # /healthz is probed over plain HTTP by load balancers.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# REST FRAMEWORK
# ------------------------------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["realtime.chat.api.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # The gateway's refusals and model validation as REST answers, in one place.
    "EXCEPTION_HANDLER": "realtime.chat.api.exceptions.realtime_exception_handler",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )
# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "Realtime platform API",
    "DESCRIPTION": "The REST half of the realtime protocol (docs/PROTOCOL.md in the "
    "repository); the WebSocket half is /ws/.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# METRICS (Prometheus, multiprocess mode: docs/operations.md)
# ------------------------------------------------------------------------------
# https://prometheus.github.io/client_python/multiprocess/
# Every process of a machine writes its samples here; empty it when the service
# (all its processes) starts. Set before prometheus_client is imported.
METRICS_DIR = Path(env.str("PROMETHEUS_MULTIPROC_DIR", default=str(BASE_DIR / "var" / "metrics")))
METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)

# LOGS: plain text by default; LOG_FORMAT=json for one JSON object per line.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")

# REALTIME (the gateway; PROTOCOL.md defaults)
# ------------------------------------------------------------------------------
REALTIME = {
    # Token bucket per connection: burst and sustained frames per second.
    "RATE_BURST": env.int("REALTIME_RATE_BURST", default=30),
    "RATE_PER_SECOND": env.float("REALTIME_RATE_PER_SECOND", default=15.0),
    # Close with 4429 once this many frames were dropped within the window.
    "FLOOD_DROPS": 100,
    "FLOOD_WINDOW_SECONDS": 10.0,
    "MAX_FRAME_BYTES": 65536,
    "MAX_SUBSCRIPTIONS": env.int("REALTIME_MAX_SUBSCRIPTIONS", default=100),
    # Open sockets per signed-in user and per anonymous client address, across
    # every process (close 4029 beyond).
    "MAX_CONNECTIONS_PER_USER": env.int("REALTIME_MAX_CONNECTIONS_PER_USER", default=50),
    "MAX_ANONYMOUS_PER_ADDRESS": env.int("REALTIME_MAX_ANONYMOUS_PER_ADDRESS", default=200),
    "HEARTBEAT_SECONDS": env.int("REALTIME_HEARTBEAT_SECONDS", default=25),
    # `manage.py serve`: a WebSocket ping after this much silence, and the socket
    # dropped when it goes unanswered this long. A client whose network died
    # leaves presence within their sum (20 s, plus up to 2 s of daphne's checks).
    "PING_INTERVAL_SECONDS": env.int("REALTIME_PING_INTERVAL_SECONDS", default=10),
    "PING_TIMEOUT_SECONDS": env.int("REALTIME_PING_TIMEOUT_SECONDS", default=10),
    # History kept at least this long and at least this many events per topic.
    "RETAIN_EVENTS": env.int("REALTIME_RETAIN_EVENTS", default=1000),
    "RETAIN_SECONDS": env.int("REALTIME_RETAIN_SECONDS", default=24 * 3600),
    # A socket is shed with 4008 once this many events wait for it while it
    # catches up, or this many bytes wait unwritten for a client that reads slowly.
    "MAX_BACKLOG": env.int("REALTIME_MAX_BACKLOG", default=1000),
    # A subscribe with `since` replays at most this many events (else recovered: false).
    "MAX_REPLAY": env.int("REALTIME_MAX_REPLAY", default=1000),
    "MAX_BACKLOG_BYTES": env.int("REALTIME_MAX_BACKLOG_BYTES", default=4 * 1024 * 1024),
    # Threads per process for the gateway's database work (each its own
    # connection), and the most publishes committed in one transaction.
    "DATABASE_WORKERS": env.int("REALTIME_DATABASE_WORKERS", default=4),
    "PUBLISH_BATCH": env.int("REALTIME_PUBLISH_BATCH", default=500),
    # How long the event loop may hold the interpreter lock before a database
    # thread gets it (Python's sys.setswitchinterval, default 5 ms).
    "SWITCH_INTERVAL_MS": env.float("REALTIME_SWITCH_INTERVAL_MS", default=0.5),
    # Handshakes in progress per process (session lookup to `welcome`); more
    # are refused with HTTP 503 at once and retried by the clients with backoff.
    "MAX_PENDING_HANDSHAKES": env.int("REALTIME_MAX_PENDING_HANDSHAKES", default=100),
    # Where the live state shared by processes lives (dotted paths, chosen once):
    # in this process alone, or in Redis for every process.
    "REGISTRY_BACKEND": (
        "realtime.gateway.registry.RedisRegistry"
        if REDIS_ENABLED
        else "realtime.gateway.registry.LocalRegistry"
    ),
    "PRESENCE_BACKEND": (
        "realtime.gateway.presence.RedisPresence"
        if REDIS_ENABLED
        else "realtime.gateway.presence.LocalPresence"
    ),
    "REDIS_PREFIX": REDIS_PREFIX,
    # A process that has not renewed its key for this long is dead: survivors
    # remove its connections and presence (it renews every sixth of it).
    "ALIVE_SECONDS": env.int("REALTIME_ALIVE_SECONDS", default=30),
    # Every socket rechecks all its subscriptions this often (jittered): a bound
    # on what a missed revocation signal can leak.
    "RECHECK_SECONDS": env.int("REALTIME_RECHECK_SECONDS", default=300),
    # Failed sign-ins per username within 15 minutes before a 15-minute lockout
    # (four times as many per client address).
    "LOGIN_FAILURES": env.int("REALTIME_LOGIN_FAILURES", default=5),
    # Writes by users over REST and the site's forms (DRF's rate syntax).
    "REST_WRITE_RATE": env.str("REALTIME_REST_WRITE_RATE", default="120/minute"),
    # Distinct users one message may notify by @mention.
    "MAX_MENTIONS": 10,
    # Seconds a client of `manage.py serve` gets to send a request's headers.
    "HEADER_TIMEOUT_SECONDS": env.float("REALTIME_HEADER_TIMEOUT_SECONDS", default=20.0),
    # Who may read /metrics besides staff (by session or token): these networks.
    "METRICS_ALLOWED_NETWORKS": env.list(
        "REALTIME_METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"]
    ),
    # Origins allowed at the handshake besides ALLOWED_HOSTS (full origins).
    "ALLOWED_ORIGINS": env.list("REALTIME_ALLOWED_ORIGINS", default=[]),
}

# LOGGING
# ------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "realtime.gateway.logs.ContextFilter"},
        "client_errors": {"()": "realtime.gateway.logs.ClientErrorFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"},
        "json": {"()": "realtime.gateway.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context", "client_errors"],
        }
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        # Django's default config gives "django" a console handler of its own when
        # DEBUG is on: every line of it (each 404, say) came out twice.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.channels.server": {"level": "WARNING"},
    },
}
