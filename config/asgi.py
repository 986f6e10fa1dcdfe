"""ASGI entry point (uvicorn config.asgi:application)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()

# The embedded runner (no broker configured): its thread sweeps the outbox in this process.
from billing.background import start_embedded  # noqa: E402

start_embedded()
