from django.apps import AppConfig


class SlosConfig(AppConfig):
    name = "slos"
    verbose_name = "SLOs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import slos.tasks
        import slos.timeseries  # noqa: F401 - registers the history table
