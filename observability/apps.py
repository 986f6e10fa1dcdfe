from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Request tracing and logging"

    def ready(self) -> None:
        from observability.conf import obs_settings

        obs_settings.check()  # a wrong flag stops start-up with a sentence naming it
