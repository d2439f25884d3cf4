from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from incidents import evaluation
        from services.signals import check_results_recorded

        # Incidents depend on services, not the other way: services announce results.
        check_results_recorded.connect(
            evaluation.on_check_results, dispatch_uid="incidents.evaluate_check_results"
        )
        import incidents.tasks  # noqa: F401 - registers beat entries
