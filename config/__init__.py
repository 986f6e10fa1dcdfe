"""The project's configuration. Its Celery app (config/celery.py) is made when Django's apps
are ready (config/apps.py); `celery -A config` finds it as `config.celery.app`."""
