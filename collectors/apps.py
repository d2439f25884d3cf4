from django.apps import AppConfig


class CollectorsConfig(AppConfig):
    name = "collectors"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import collectors.tasks  # noqa: F401 - registers the beat entries
