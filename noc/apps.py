from django.apps import AppConfig


class NocConfig(AppConfig):
    name = "noc"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import noc.tasks  # noqa: F401 - registers the time-series beat entries
        from noc import postgres_datetimes

        postgres_datetimes.register()
