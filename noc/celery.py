"""The one Celery app: queues, late acks, and a visibility timeout for long tasks."""

from __future__ import annotations

import gc
import os

import celery.app.amqp
from celery import Celery, signals
from kombu import Connection, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "noc.settings")

# Two workers, each with a pool of its own (`make run`, docker-compose). The scheduled work whose
# lateness users see: the dispatchers, check batches, collector scrapes. Every other job (SLO
# evaluation, rollups, notifications, partition and index maintenance, ingestion) goes to the
# second, so a long one (a cold SLO evaluation, an index build of hours) never holds a process a
# due check is waiting for. A batch holds its process from the moment it is taken until its last
# check is written, sleeping until each check is due, so at 100,000 services the two kinds of
# work sharing two processes left the checks' batches queued behind minute-long jobs.
SCHEDULED_QUEUES = ("dispatch", "checks", "collectors")
JOB_QUEUES = ("slo", "notifications", "ingest", "default")
QUEUES = SCHEDULED_QUEUES + JOB_QUEUES
RECONNECT_FIRST = 1.0
RECONNECT_MAX = 3.0


class BrokerConnection(Connection):
    """kombu's Connection, reconnecting on a short leash: its default backoff (2, 4, 6 … up to
    30 s between attempts) kept a worker idle up to half a minute after Redis came back. Here
    attempts come 1, 2 then every 3 s, so the worker consumes again within 3 s of the return."""

    def ensure_connection(self, *args, **kwargs):
        kwargs.setdefault("interval_start", RECONNECT_FIRST)
        kwargs.setdefault("interval_step", RECONNECT_FIRST)
        kwargs.setdefault("interval_max", RECONNECT_MAX)
        return super().ensure_connection(*args, **kwargs)


class AMQP(celery.app.amqp.AMQP):
    Connection = BrokerConnection


app = Celery("noc", amqp=AMQP)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=[Queue(name) for name in QUEUES],
    task_default_queue="default",
    # The dispatchers go to the scheduled work's worker however they are sent (beat names the
    # queue too); their batches are sent to `checks` and `collectors` by name.
    task_routes={
        "services.dispatch": {"queue": "dispatch"},
        "collectors.dispatch": {"queue": "dispatch"},
    },
    # A task is acknowledged after it ran, and re-delivered if its worker dies mid-way;
    # every task is written to be idempotent for that reason.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # Nothing reads the results of our tasks (noc.ping excepted): storing them would only add
    # a Redis write per task, and a Redis outage one more thing to retry.
    task_ignore_result=True,
    result_expires=3600,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    timezone="UTC",
    enable_utc=True,
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks()

# A worker process's Python garbage: what start-up made (Django, the models, Celery) is frozen
# out of the cyclic collector's scans, and a collection runs every 50,000 allocations instead of
# 700, as in the web processes (noc/asgi.py). At the default the collector walked the heap every
# few dozen rows of a dispatch or a result write; the check batches raise it further while
# they run (services.execution).
WORKER_GC_THRESHOLD = (50_000, 20, 100)


@signals.worker_process_init.connect  # each prefork child, after the fork
@signals.worker_init.connect  # the worker itself (solo and thread pools run tasks there)
def relax_collector(**kwargs) -> None:
    gc.freeze()
    current = gc.get_threshold()
    gc.set_threshold(
        *(max(now, wanted) for now, wanted in zip(current, WORKER_GC_THRESHOLD, strict=True))
    )


@app.task(name="noc.ping", soft_time_limit=5, time_limit=10, ignore_result=False)
def ping(value: str = "pong") -> str:
    """Echo: lets tests and `doctor` prove a worker consumes the queue."""
    return value
