"""Settings for one benchmark variant (BENCH_VARIANT), each writing to real rotating files."""

import json
import os

from observability import build_logging

VARIANT = os.environ.get("BENCH_VARIANT", "bare")
LOG_DIR = os.environ.get("BENCH_LOG_DIR", "/tmp/bench-logs")
os.makedirs(LOG_DIR, exist_ok=True)

SECRET_KEY = "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "bench.urls"
USE_TZ = True
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
BASE_MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]


def rotating(name: str, filters=()):
    return {
        "class": "logging.handlers.RotatingFileHandler",
        "filename": os.path.join(LOG_DIR, name),
        "maxBytes": 10 * 1024 * 1024,
        "backupCount": 5,
        "formatter": "plain",
        "filters": list(filters),
    }


PLAIN = {"plain": {"format": "%(asctime)s %(levelname)s [%(name)s] %(message)s"}}

if VARIANT == "ours":
    # bench/volume_bench.py sets flags (SAMPLE_RATE, METRICS) through this variable.
    OBSERVABILITY = json.loads(os.environ.get("BENCH_OBSERVABILITY") or "{}")
    INSTALLED_APPS.append("observability")
    MIDDLEWARE = ["observability.middleware.RequestLoggingMiddleware", *BASE_MIDDLEWARE]
    LOGGING = build_logging(
        base_dir=LOG_DIR, console=False, log_format=os.environ.get("BENCH_LOG_FORMAT", "text")
    )
elif VARIANT == "django-guid":
    INSTALLED_APPS.append("django_guid")
    MIDDLEWARE = ["django_guid.middleware.guid_middleware", *BASE_MIDDLEWARE]
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"correlation_id": {"()": "django_guid.log_filters.CorrelationId"}},
        "formatters": {
            "plain": {
                "format": "%(asctime)s %(levelname)s [%(name)s] [%(correlation_id)s] %(message)s"
            }
        },
        "handlers": {"file": rotating("guid.log", ["correlation_id"])},
        "root": {"handlers": ["file"], "level": "INFO"},
    }
elif VARIANT == "django-log-request-id":
    MIDDLEWARE = ["log_request_id.middleware.RequestIDMiddleware", *BASE_MIDDLEWARE]
    LOG_REQUESTS = True
    GENERATE_REQUEST_ID_IF_NOT_IN_HEADER = True
    REQUEST_ID_RESPONSE_HEADER = "X-Request-ID"
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "log_request_id.filters.RequestIDFilter"}},
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s [%(name)s] [%(request_id)s] %(message)s"}
        },
        "handlers": {"file": rotating("log_request_id.log", ["request_id"])},
        "loggers": {"log_request_id.middleware": {"handlers": ["file"], "level": "INFO"}},
    }
elif VARIANT == "django-structlog":
    import structlog

    INSTALLED_APPS.append("django_structlog")
    MIDDLEWARE = ["django_structlog.middlewares.RequestMiddleware", *BASE_MIDDLEWARE]
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processor": structlog.processors.KeyValueRenderer(key_order=["event"]),
            }
        },
        "handlers": {"file": rotating("structlog.log")},
        "loggers": {"django_structlog": {"handlers": ["file"], "level": "INFO"}},
    }
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
else:  # bare Django + DRF
    MIDDLEWARE = BASE_MIDDLEWARE
    LOGGING = {"version": 1, "disable_existing_loggers": False}
