"""Under OpenTelemetry's agent (`opentelemetry-instrument gunicorn config.wsgi:application`).

The agent instruments Django in every process it starts, the gunicorn master included,
before gunicorn reads its configuration or imports `config.wsgi`; Django's instrumentation
reads the settings then, and with no DJANGO_SETTINGS_MODULE it configures Django with
empty settings, for good: every request would then be a 500. The agent runs the
`opentelemetry_pre_instrument` entry points first (pyproject.toml names this function), so
the project's settings are the default before anything reads them, as `manage.py` and
`config.wsgi` make them.
"""

from __future__ import annotations

import os

SETTINGS_MODULE = "config.settings"


def use_project_settings() -> None:
    """DJANGO_SETTINGS_MODULE defaults to this project's settings (an exported one wins)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
