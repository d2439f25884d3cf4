"""Readiness probes of the observability app (registered into noc.health by the app config)."""

from __future__ import annotations

from django.conf import settings

from noc.health import Probe


def check_log_outbox() -> str:
    """Log lines accepted while Elasticsearch was away: reported, never fatal (they are safe
    in PostgreSQL and drain by themselves)."""
    from observability.logs.outbox import outbox_status

    status = outbox_status()
    if status.batches:
        raise RuntimeError(status.describe())
    return "empty"


def log_outbox_probes() -> list[Probe]:
    if not settings.ELASTICSEARCH_URL:
        return []
    return [Probe("log_outbox", check_log_outbox, required=False, reads_database=True)]
