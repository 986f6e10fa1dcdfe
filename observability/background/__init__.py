"""Background work: the request's story carried into tasks, their lifecycle lines, Celery."""
