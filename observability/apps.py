from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import observability.schema
        import observability.timeseries  # noqa: F401 - registers the time-series tables
        from accounts.roles import register_operator_permissions
        from noc.health import EXTRA_PROBES
        from observability.health import log_outbox_probes
        from observability.metrics import ingest_counter_families, log_outbox_families
        from services.metrics import EXTRA_FAMILIES

        # Operators acknowledge and silence alerts in the admin too.
        register_operator_permissions("observability.change_alert")

        for family in (log_outbox_families, ingest_counter_families):
            if family not in EXTRA_FAMILIES:
                EXTRA_FAMILIES.append(family)
        if log_outbox_probes not in EXTRA_PROBES:
            EXTRA_PROBES.append(log_outbox_probes)
