"""Settings for the billing API: one module, driven by the environment.

Every variable is listed in the README's configuration table.
"""

from __future__ import annotations

import math
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.caches import shared_caches
from config.env import (
    env_bool,
    env_broker_url,
    env_choice,
    env_int,
    env_list,
    env_rate,
    env_seconds,
    invalid,
)
from config.logs import logging_config, observability_flags

BASE_DIR = Path(__file__).resolve().parent.parent


# --- Core -------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
_KEY_FILE = BASE_DIR / ".secret_key"  # written by `make run` (mode 600, git-ignored)
if not SECRET_KEY and _KEY_FILE.is_file():
    SECRET_KEY = _KEY_FILE.read_text(encoding="utf-8").strip()
if not SECRET_KEY:
    if not DEBUG:
        msg = (
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable, run `make run` "
            "once (it generates .secret_key), or set DEBUG=1 for a development default."
        )
        raise ImproperlyConfigured(msg)
    SECRET_KEY = "django-insecure-development-only-key"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")

INSTALLED_APPS = [
    "config.apps.ProjectConfig",  # first: the Celery app (config/celery.py) before any other
    "django.contrib.admin",  # its login guards the trace viewer under /ops/
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "observability",
    "billing",
]

# RequestLoggingMiddleware is first so that every response, even one produced by
# another middleware, carries the request ID and is logged. Sessions, CSRF, auth and
# messages serve the admin and the trace viewer only: the API authenticates by JWT inside
# DRF (no SessionAuthentication, so no CSRF on the API), and nothing here reads the session
# unless a page asks for request.user.
MIDDLEWARE = [
    "observability.middleware.RequestLoggingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# --- Database ----------------------------------------------------------------
# SQLite in the project by default; PostgreSQL by URL (postgres://user:pass@host:5432/db,
# driver psycopg 3). The README's "Databases" section says how the suite runs on both.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=60,
        # A kept connection the server dropped (restart, failover) is replaced at the start
        # of the next request instead of failing it.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn workers share the file
    # (https://docs.djangoproject.com/en/5.2/ref/databases/#database-is-locked-errors):
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN,
    # so a transaction that reads then writes waits up to `timeout` seconds for its turn
    # instead of failing "database is locked" when it upgrades its lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable server is a 503 within seconds, not a worker hung until gunicorn kills it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# --- Cache (shared by every worker process) -------------------------------------
# The database cache by default; CACHE_URL=redis://127.0.0.1:6379/1 for Redis. Why each
# cache is shared, and why three: config/caches.py.
CACHE_URL = os.environ.get("CACHE_URL", "").strip()
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    raise invalid("CACHE_URL", "must be a redis:// or rediss:// URL", CACHE_URL)
CACHES = shared_caches(CACHE_URL)

# --- Internationalisation ----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- Static files ---------------------------------------------------------------
# WhiteNoise serves them straight from the apps' static/ directories in every process,
# gunicorn and uvicorn included, with no collectstatic step: the admin's, the trace viewer's
# and the Swagger UI's files, found once at start-up. (Django's own static view is for
# DEBUG only, and its docs call it unfit for production.)
# https://whitenoise.readthedocs.io/en/stable/django.html#WHITENOISE_USE_FINDERS
STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT") or None  # only for `collectstatic` behind a CDN
WHITENOISE_USE_FINDERS = True

# --- Sessions (admin and trace viewer) -------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)  # on behind HTTPS
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
LOGIN_URL = "admin:login"

# --- REST framework and JWT ---------------------------------------------------
# Login throttles (billing/throttling.py; README, "Login throttling"): every password check
# costs ~250 ms of CPU, so the token endpoint and the admin's login page count attempts
# before checking, in budgets both share: per client (IPv4 address, IPv6 /64) and per
# (username, client), never per username alone (that would let anyone lock a user out).
# 5/min per (username, client) lets a person mistype four times and still get in; 20/min per
# client lets a handful of people behind one NAT log in at once, and holds one attacking
# client to one password check every 3 s (~8% of a core).
LOGIN_THROTTLE_CLIENT_RATE = env_rate("LOGIN_THROTTLE_CLIENT_RATE", "20/min")
LOGIN_THROTTLE_USERNAME_RATE = env_rate("LOGIN_THROTTLE_USERNAME_RATE", "5/min")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["billing.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["billing.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "billing.exception_handler.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_THROTTLE_RATES": {
        "login_client": LOGIN_THROTTLE_CLIENT_RATE,
        "login_username": LOGIN_THROTTLE_USERNAME_RATE,
    },
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=30),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "AUTH_HEADER_TYPES": ("Bearer",),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billing API",
    "DESCRIPTION": "Plans, subscriptions, payments and refunds; every request traceable by its "
    "X-Request-ID.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Billing: the payment gateway ------------------------------------------------
# A payment is committed `pending` before the gateway is called. The request that did it
# holds it for BILLING_PENDING_LEASE seconds while it talks to the gateway, which it does
# for at most BILLING_GATEWAY_TIMEOUT seconds; after the lease, a retry with the same
# Idempotency-Key or `manage.py payment_reconcile` asks the gateway what happened and
# settles it (README, "Databases"). A lease no longer than the timeout would let a retry
# race a request that is still waiting for its answer.
BILLING_GATEWAY_TIMEOUT = env_seconds("BILLING_GATEWAY_TIMEOUT", 20.0, positive=True)
BILLING_PENDING_LEASE = env_seconds("BILLING_PENDING_LEASE", 60.0, positive=True)
if BILLING_PENDING_LEASE <= BILLING_GATEWAY_TIMEOUT:
    raise invalid(
        "BILLING_PENDING_LEASE",
        f"must be longer than BILLING_GATEWAY_TIMEOUT ({BILLING_GATEWAY_TIMEOUT} s): a request "
        "still talking to the gateway must keep its payment",
        os.environ.get("BILLING_PENDING_LEASE", "").strip() or str(BILLING_PENDING_LEASE),
    )

# --- Background work: webhooks on Celery ------------------------------------------
# README, "Background work". With CELERY_BROKER_URL unset, tasks run in each web process on a
# background thread after the transaction commits (the embedded default); set it to a Redis
# (redis://127.0.0.1:6379/0) or RabbitMQ (amqp://guest:guest@127.0.0.1:5672//) URL and run
# `make worker`. The outbox (billing.WebhookOutbox) is the truth either way: the sweep
# publishes what is due, every WEBHOOK_SWEEP_INTERVAL seconds (beat, or the embedded thread).
# No broker: the embedded default (Celery's in-memory transport is never published to).
CELERY_BROKER_URL = env_broker_url("CELERY_BROKER_URL") or "memory://"
BACKGROUND_EMBEDDED = CELERY_BROKER_URL == "memory://"
WEBHOOK_TIMEOUT = env_seconds("WEBHOOK_TIMEOUT", 10.0, positive=True)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1) or 8
WEBHOOK_BACKOFF_BASE = env_seconds("WEBHOOK_BACKOFF_BASE", 30.0, positive=True)
WEBHOOK_BACKOFF_MAX = env_seconds("WEBHOOK_BACKOFF_MAX", 1800.0, positive=True)
WEBHOOK_SWEEP_INTERVAL = env_seconds("WEBHOOK_SWEEP_INTERVAL", 60.0, positive=True)
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", False)
CELERY_PUBLISH_TIMEOUT = env_seconds("CELERY_PUBLISH_TIMEOUT", 2.0, positive=True)
CELERY_VISIBILITY_TIMEOUT = env_seconds("CELERY_VISIBILITY_TIMEOUT", 3600.0, positive=True)
# A task past its hard limit is killed; the webhook's own timeout comes well before it.
CELERY_TASK_TIME_LIMIT = math.ceil(WEBHOOK_TIMEOUT * 2 + 30)
CELERY_TASK_SOFT_TIME_LIMIT = math.ceil(WEBHOOK_TIMEOUT + 15)
# Redis hands an unacknowledged task to another worker after the visibility timeout: a
# retry's countdown (held unacknowledged by the worker) plus a run must end before it.
if WEBHOOK_BACKOFF_MAX * 1.25 + CELERY_TASK_TIME_LIMIT >= CELERY_VISIBILITY_TIMEOUT:
    raise invalid(
        "CELERY_VISIBILITY_TIMEOUT",
        f"must be longer than WEBHOOK_BACKOFF_MAX x 1.25 (its jitter) + the task time limit "
        f"({WEBHOOK_BACKOFF_MAX * 1.25 + CELERY_TASK_TIME_LIMIT:g} s): else Redis redelivers "
        "a task still waiting for its retry",
        str(CELERY_VISIBILITY_TIMEOUT),
    )
