from django.apps import AppConfig


class ServicesConfig(AppConfig):
    name = "services"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import services.tasks
        import services.timeseries  # noqa: F401 - registers the time-series tables
