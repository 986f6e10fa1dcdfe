import os

from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Request tracing and logging"

    def ready(self) -> None:
        from observability.conf import obs_settings
        from observability.guard.flood import install
        from observability.output.termination import drain_on_termination
        from observability.output.writer import writer
        from observability.spans.queries import install as watch_queries

        obs_settings.check()  # a wrong flag stops start-up with a sentence naming it
        install()  # flood control on SECURITY_LOGGER and FLOOD_LOGGERS
        watch_queries()  # every database connection counts its request's queries
        drain_on_termination()  # SIGTERM writes what is queued, however the process runs
        if obs_settings.CELERY:
            from observability.background.celery import install as install_celery

            install_celery()  # the request's story into tasks (the `celery` extra)
        if os.environ.get("RUN_MAIN") == "true":
            # runserver's autoreloader child: its parent SIGKILLs it on SIGTERM or Ctrl-C
            # (subprocess.run kills its child on any exception), so nothing may wait in a
            # queue there. A development server can afford writing in place.
            writer.synchronous = True