# Several deployments (or test runs) sharing one broker keep apart by queue name.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_QUEUE", "").strip() or "celery"
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is delivered again, not lost
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # the workers write through LOGGING, as the web does
CELERY_WORKER_REDIRECT_STDOUTS = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = CELERY_PUBLISH_TIMEOUT
CELERY_TASK_PUBLISH_RETRY = False  # publishing is bounded: a failure leaves it to the sweep
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "socket_timeout": CELERY_PUBLISH_TIMEOUT,
    "socket_connect_timeout": CELERY_PUBLISH_TIMEOUT,
    "max_retries": 0,
}
CELERY_BEAT_SCHEDULE = {
    "webhook-sweep": {"task": "billing.webhook_sweep", "schedule": WEBHOOK_SWEEP_INTERVAL},
}

# --- Observability -------------------------------------------------------------
# The request-tracing layer's flags (config/logs.py); every key and its default is in
# the README.
OBSERVABILITY = observability_flags(debug=DEBUG)

# --- Logging ------------------------------------------------------------------
# Built once by observability; the five files live under LOG_BASE_DIR (seed default /tmp).
LOG_BASE_DIR = os.environ.get("LOG_BASE_DIR", "").strip() or "/tmp"
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
LOG_FORMAT = env_choice("LOG_FORMAT", "text", ("text", "json", "ecs")).lower()
LOGGING = logging_config(
    base_dir=LOG_BASE_DIR,
    debug=DEBUG,
    level=LOG_LEVEL.upper(),
    log_format=LOG_FORMAT,
    observability=OBSERVABILITY,
)
