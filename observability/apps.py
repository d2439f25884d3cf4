from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import observability.schema
        import observability.timeseries  # noqa: F401 - registers the time-series tables
