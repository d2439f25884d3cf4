"""Celery tasks of the slos app."""

from __future__ import annotations

from celery import shared_task

from noc.beat import BeatEntry, register
from slos import actions


@shared_task(name="slos.evaluate", soft_time_limit=50, time_limit=58)
def evaluate() -> int:
    """Evaluate every enabled SLO (idempotent: one history row per SLO per minute)."""
    return actions.slos_evaluate()


register(BeatEntry("slos: evaluate every SLO", "slos.evaluate", 60, queue="slo"))
