"""The operator console and the public status page: the layer on top of every app."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "web"
    verbose_name = "Console and status page"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import web.tasks  # noqa: F401 - registers the status page's beat entry
