"""The observability layer's settings, from the environment: OBSERVABILITY and LOGGING.

Every key of OBSERVABILITY and its default is in the README.
"""

from __future__ import annotations

import os
from typing import Any

from config.env import (
    env_address,
    env_bool,
    env_fraction,
    env_int,
    env_mode,
    env_networks,
    env_proxies,
    env_seconds,
    env_secret,
    package_version,
)
from observability.conf_checks import log_file_names
from observability.logconfig import build_logging

#: The loggers the seed names (billing_logger is "billing", the lifecycle lines "billing.api").
SEED_LOGGERS = {
    "APP_LOGGER": "billing",
    "REQUEST_LOGGER": "billing.api",
    "SECURITY_LOGGER": "billing.security",
    "EVENTS_LOGGER": "billing.events",
    "PERFORMANCE_LOGGER": "billing.performance",
    "VIEWS_LOGGER": "billing.views",
    "AUTH_LOGGER": "common.jwt_auth",
    "TASK_LOGGER": "billing.tasks",
    "SPAN_LOGGER": "billing.spans",
}
#: The seed's five files under LOG_BASE_DIR: billing_api.log, billing_api_requests.log ...
SEED_LOG_FILES = log_file_names("billing_api")


def observability_flags(*, debug: bool) -> dict[str, Any]:
    """OBSERVABILITY: the request-tracing layer's flags."""
    return {
        # The seed's names: its loggers and its five files (the library's defaults are neutral).
        **SEED_LOGGERS,
        "LOG_FILES": SEED_LOG_FILES,
        "SLOW_REQUEST_THRESHOLD": env_seconds("SLOW_REQUEST_THRESHOLD", 1.0),
        "TRUSTED_PROXIES": env_proxies("TRUSTED_PROXIES"),
        # Static files (served by WhiteNoise) and Prometheus' scrapes get a request ID but no
        # lifecycle lines.
        "EXCLUDE_PATHS": ("/health/", "/static/", "/metrics"),
        # At volume (README, "Running at volume"): the fraction of fast successes written,
        # and flood control of repeated security and authentication records.
        "SAMPLE_RATE": env_fraction("SAMPLE_RATE", 1.0),
        "FLOOD_LIMIT": env_int("FLOOD_LIMIT", 10, minimum=0),
        "FLOOD_WINDOW": env_seconds("FLOOD_WINDOW", 60.0, positive=True),
        "FLOOD_LOGGERS": ("common.jwt_auth", "django.security"),
        # Beyond each client's FLOOD_LIMIT: a network's and everyone's lines a window, counted
        # in the default cache every worker shares (a botnet cannot rotate the history away).
        "FLOOD_NETWORK_LIMIT": env_int("FLOOD_NETWORK_LIMIT", 100, minimum=0),
        "FLOOD_GLOBAL_LIMIT": env_int("FLOOD_GLOBAL_LIMIT", 300, minimum=0),
        "FLOOD_CACHE": "default",
        # /metrics: Prometheus on these addresses, or anywhere with the bearer token.
        "METRICS_ALLOWED_IPS": env_networks("METRICS_ALLOWED_IPS", "127.0.0.0/8,::1"),
        "METRICS_TOKEN": env_secret("METRICS_TOKEN"),
        # A reused incoming X-Request-ID is flagged by whichever worker sees it again.
        "SEEN_IDS_CACHE": "request_ids",
        # Log files are private (PCI scope): 0640 files, 0750 directories the layer creates
        "LOG_FILE_MODE": env_mode("LOG_FILE_MODE", 0o640),
        "LOG_DIR_MODE": env_mode("LOG_DIR_MODE", 0o750),
        # Who writes the lines (ECS service.name / .version / .environment)
        "SERVICE_NAME": os.environ.get("SERVICE_NAME", "").strip()
        or os.environ.get("OTEL_SERVICE_NAME", "").strip()
        or "billing-api",
        "SERVICE_VERSION": os.environ.get("SERVICE_VERSION", "").strip()
        or package_version("billing-api"),
        "SERVICE_ENVIRONMENT": os.environ.get("SERVICE_ENVIRONMENT", "").strip()
        or ("development" if debug else "production"),
        # Each client (IPv4 address, IPv6 /64) has at most this many of its IDs remembered an
        # hour: one client sending ever new IDs cannot push another client's out of the cache.
        "SEEN_IDS_PER_CLIENT": env_int("SEEN_IDS_PER_CLIENT", 1000, minimum=1),
        "SEEN_IDS_QUOTA_CACHE": "request_id_quotas",
        # Celery tasks carry the request's story (observability.background; "Background work").
        "CELERY": True,
        # The worker's own /metrics (its tasks' metrics): `make worker` sets 127.0.0.1:9808.
        "CELERY_METRICS_ADDRESS": env_address("CELERY_METRICS_ADDRESS"),
    }


def logging_config(
    *, base_dir: str, debug: bool, level: str, log_format: str, observability: dict[str, Any]
) -> dict[str, Any]:
    """LOGGING, built once by observability; the five files live under `base_dir`."""
    return build_logging(
        base_dir=base_dir,
        debug=debug,
        level=level,
        log_format=log_format,
        console=env_bool("LOG_CONSOLE", True),
        max_bytes=env_int("LOG_MAX_BYTES", None, minimum=0),
        backup_count=env_int("LOG_BACKUP_COUNT", None, minimum=0),
        queue_size=env_int("LOG_QUEUE_SIZE", 10000, minimum=1),
        observability=observability,
    )
