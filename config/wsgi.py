"""WSGI entry point (gunicorn config.wsgi:application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# The embedded runner (no broker configured): its thread sweeps the outbox in this process.
from billing.background import start_embedded  # noqa: E402

start_embedded()
