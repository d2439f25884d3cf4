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
        from incidents.metrics import incident_families
        from services.metrics import EXTRA_FAMILIES

        if incident_families not in EXTRA_FAMILIES:
            EXTRA_FAMILIES.append(incident_families)
