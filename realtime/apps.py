from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Realtime"

    def ready(self):
        # The chat site's topic families and the receivers that keep sockets in step.
        from realtime.chat import families, signals  # noqa: F401
