"""Writes of the collectors app: definitions, starting and stopping runs, claiming executions
for workers, recording them, finding dead runs and deleting old ones."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psutil
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.actions import audit_create, audit_delete, audit_record, audit_update
from accounts.audit import snapshot
from accounts.choices import AuditAction
from collectors import tokens
from collectors.choices import CollectorKind, RunStatus
from collectors.kinds import Reading
from collectors.models import Collector, CollectorRun
from collectors.validation import validate_collector
from observability import storage
from observability.actions import metric_points_ingest
from observability.models import Application
from observability.points import from_us, to_us
from observability.timeseries import METRIC_POINTS

HOST = socket.gethostname()
MAX_CLAIM_ATTEMPTS = 2
MAX_ERROR_CHARS = 2000


class RunAlreadyRunning(Exception):
    def __init__(self, run: CollectorRun) -> None:
        self.run = run
        super().__init__(f"collector {run.collector} already runs (run {run.pk})")


class CollectorDisabled(Exception):
    pass


# --- definitions --------------------------------------------------------------------------------


def _apply(collector: Collector, fields: dict[str, Any], token: str | None) -> None:
    for name, value in fields.items():
        setattr(collector, name, value)
    if token is not None:
        collector.token = tokens.encrypt(token)
    validate_collector(collector)


@transaction.atomic
def collector_create(*, actor, token: str | None = None, **fields: Any) -> Collector:
    """Create a collector; `token` (a bearer token) is stored encrypted."""
    collector = Collector()
    _apply(collector, fields, token)
    collector.full_clean(validate_constraints=False)
    collector.save(force_insert=True)
    audit_create(actor=actor, instance=collector)
    return collector


@transaction.atomic
def collector_update(
    *, actor, collector: Collector, token: str | None = None, **fields: Any
) -> Collector:
    """Change a collector; `token` None keeps the stored token, '' removes it."""
    previous = Collector.objects.select_for_update().get(pk=collector.pk)
    before = snapshot(previous)
    _apply(collector, fields, token)
    collector.full_clean(validate_constraints=False)
    collector.save()
    audit_update(actor=actor, instance=collector, before=before, previous=previous)
    if not collector.enabled:  # a disabled collector runs no more (rather than "dies")
        for run in collector.runs.filter(status=RunStatus.RUNNING):
            collector_run_stop(actor=actor, run=run)
    return collector


@transaction.atomic
def collector_delete(*, actor, collector: Collector) -> None:
    audit_delete(actor=actor, instance=collector)
    collector.delete()


def collector_application() -> Application:
    """The application collectors started by symbol write to, made once."""
    application, _created = Application.objects.get_or_create(
        slug=settings.COLLECTOR_APPLICATION,
        defaults={"name": "Collectors", "description": "Series written by collectors."},
    )
    return application


def collector_for_symbol(*, actor, symbol: str, timeframe: str) -> Collector:
    """The ohlcv collector of `symbol` and `timeframe` (the seed's start body), created from the
    COLLECTOR_OHLCV_* settings when there is none. Two racing first starts make one."""
    found = Collector.objects.filter(kind=CollectorKind.OHLCV, symbol=symbol, timeframe=timeframe)
    if existing := found.first():
        return existing
    try:
        with transaction.atomic():
            return collector_create(
                actor=actor, name=f"ohlcv {symbol} {timeframe}", kind=CollectorKind.OHLCV,
                application=collector_application(), url=settings.COLLECTOR_OHLCV_URL,
                price_path=settings.COLLECTOR_OHLCV_PRICE_PATH, symbol=symbol,
                timeframe=timeframe, interval_seconds=settings.COLLECTOR_OHLCV_INTERVAL_SECONDS,
            )  # fmt: skip
    except IntegrityError:
        return found.get()


# --- runs ---------------------------------------------------------------------------------------


def collector_run_start(*, actor, collector: Collector) -> CollectorRun:
    """Start a run (its first execution is due at once). Raises RunAlreadyRunning when the
    collector has a running run: the partial unique index decides, so of two racing starts
    exactly one wins; CollectorDisabled for a disabled collector."""
    if not collector.enabled:
        raise CollectorDisabled(f"collector {collector} is disabled")
    now = timezone.now()
    try:
        with transaction.atomic():
            run = CollectorRun.objects.create(
                collector=collector, status=RunStatus.RUNNING, started_at=now, next_run_at=now,
                started_by=actor if actor is not None and actor.is_authenticated else None,
            )  # fmt: skip
            audit_record(actor=actor, action=AuditAction.ACTION, instance=run, verb="start",
                         changes={"collector": [None, collector.pk]})  # fmt: skip
    except IntegrityError:
        running = CollectorRun.objects.filter(collector=collector, status=RunStatus.RUNNING)
        existing = running.first()
        if existing is None:  # it stopped in between: the caller may simply retry
            raise
        raise RunAlreadyRunning(existing) from None
    return run


@transaction.atomic
def collector_run_stop(*, actor, run: CollectorRun) -> bool:
    """Stop a running run; False when it was not running (already stopped, or dead). An
    execution in flight finds its claim gone and writes nothing."""
    now = timezone.now()
    stopped = CollectorRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        status=RunStatus.STOPPED, stopped_at=now, claimed_slot=None, lease_until=None
    )
    if stopped:
        run.refresh_from_db()
        audit_record(actor=actor, action=AuditAction.ACTION, instance=run, verb="stop")
    return bool(stopped)


@transaction.atomic
def collector_runs_stop_by_pid(*, actor, pid: int) -> list[CollectorRun]:
    """Stop every running run last executed by worker process `pid` (the seed's stop body)."""
    ids = list(
        CollectorRun.objects.filter(status=RunStatus.RUNNING, pid=pid).values_list("pk", flat=True)
    )
    runs = CollectorRun.objects.filter(pk__in=ids).order_by("pk")
    return [run for run in runs if collector_run_stop(actor=actor, run=run)]


def _fail(run_ids: Sequence[int], reasons: dict[int, str], now: datetime) -> list[int]:
    marked = []
    for run_id in run_ids:
        if CollectorRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.ERROR, stopped_at=now, claimed_slot=None, lease_until=None,
            last_error=reasons[run_id][:MAX_ERROR_CHARS], last_error_at=now,
        ):  # fmt: skip
            marked.append(run_id)
    return marked


def process_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def dead_reason(run: CollectorRun, now: datetime) -> str:
    """Why a running run is dead ('' when it is not): no heartbeat within its allowance, or
    its last worker ran on this host and that process is gone while an execution was due."""
    collector = run.collector
    seen = run.last_heartbeat_at or run.started_at
    silent = now - seen
    allowance = collector.heartbeat_allowance()
    if silent > allowance:
        return (
            f"no heartbeat for {silent.total_seconds():.0f} s (allowance "
            f"{allowance.total_seconds():.0f} s): no worker is executing this run"
        )
    # Past the takeover time another worker would have executed the run: when the process
    # that last did is gone, nobody is executing it.
    takeover = timedelta(seconds=collector.interval_seconds + collector.lease_seconds() + 2)
    if run.host == HOST and run.pid and silent > takeover and process_gone(run.pid):
        return (
            f"worker process {run.pid} on {run.host} is gone and no other worker executed the "
            f"run for {silent.total_seconds():.0f} s"
        )
    return ""


@transaction.atomic
def collector_runs_mark_dead(*, now: datetime | None = None) -> list[int]:
    """Mark running runs that are dead as `error`, with the reason; returns their ids."""
    now = now or timezone.now()
    running = CollectorRun.objects.filter(status=RunStatus.RUNNING).select_related("collector")
    reasons = {run.pk: why for run in running if (why := dead_reason(run, now))}
    return _fail(sorted(reasons), reasons, now)


def collector_runs_cleanup(*, now: datetime | None = None) -> int:
    """Delete stopped runs stopped more than COLLECTOR_RUN_RETENTION_DAYS ago (the seed's
    cleanupOldCollectors). Runs in error stay: someone should look at them first."""
    now = now or timezone.now()
    horizon = now - timedelta(days=settings.COLLECTOR_RUN_RETENTION_DAYS)
    deleted, _ = CollectorRun.objects.filter(
        status=RunStatus.STOPPED, stopped_at__lt=horizon
    ).delete()
    return deleted


# --- dispatch: claims with leases, as for check slots --------------------------------------------


@dataclass(frozen=True)
class Slot:
    """One execution of a run: the run and the time it is due."""

    run_id: int
    due: datetime

    def as_message(self) -> list:
        return [self.run_id, self.due.isoformat()]

    @classmethod
    def from_message(cls, message: Sequence) -> Slot:
        return cls(int(message[0]), datetime.fromisoformat(message[1]))


def lease_for(collector: Collector, slot: datetime) -> datetime:
    return slot + timedelta(seconds=collector.queued_lease_seconds())


def latest_slot(due: datetime, interval: timedelta, now: datetime) -> datetime:
    """The last slot of the run's grid (from `due`, every `interval`) at or before `now`:
    a run that fell behind runs its latest slot, not a burst of old ones."""
    if due >= now:
        return due
    return due + ((now - due) // interval) * interval


def collector_runs_claim_due(
    *, now: datetime | None = None, lookahead: timedelta = timedelta(seconds=1), limit: int = 5000
) -> list[Slot]:
    """Claim the due execution of every running run that holds no claim, and move its next
    due time one interval on: SKIP LOCKED lets several dispatchers run without taking the same
    run, and the claim (with its lease) is what a killed worker leaves behind."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            CollectorRun.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=RunStatus.RUNNING, next_run_at__lte=now + lookahead,
                    claimed_slot__isnull=True, collector__enabled=True)
            .select_related("collector")
            .order_by("next_run_at")[:limit]
        )  # fmt: skip
        slots = []
        for run in due:
            interval = timedelta(seconds=run.collector.interval_seconds)
            slot = latest_slot(run.next_run_at, interval, now)
            CollectorRun.objects.filter(pk=run.pk).update(
                claimed_slot=slot, lease_until=lease_for(run.collector, slot), attempts=1,
                next_run_at=slot + interval,
            )  # fmt: skip
            slots.append(Slot(run.pk, slot))
    return slots


def collector_runs_reclaim_expired(*, now: datetime | None = None, limit: int = 5000) -> list[Slot]:
    """Claims whose lease ran out belong to an execution no worker finished (it was killed):
    hand the slot out once more while the run's next slot is not due yet; otherwise drop the
    claim, and the next slot is claimed as usual."""
    now = now or timezone.now()
    with transaction.atomic():
        expired = list(
            CollectorRun.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=RunStatus.RUNNING, lease_until__lt=now)
            .select_related("collector")
            .order_by("lease_until")[:limit]
        )
        slots = []
        for run in expired:
            retry = run.attempts < MAX_CLAIM_ATTEMPTS and run.next_run_at > now
            claim = run.claimed_slot if retry else None
            CollectorRun.objects.filter(pk=run.pk).update(
                claimed_slot=claim, attempts=F("attempts") + 1 if retry else 0,
                lease_until=lease_for(run.collector, now) if retry else None,
            )  # fmt: skip
            if retry:
                slots.append(Slot(run.pk, claim))
    return slots


# --- recording executions -----------------------------------------------------------------------


@dataclass
class Execution:
    """What a worker did for one slot."""

    slot: Slot
    reading: Reading
    started_at: datetime


def collector_executions_begin(*, slots: Sequence[Slot], runs: Mapping[int, CollectorRun]) -> None:
    """Record that this worker process took these slots: host, PID, a heartbeat, and a lease
    counted from now (the worker holds each for its timeout + LEASE_GRACE_SECONDS)."""
    now, pid = timezone.now(), os.getpid()
    for slot in slots:
        CollectorRun.objects.filter(
            pk=slot.run_id, claimed_slot=slot.due, status=RunStatus.RUNNING
        ).update(
            host=HOST, pid=pid, last_heartbeat_at=now,
            lease_until=now + timedelta(seconds=runs[slot.run_id].collector.lease_seconds()),
        )  # fmt: skip


def collector_executions_record(*, executions: Sequence[Execution]) -> list[int]:
    """Store the points of each execution whose claim this worker still holds, release the
    claim and update the run's counters, all in one transaction. An execution whose claim is
    gone (the run stopped, or another worker finished the same slot first) writes nothing, so
    an execution delivered twice is stored once. Returns the ids of the runs recorded."""
    if not executions:
        return []
    days = {to_us(e.started_at) // storage.DAY_US for e in executions}
    days |= {p.time_us // storage.DAY_US for e in executions for p in e.reading.points if p.time_us}
    storage.ensure_days(METRIC_POINTS, days)
    by_run = {e.slot.run_id: e for e in executions}
    now, pid = timezone.now(), os.getpid()
    with transaction.atomic():
        owned = (
            CollectorRun.objects.select_for_update(of=("self",))
            .select_related("collector__application")
            .filter(pk__in=sorted(by_run), status=RunStatus.RUNNING)
            .order_by("pk")
        )
        runs = [run for run in owned if run.claimed_slot == by_run[run.pk].slot.due]
        stored = _ingest(runs, by_run, now)
        for run in runs:
            _record_one(run, by_run[run.pk], now, pid, *stored.get(run.pk, (0, "")))
    return [run.pk for run in runs]


def _ingest(
    runs: Sequence[CollectorRun], by_run: Mapping[int, Execution], now: datetime
) -> dict[int, tuple[int, str]]:
    """Store the points of the runs, one ingestion per application (one COPY, not one per
    run); returns {run id: (samples stored, refusal message)}. Refusals (a series breaking a
    limit) cannot be told apart by run: each run of an application that had some counts its
    share of what was stored and carries the refusal message."""
    by_application: dict[int, list[CollectorRun]] = {}
    for run in runs:
        if by_run[run.pk].reading.points:
            by_application.setdefault(run.collector.application_id, []).append(run)
    stored = {}
    for group in by_application.values():
        points = [point for run in group for point in by_run[run.pk].reading.points]
        result = metric_points_ingest(
            application=group[0].collector.application, points=points, now_us=to_us(now)
        )
        error, share = "", 1.0
        if result.rejected:
            error = f"{result.rejected} of {len(points)} samples refused: "
            error += "; ".join(result.examples[:3])
            share = result.accepted / len(points)
        for run in group:
            count = len(by_run[run.pk].reading.points)
            stored[run.pk] = (count if share == 1.0 else round(count * share), error)
    return stored


def _record_one(
    run: CollectorRun, execution: Execution, now: datetime, pid: int, accepted: int, refused: str
) -> None:
    reading = execution.reading
    error = reading.error or refused
    fields: dict[str, Any] = {
        "claimed_slot": None, "lease_until": None, "attempts": 0, "host": HOST, "pid": pid,
        "last_heartbeat_at": now, "samples": F("samples") + accepted,
        "executions": F("executions") + 1, "last_slot": execution.slot.due,
        "last_lag_ms": (execution.started_at - execution.slot.due).total_seconds() * 1000,
    }  # fmt: skip
    if reading.state is not None:
        fields["state"] = reading.state
    if error:
        fields.update(
            consecutive_failures=F("consecutive_failures") + 1,
            last_error=error[:MAX_ERROR_CHARS], last_error_at=now,
        )  # fmt: skip
    else:
        fields["consecutive_failures"] = 0
    CollectorRun.objects.filter(pk=run.pk).update(**fields)


def started_at_of(started: float) -> datetime:
    return from_us(int(started * 1_000_000))


__all__ = [
    "CollectorDisabled",
    "Execution",
    "RunAlreadyRunning",
    "Slot",
    "collector_create",
    "collector_delete",
    "collector_executions_begin",
    "collector_executions_record",
    "collector_for_symbol",
    "collector_run_start",
    "collector_run_stop",
    "collector_runs_claim_due",
    "collector_runs_cleanup",
    "collector_runs_mark_dead",
    "collector_runs_reclaim_expired",
    "collector_runs_stop_by_pid",
    "collector_update",
]
