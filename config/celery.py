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

app = Celery("billing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _django_logging(**kwargs: object) -> None:
    """Keep Django's LOGGING (the same files, filters and writer as the web processes)."""
    import django

    django.setup()  # configures LOGGING once (a no-op when already set up)
