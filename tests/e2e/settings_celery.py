"""The end-to-end settings, plus the probe tasks a worker must know (tests.e2e.probe_tasks)."""

from tests.e2e.settings import *  # noqa: F403

CELERY_IMPORTS = ("tests.e2e.probe_tasks",)
