"""Celery tasks of the incidents app."""

from __future__ import annotations

from celery import shared_task

from incidents import delivery
from noc.beat import BeatEntry, register


@shared_task(name="incidents.deliver", soft_time_limit=60, time_limit=90)
def deliver(delivery_id: int) -> str:
    """Send one notification delivery (idempotent: a sent delivery is not sent again)."""
    return delivery.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="incidents.retry_deliveries", soft_time_limit=60, time_limit=90)
def retry_deliveries() -> int:
    """Hand deliveries whose next attempt is due (or whose sender died) back to the queue."""
    return delivery.deliveries_requeue_due()


register(BeatEntry("incidents: retry notification deliveries", "incidents.retry_deliveries", 15))
