"""The Celery app: configured from Django's settings (CELERY_*), tasks found in the apps.

    celery -A config worker --beat    (make worker)

With no CELERY_BROKER_URL the app's broker is Celery's in-memory transport and nothing is
ever published to it: billing.background runs the tasks in the web process instead.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _settings_or_exit() -> None:
    """Read the settings now: a bad variable (CELERY_BROKER_URL ...) stops the process with
    its sentence, not with a traceback from deep inside kombu, which reads them lazily."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018 - loads the settings module
    except ImproperlyConfigured as exc:
        msg = f"error: {exc}"
        raise SystemExit(msg) from None


_settings_or_exit()
app = Celery("billing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _django_logging(**kwargs: object) -> None:
    """Keep Django's LOGGING (the same files, filters and writer as the web processes)."""
    import django

    django.setup()  # configures LOGGING once (a no-op when already set up)


setup_logging.connect(_django_logging)
