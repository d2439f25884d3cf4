"""Celery tasks of the observability app."""

from __future__ import annotations

from celery import shared_task

from noc.beat import BeatEntry, register
from observability import actions


@shared_task(name="observability.log_outbox_drain", soft_time_limit=50, time_limit=58)
def log_outbox_drain() -> int:
    """Send log lines waiting in the outbox to Elasticsearch (idempotent: lines keep ids)."""
    return actions.log_outbox_drain()


@shared_task(name="observability.log_retention", soft_time_limit=240, time_limit=270)
def log_retention() -> int:
    """Delete Elasticsearch's daily log indices past LOG_RETENTION_DAYS."""
    return actions.log_retention_apply()


@shared_task(name="observability.alerts_evaluate", soft_time_limit=25, time_limit=28)
def alerts_evaluate() -> int:
    """Evaluate every enabled alert rule (idempotent: one open alert per rule and label set)."""
    return actions.alerts_evaluate()


register(
    BeatEntry("observability: evaluate alert rules", "observability.alerts_evaluate", 30,
              queue="slo")
)  # fmt: skip
register(
    BeatEntry("observability: drain the log outbox", "observability.log_outbox_drain", 10,
              queue="ingest")
)  # fmt: skip
register(
    BeatEntry("observability: log retention", "observability.log_retention", 3600,
              queue="default")
)  # fmt: skip
