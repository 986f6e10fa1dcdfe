"""The project as a Django app of its own, so that its Celery app is made when Django's apps
are ready (the web processes, `manage.py`, the tests, the worker) and not when the settings
are merely read: `logtrace` reads the settings module alone and starts without Celery."""

from __future__ import annotations

import django_stubs_ext
from django.apps import AppConfig

# Django's generic classes subscriptable at run time (billing.admin's ModelAdmin[Payment]),
# as mypy reads them through django-stubs: patched when the app configs are imported, before
# any model, admin or view module (not in the settings, which `logtrace` reads alone).
django_stubs_ext.monkeypatch()


class ProjectConfig(AppConfig):
    name = "config"
    label = "project_config"
    verbose_name = "Project configuration"

    def ready(self) -> None:
        # First of the apps' ready(): the app `shared_task` and `current_app` mean in every
        # thread (the default app), before anything asks Celery for a current app.
        from config.celery import app

        app.set_default()
