"""Writes of the services app: configuration, dispatch of due checks, recording of results."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from croniter import CroniterError
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts.actions import audit_create, audit_delete, audit_record, audit_update
from accounts.audit import snapshot
from accounts.choices import AuditAction
from noc.models import RollupWatermark
from noc.timeseries import partitions
from noc.timeseries.rollups import is_native, mark_dirty
from services import schedule, signals
from services.choices import CheckKind, ResultStatus, ServiceStatus
from services.models import CheckClaim, CheckGap, CheckResult, MaintenanceWindow, Service
from services.schedule import MAX_SLOT_AGE
from services.timeseries import (
    CHECK_RESULTS,
    CHECK_ROLLUP,
    CHECK_ROLLUP_10MIN,
    CHECK_ROLLUP_DAILY,
    CHECK_ROLLUP_HOURLY,
)

logger = logging.getLogger(__name__)

SCHEDULE_FIELDS = ("interval_seconds", "cron", "enabled", "kind")
# Written by dispatch, recording and pings, never by a configuration change.
RUNTIME_STATE = (
    "status", "last_checked_at", "last_slot", "last_response_time_ms", "last_status_code",
    "last_error", "consecutive_failures", "consecutive_successes", "next_check_at",
    "last_ping_at", "last_start_at",
)  # fmt: skip
MAX_CLAIM_ATTEMPTS = 2
# A dispatched batch reaching a worker later than this after its slot was delivered again by
# the broker (a worker restarted): its slots are recorded missed, not run and back-dated. Above
# the longest lease (a 240 s check + NOC_CLAIM_GRACE_SECONDS) plus a retry's queueing.
MAX_RUN_DELAY = timedelta(minutes=15)


# --- configuration ----------------------------------------------------------------------------


def initial_next_check(service: Service, now: datetime) -> datetime | None:
    """Spread a fleet on one interval over that interval, so it does not fire on one second."""
    if not service.enabled or service.kind == CheckKind.PUSH:
        return None
    if service.cron:
        return service.next_slot_after(now)
    return now + timedelta(seconds=random.uniform(0, service.interval_seconds or 60))


@transaction.atomic
def service_create(*, actor, **fields: Any) -> Service:
    service = Service(**fields)
    service.full_clean()
    service.status = ServiceStatus.UNKNOWN if service.enabled else ServiceStatus.PAUSED
    service.next_check_at = initial_next_check(service, timezone.now())
    service.save(force_insert=True)
    audit_create(actor=actor, instance=service)
    return service


@transaction.atomic
def service_update(*, actor, service: Service, **fields: Any) -> Service:
    stored = Service.objects.select_for_update().get(pk=service.pk)
    before = snapshot(stored)
    # The caller's copy was read before the lock: keep the state checks and pings wrote since.
    for name in RUNTIME_STATE:
        setattr(service, name, getattr(stored, name))
    for name, value in fields.items():
        setattr(service, name, value)
    service.full_clean()
    # Only a schedule that really changed is redrawn: a PUT or an /enable/ repeating the stored
    # values must not move the next check (nor re-randomize its phase).
    if any(getattr(service, name) != getattr(stored, name) for name in SCHEDULE_FIELDS):
        now = timezone.now()
        service.next_check_at = initial_next_check(service, now)
        if not service.enabled:
            service.status = ServiceStatus.PAUSED
        elif service.status == ServiceStatus.PAUSED:
            service.status = ServiceStatus.UNKNOWN
        if _watched_push(service) and not _watched_push(stored) and service.last_ping_at:
            # A push service enabled again starts a new period + grace from now: the job was
            # not expected to ping while paused, so its old last ping is no deadline.
            service.last_ping_at = now
    service.save()
    audit_update(actor=actor, instance=service, before=before)
    return service


def _watched_push(service: Service) -> bool:
    return service.kind == CheckKind.PUSH and service.enabled


def service_set_enabled(*, actor, service: Service, enabled: bool) -> Service:
    return service_update(actor=actor, service=service, enabled=enabled)


@transaction.atomic
def service_delete(*, actor, service: Service) -> None:
    # The service's lock first, then the rollups' watermarks: the order recording takes them.
    list(Service.objects.select_for_update().filter(pk=service.pk).values_list("pk"))
    audit_delete(actor=actor, instance=service)
    with connection.cursor() as cursor:
        # Results have no FK (a partitioned time series); remove them with the service.
        cursor.execute("DELETE FROM services_checkresult WHERE service_id = %s", [service.pk])
    _delete_rollups(service.pk)
    service.delete()


def _delete_rollups(service_id: str) -> None:
    """Native rollups are plain tables: delete the service's rows, or a new service with the
    same id would inherit its uptime. Holding the watermarks (a refresh holds its own while it
    writes) keeps a concurrent refresh from writing them back.

    On TimescaleDB they are continuous aggregates, whose materialization cannot be deleted
    from, and refresh_continuous_aggregate() is neither per service nor allowed inside a
    transaction: they are left alone. The raw rows are gone, so real-time reads of recent
    buckets and any later refresh over a range no longer count them; only buckets already
    materialized and outside the refresh policy's window keep the old counts until retention
    drops them. The daily and 10-minute rollups do not exist there (native only)."""
    native = [
        r.name
        for r in (CHECK_ROLLUP, CHECK_ROLLUP_HOURLY, CHECK_ROLLUP_DAILY, CHECK_ROLLUP_10MIN)
        if is_native(r)
    ]
    if not native:
        return
    list(RollupWatermark.objects.select_for_update().filter(name__in=native).order_by("name"))
    with connection.cursor() as cursor:
        for table in native:
            cursor.execute(f"DELETE FROM {table} WHERE service_id = %s", [service_id])


@transaction.atomic
def maintenance_window_save(
    *, actor, window: MaintenanceWindow, services: Iterable[Service] | None = None
):
    creating = window.pk is None
    before = None if creating else snapshot(MaintenanceWindow.objects.get(pk=window.pk))
    window.full_clean()
    window.save()
    if services is not None:
        window.services.set(services)
    if creating:
        audit_create(actor=actor, instance=window)
    else:
        audit_update(actor=actor, instance=window, before=before)
    return window


# --- dispatch ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    service_id: str
    due: datetime

    def as_message(self) -> list[str]:
        return [self.service_id, self.due.isoformat()]

    @classmethod
    def from_message(cls, message: Sequence[str]) -> Slot:
        return cls(message[0], datetime.fromisoformat(message[1]))


def lease_for(service: Service, slot: datetime) -> datetime:
    return lease_until(slot, service.timeout_seconds, service.retries)


def lease_until(slot: datetime, timeout_seconds: float, retries: int) -> datetime:
    """When a claim of `slot` runs out: every attempt's timeout, then the grace."""
    grace = timedelta(seconds=settings.NOC_CLAIM_GRACE_SECONDS)
    return slot + timedelta(seconds=timeout_seconds * (retries + 1)) + grace


CLAIM_FIELDS = (
    "id", "next_check_at", "interval_seconds", "cron", "timeout_seconds", "retries", "created_at",
)  # fmt: skip


DUE_SERVICES = """
    SELECT id, next_check_at, interval_seconds, cron, timeout_seconds, retries
    FROM services_service
    WHERE enabled AND NOT kind = 'push' AND next_check_at <= %b
    ORDER BY next_check_at LIMIT %b
    FOR UPDATE SKIP LOCKED
"""
INSERT_CLAIMS = """
    INSERT INTO services_checkclaim (service_id, slot, lease_until, attempts)
    SELECT c.service_id, c.slot, c.lease_until, 1
    FROM unnest(%b::varchar[], %b::timestamptz[], %b::timestamptz[])
        AS c(service_id, slot, lease_until)
    ON CONFLICT DO NOTHING
"""


def checks_claim_due(
    *, now: datetime | None = None, lookahead: timedelta = timedelta(seconds=1), limit: int = 5000
) -> list[Slot]:
    """Claim services due up to now + lookahead, advance their schedule and record a claim per
    slot, all in one transaction. SKIP LOCKED lets several dispatchers run at once without
    taking the same service; the claim is what makes a lost batch visible later.

    A service claimed late (the stack or PostgreSQL was down, the dispatcher fell behind) runs
    only its latest slot, if that is recent enough (schedule.plan_claim); the slots before it
    become a CheckGap, written as `missed` results by check_gaps_record, and its next due time
    stays on its own grid, so a fleet keeps its phases through any outage.

    The hot path of dispatch: an interval service claimed on time (nearly all of them) is
    planned from its row's values (schedule.on_time); the others are loaded as services and
    planned by schedule.plan_claim."""
    now = now or timezone.now()
    with transaction.atomic(), _bound_cursor() as cursor:
        cursor.execute(DUE_SERVICES, [now + lookahead, limit])
        rows = cursor.fetchall()
        if not rows:
            return []
        planned: dict[str, tuple[datetime | None, datetime | None]] = {}  # id: (run, next)
        leases: dict[str, datetime] = {}
        for service_id, due, interval, cron, timeout, retries in rows:
            step = schedule.on_time(due, interval, cron, now)
            if step is not None:
                planned[service_id] = (due, due + step)
                leases[service_id] = lease_until(due, timeout, retries)
        late = [row[0] for row in rows if row[0] not in planned]
        if late:
            services = Service.objects.only(*CLAIM_FIELDS).in_bulk(late)
            plans = {i: _plan_claim(services[i], now) for i in late}
            for i, plan in plans.items():
                planned[i] = (plan.run, plan.next)
                if plan.run is not None:
                    leases[i] = lease_for(services[i], plan.run)
            _open_gaps([services[i] for i in late], [plans[i] for i in late])
        ids = [row[0] for row in rows]
        slots = [Slot(i, planned[i][0]) for i in ids if planned[i][0] is not None]
        cursor.execute(ADVANCE_SCHEDULES, [ids, [planned[i][1] for i in ids]])
        cursor.execute(
            INSERT_CLAIMS,
            [
                [s.service_id for s in slots],
                [s.due for s in slots],
                [leases[s.service_id] for s in slots],
            ],
        )
    return slots


def _plan_claim(service: Service, now: datetime) -> schedule.Plan:
    plan = schedule.plan_claim(service, now)
    if plan.next is None:
        # A cron that never fires again (stored before validation refused such crons, or a
        # year that has passed): this slot runs, then the service is not due again until its
        # schedule is fixed. One such row must not stop dispatching for every service.
        logger.warning("service %s has no next slot; not scheduled again", service.id)
    return plan


ADVANCE_SCHEDULES = """
    UPDATE services_service s SET next_check_at = u.next
    FROM unnest(%b::varchar[], %b::timestamptz[]) AS u(id, next) WHERE s.id = u.id
"""


def _open_gaps(due: list[Service], plans: list[schedule.Plan]) -> None:
    gaps = [
        CheckGap(
            service_id=service.id,
            first_slot=plan.gap_from,
            until=plan.gap_until,
            step_seconds=None if service.cron else service.interval_seconds or 60,
            cron=service.cron,
        )
        for service, plan in zip(due, plans, strict=True)
        if plan.gap_from is not None
    ]
    if gaps:
        CheckGap.objects.bulk_create(gaps)


# Written per dispatcher run at most: a long outage of a big fleet is worked off over several
# runs instead of one transaction that would outlive the dispatch task's time limit.
GAP_ROWS_PER_RUN = 50_000
GAP_ERROR = (
    "missed: not dispatched in time (the stack, PostgreSQL or the broker was down, "
    "or the dispatcher fell behind)"
)
INSERT_GAP_SLOTS = """
    INSERT INTO services_checkresult
        (service_id, time, started_at, status, response_time_ms, status_code, error, details,
         in_maintenance)
    SELECT g.service_id, g.first_slot + make_interval(secs => g.step * k), NULL, 'missed',
           NULL, NULL, %(error)s, '{}'::jsonb, false
    FROM unnest(%(ids)s::varchar[], %(firsts)s::timestamptz[], %(steps)s::float8[],
                %(counts)s::int[]) AS g(service_id, first_slot, step, n)
    CROSS JOIN LATERAL generate_series(0, g.n - 1) AS k
    ON CONFLICT (service_id, time) DO NOTHING
"""


def check_gaps_record(*, budget: int = GAP_ROWS_PER_RUN) -> int:
    """Write the slots of open gaps as `missed` results, at most `budget` rows, oldest gaps
    first; a gap written in full is deleted, a partly written one starts where this run
    stopped. Interval gaps are expanded by PostgreSQL (generate_series over one unnest), so
    the cost per missed slot is one row of one statement; cron gaps, rare, are enumerated here.
    A slot that already has a result keeps it (ON CONFLICT DO NOTHING). Returns the number of
    slots handled."""
    with transaction.atomic():
        gaps = list(CheckGap.objects.select_for_update(skip_locked=True).order_by("id")[:1000])
        if not gaps:
            return 0
        left, done, moved = budget, [], []
        interval: list[tuple[str, datetime, int, int]] = []  # service, first, step, count
        cron: list[tuple[str, datetime]] = []
        for gap in gaps:
            if left <= 0:
                break
            if gap.step_seconds:
                step = timedelta(seconds=gap.step_seconds)
                count = min(-((gap.first_slot - gap.until) // step), left)
                interval.append((gap.service_id, gap.first_slot, gap.step_seconds, count))
                rest = gap.first_slot + count * step
            else:
                found = schedule.cron_slots(gap.cron, gap.first_slot, gap.until, left + 1)
                count = min(len(found), left)
                cron += [(gap.service_id, moment) for moment in found[:count]]
                rest = found[count] if len(found) > count else gap.until
            left -= count
            if rest >= gap.until:
                done.append(gap.pk)
            else:
                gap.first_slot = rest
                moved.append(gap)
        _insert_gap_slots(interval, cron)
        CheckGap.objects.filter(pk__in=done).delete()
        CheckGap.objects.bulk_update(moved, ["first_slot"])
    return budget - left


def _insert_gap_slots(
    interval: list[tuple[str, datetime, int, int]], cron: list[tuple[str, datetime]]
) -> None:
    rows = interval + [(service_id, moment, 0, 1) for service_id, moment in cron]
    if not rows:
        return
    params = {
        "error": GAP_ERROR,
        "ids": [service_id for service_id, _, _, _ in rows],
        "firsts": [first for _, first, _, _ in rows],
        "steps": [float(step) for _, _, step, _ in rows],
        "counts": [count for _, _, _, count in rows],
    }
    earliest = min(first for _, first, _, _ in rows)
    latest = max(first + timedelta(seconds=step * (count - 1)) for _, first, step, count in rows)
    _execute_with_partitions(INSERT_GAP_SLOTS, params, earliest, latest)


def _execute_with_partitions(sql: str, params, earliest: datetime, latest: datetime) -> None:
    """Run an insert into services_checkresult; where it reaches a day that has no partition
    yet (or any more), create the partitions and run it again."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            return
    except Exception as exc:
        if "no partition of relation" not in str(exc):
            raise
    partitions.ensure(CHECK_RESULTS, earliest, latest + timedelta(seconds=1))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def checks_reclaim_expired(*, now: datetime | None = None, limit: int = 5000) -> list[Slot]:
    """Claims whose lease ran out belong to a batch no worker finished: hand the slot out again
    while it is still its service's latest slot, or, after MAX_CLAIM_ATTEMPTS or once the
    service's next slot is due, record it as missed. Nothing is dropped silently, and nothing
    is run off its grid. A claim whose lease ran out more than MAX_SLOT_AGE ago (no reclaimer
    ran for a while) is missed too. (Judged from the lease, not the slot: the slowest check
    allowed holds its lease for 5 minutes and still gets its retry.)"""
    now = now or timezone.now()
    with transaction.atomic():
        expired = list(
            CheckClaim.objects.select_for_update(skip_locked=True)
            .filter(lease_until__lt=now)
            .select_related("service")
            .order_by("lease_until")[:limit]
        )
        retry, missed = [], []
        for claim in expired:
            why = _why_not_retried(claim, now)
            if why:
                missed.append(missed_observation(claim.service_id, claim.slot, why))
            else:
                retry.append(claim)
        for claim in retry:
            CheckClaim.objects.filter(service_id=claim.service_id, slot=claim.slot).update(
                attempts=claim.attempts + 1, lease_until=lease_for(claim.service, now)
            )
        if missed:
            check_results_record(results=missed)
    return [Slot(c.service_id, c.slot) for c in retry]


def _why_not_retried(claim: CheckClaim, now: datetime) -> str:
    """Why an expired claim is recorded missed rather than dispatched again ('' to retry)."""
    if claim.lease_until < now - MAX_SLOT_AGE:
        return f"its lease ran out over {MAX_SLOT_AGE} before it was reclaimed"
    if claim.attempts >= MAX_CLAIM_ATTEMPTS:
        return f"no worker finished this check after {claim.attempts} attempts"
    if schedule.superseded(claim.service, claim.slot, now):
        return "no worker finished this check before the service's next slot was due"
    return ""


def missed_observation(service_id: str, due: datetime, why: str) -> Observation:
    """A slot recorded as missed: nothing ran it (and nothing will)."""
    return Observation(
        service_id=service_id,
        due=due,
        started_at=None,
        status=ResultStatus.MISSED,
        error=f"missed: {why}",
    )


# --- recording --------------------------------------------------------------------------------


@dataclass
class Observation:
    """One check outcome to record for the slot it was due."""

    service_id: str
    due: datetime
    started_at: datetime | None
    status: str
    response_time_ms: float | None = None
    status_code: int | None = None
    error: str = ""
    details: dict | None = None


class ServiceState:
    """The columns of a service that recording reads and writes (its check state), and the
    thresholds incident evaluation compares them with: a batch locks and updates these rows
    without building 200 model instances of every column."""

    __slots__ = COLUMNS = (
        "id", "enabled", "status", "last_checked_at", "last_slot", "last_response_time_ms",
        "last_status_code", "last_error", "consecutive_failures", "consecutive_successes",
        "failure_threshold", "success_threshold",
    )  # fmt: skip

    def __init__(self, *values) -> None:
        for name, value in zip(self.COLUMNS, values, strict=True):
            setattr(self, name, value)


@dataclass(eq=False)
class ResultRow:
    """One result row as written to services_checkresult (CheckResult's fields)."""

    service_id: str
    time: datetime
    started_at: datetime | None
    status: str
    response_time_ms: float | None
    status_code: int | None
    error: str
    details: dict
    in_maintenance: bool


class Recorded:
    """What incident evaluation receives for each newly recorded result: the service's state
    after the batch, the row, and the status before it. `service` and `result` are the model
    instances, built on first use (most results never need them)."""

    __slots__ = ("_result", "_service", "previous_status", "row", "state")

    def __init__(self, state: ServiceState, row: ResultRow, previous_status: str) -> None:
        self.state, self.row, self.previous_status = state, row, previous_status
        self._service: Service | None = None
        self._result: CheckResult | None = None

    @property
    def service_id(self) -> str:
        return self.state.id

    @property
    def service(self) -> Service:
        if self._service is None:
            self._service = Service.objects.get(pk=self.state.id)
        return self._service

    @service.setter
    def service(self, service: Service) -> None:
        self._service = service

    @property
    def result(self) -> CheckResult:
        if self._result is None:
            self._result = CheckResult(**self.row.__dict__)
        return self._result


def check_results_record(*, results: Sequence[Observation], claimed: bool = True) -> list[Recorded]:
    """Insert results (a slot already recorded is skipped: re-delivered batches are harmless),
    update each service's last-check state, release the claims, and tell incident evaluation.

    The hot path of the check pipeline (every check of the fleet goes through here, in
    batches): plain rows and psycopg's server-binding cursor, whose array parameters travel
    in binary and whose statements are prepared once per connection."""
    if not results:
        return []
    with transaction.atomic(), _bound_cursor() as cursor:
        states = _lock_states(cursor, {r.service_id for r in results})
        maintenance = _maintenance_lookup(cursor, states.keys(), [r.due for r in results])
        rows = [
            _result_row(r, maintenance(r.service_id, r.due))
            for r in results
            if r.service_id in states
        ]
        inserted = _insert_results(cursor, rows)
        recorded = _apply_state(
            cursor, states, [row for row in rows if (row.service_id, row.time) in inserted]
        )
        if claimed:
            _release_claims(cursor, results)
        oldest = min(r.due for r in results)
        if oldest < timezone.now() - timedelta(minutes=1):
            mark_dirty(CHECK_RESULTS.rollups, oldest)
        if recorded:
            signals.check_results_recorded.send(sender=CheckResult, recorded=recorded)
    return recorded


def _bound_cursor():
    """psycopg's own (server-side binding) cursor on Django's connection, in its transaction.
    Django's cursors quote every parameter into the SQL text in Python; for arrays of a
    batch's 200 values that was a third of recording's CPU. The statements below bind with
    %b (binary): an array then holds values of one Python type (see _float)."""
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


LOCK_STATES = f"""
    SELECT {", ".join(ServiceState.COLUMNS)} FROM services_service
    WHERE id = ANY(%b::varchar[]) ORDER BY id FOR UPDATE
"""


def _lock_states(cursor, ids: set[str]) -> dict[str, ServiceState]:
    # One lock order for every writer (by id) so two batches never deadlock.
    cursor.execute(LOCK_STATES, [sorted(ids)])
    return {row[0]: ServiceState(*row) for row in cursor.fetchall()}


MAINTENANCE_WINDOWS = """
    SELECT ws.service_id, w.starts_at, w.ends_at, w.cron, w.duration_minutes
    FROM services_maintenancewindow w
    JOIN services_maintenancewindow_services ws ON ws.maintenancewindow_id = w.id
    WHERE ws.service_id = ANY(%b::varchar[])
      AND (w.ends_at IS NULL OR w.ends_at >= %b) AND (w.starts_at IS NULL OR w.starts_at <= %b)
"""


def _maintenance_lookup(cursor, service_ids, moments: list[datetime]):
    """Whether a service was in a maintenance window at a moment: the windows of the batch's
    services that overlap its moments, read in one query."""
    cursor.execute(MAINTENANCE_WINDOWS, [list(service_ids), min(moments), max(moments)])
    by_service: dict[str, list[MaintenanceWindow]] = {}
    for service_id, starts_at, ends_at, cron, duration in cursor.fetchall():
        window = MaintenanceWindow(
            starts_at=starts_at, ends_at=ends_at, cron=cron, duration_minutes=duration
        )
        by_service.setdefault(service_id, []).append(window)
    if not by_service:
        return lambda service_id, moment: False
    return lambda service_id, moment: any(w.covers(moment) for w in by_service.get(service_id, []))


def _result_row(observation: Observation, in_maintenance: bool) -> ResultRow:
    return ResultRow(
        service_id=observation.service_id,
        time=observation.due,
        started_at=observation.started_at,
        status=observation.status,
        response_time_ms=observation.response_time_ms,
        status_code=observation.status_code,
        error=(observation.error or "")[:500],
        details=observation.details or {},
        in_maintenance=in_maintenance,
    )


INSERT_RESULTS = """
    INSERT INTO services_checkresult
        (service_id, time, started_at, status, response_time_ms, status_code, error, details,
         in_maintenance)
    SELECT * FROM unnest(%b::varchar[], %b::timestamptz[], %b::timestamptz[], %b::varchar[],
                         %b::float8[], %b::int[], %b::varchar[], %b::jsonb[], %b::bool[])
    ON CONFLICT (service_id, time) DO NOTHING
    RETURNING service_id, time
"""


def _insert_results(cursor, rows: list[ResultRow]) -> set[tuple[str, datetime]]:
    from psycopg.types.json import Jsonb

    params = [
        [r.service_id for r in rows],
        [r.time for r in rows],
        [r.started_at for r in rows],
        [r.status for r in rows],
        [_float(r.response_time_ms) for r in rows],
        [_int(r.status_code) for r in rows],
        [r.error for r in rows],
        [Jsonb(r.details) for r in rows],
        [r.in_maintenance for r in rows],
    ]
    try:
        with transaction.atomic():
            cursor.execute(INSERT_RESULTS, params)
            return set(cursor.fetchall())
    except Exception as exc:
        if "no partition of relation" not in str(exc):
            raise
    # A slot outside the partitions created so far (backfill, or the maintenance task has not
    # run for days): create them and write again.
    partitions.ensure(
        CHECK_RESULTS, min(r.time for r in rows), max(r.time for r in rows) + timedelta(seconds=1)
    )
    cursor.execute(INSERT_RESULTS, params)
    return set(cursor.fetchall())


def _apply_state(cursor, states: dict[str, ServiceState], rows: list[ResultRow]) -> list[Recorded]:
    recorded = []
    changed: dict[str, ServiceState] = {}
    for row in sorted(rows, key=lambda r: r.time):
        state = states[row.service_id]
        previous = state.status
        if state.last_slot is not None and row.time <= state.last_slot:
            continue  # an older slot arriving late: recorded, but it does not set the state
        _advance_state(state, row)
        changed[state.id] = state
        recorded.append(Recorded(state, row, previous))
    if changed:
        _save_state(cursor, list(changed.values()))
    return recorded


SAVE_STATE = """
    UPDATE services_service s SET
        status = u.status, last_checked_at = u.checked_at, last_slot = u.slot,
        last_response_time_ms = u.response_time_ms, last_status_code = u.status_code,
        last_error = u.error, consecutive_failures = u.failures,
        consecutive_successes = u.successes
    FROM unnest(%b::varchar[], %b::varchar[], %b::timestamptz[], %b::timestamptz[],
                %b::float8[], %b::int[], %b::varchar[], %b::int[], %b::int[])
        AS u(id, status, checked_at, slot, response_time_ms, status_code, error, failures,
             successes)
    WHERE s.id = u.id
"""
SAVED_COLUMNS = (
    "id", "status", "last_checked_at", "last_slot", "last_response_time_ms", "last_status_code",
    "last_error", "consecutive_failures", "consecutive_successes",
)  # fmt: skip


def _save_state(cursor, states: list[ServiceState]) -> None:
    # One statement for the batch: bulk_update's CASE expressions cost more Python than SQL.
    params = [[getattr(s, c) for s in states] for c in SAVED_COLUMNS]
    params[4] = [_float(v) for v in params[4]]  # binary arrays take one type: no int among floats
    params[5] = [_int(v) for v in params[5]]
    cursor.execute(SAVE_STATE, params)


def _advance_state(service: Service | ServiceState, row: ResultRow | CheckResult) -> None:
    if row.status == ResultStatus.MISSED:
        service.last_error = row.error
        service.last_slot = row.time
        return
    failed = row.status == ResultStatus.DOWN
    service.consecutive_failures = service.consecutive_failures + 1 if failed else 0
    service.consecutive_successes = 0 if failed else service.consecutive_successes + 1
    service.last_checked_at = row.started_at or row.time
    service.last_slot = row.time
    service.last_response_time_ms = row.response_time_ms
    service.last_status_code = row.status_code
    service.last_error = row.error
    if not service.enabled:
        service.status = ServiceStatus.PAUSED
    elif row.in_maintenance:
        service.status = ServiceStatus.MAINTENANCE
    else:
        service.status = row.status


def _float(value) -> float | None:
    return None if value is None else float(value)


def _int(value) -> int | None:
    return None if value is None else int(value)


def _release_claims(cursor, results: Sequence[Observation]) -> None:
    cursor.execute(
        "DELETE FROM services_checkclaim c USING unnest(%b::varchar[], %b::timestamptz[]) "
        "AS r(service_id, slot) WHERE c.service_id = r.service_id AND c.slot = r.slot",
        [[r.service_id for r in results], [r.due for r in results]],
    )


# --- push (heartbeat) services ----------------------------------------------------------------


class UnknownPingToken(Exception):
    pass


PING = """
    UPDATE services_service s SET last_ping_at = %s, last_start_at = NULL
    FROM (SELECT id, last_start_at FROM services_service
          WHERE ping_token = %s AND kind = 'push' FOR UPDATE) AS before
    WHERE s.id = before.id
    RETURNING s.id, before.last_start_at
"""


def push_ping_record(
    *, token, outcome: str, now: datetime | None = None, body: str = "", fast: bool = True
) -> str:
    """A monitored job pinged us: `outcome` is success, fail or start (Healthchecks.io's API).
    Returns the service id. Kept to a handful of statements: this is the hot push path.
    `fast=False` skips the one-statement attempt (the caller already made it)."""
    now = now or timezone.now()
    body = body.replace("\x00", "")  # PostgreSQL text and jsonb cannot hold NUL
    if outcome == "success" and fast:
        fast = _push_success_fast(token=token, now=now, body=body)
        if fast is not None:
            return fast
    with transaction.atomic():
        if outcome == "start":
            pinged = Service.objects.filter(ping_token=token, kind=CheckKind.PUSH)
            if not pinged.update(last_start_at=now):
                raise UnknownPingToken(str(token))
            return pinged.values_list("id", flat=True).first()
        with connection.cursor() as cursor:
            cursor.execute(PING, [now, token])
            row = cursor.fetchone()
        if row is None:
            raise UnknownPingToken(str(token))
        service_id, started = row
        check_results_record(
            results=[
                Observation(
                    service_id=service_id,
                    due=now,
                    started_at=now,
                    status=ResultStatus.UP if outcome == "success" else ResultStatus.DOWN,
                    response_time_ms=(now - started).total_seconds() * 1000 if started else None,
                    error="" if outcome == "success" else "the job reported a failure",
                    details={"body": body[:200]} if body else None,
                )
            ],
            claimed=False,
        )
    return service_id


# Success pings to healthy push services, recorded by one prepared statement for any number of
# them (the event-loop front commits the pings that arrive together in one transaction, see
# services/ping_commit.py; a request through Django records its own). It applies only where
# recording has nothing else to do: the service is up with enough consecutive successes (so
# incident evaluation would do nothing), no maintenance window may cover the ping's time (a
# recurring one always sends the ping the general way), and the slot is newer than the last.
# Anything else (a failure, a recovery, maintenance, an unknown token) matches no row, and a
# missing partition or a duplicate time fails the statement: those pings take the general
# path in push_ping_record. Tokens must be distinct within one call; rows are locked in id
# order so that two groups committing at once cannot deadlock. The commit is durable.
PINGS_SUCCESS_FAST = """
WITH pings AS (
    SELECT * FROM unnest(%(tokens)s::uuid[], %(times)s::timestamptz[], %(details)s::jsonb[])
        AS p(token, at, details)),
before AS (
    SELECT s.id, s.last_start_at, p.at, p.details FROM pings p
    JOIN services_service s ON s.ping_token = p.token
    WHERE s.kind = 'push' AND s.enabled AND s.status = 'up'
      AND s.consecutive_successes >= s.success_threshold
      AND (s.last_slot IS NULL OR s.last_slot < p.at)
      AND NOT EXISTS (
        SELECT 1 FROM services_maintenancewindow_services m
        JOIN services_maintenancewindow w ON w.id = m.maintenancewindow_id
        WHERE m.service_id = s.id
          AND (w.starts_at IS NULL OR w.starts_at <= p.at)
          AND (w.ends_at IS NULL OR w.ends_at > p.at))
    ORDER BY s.id
    FOR UPDATE OF s),
pinged AS (
    UPDATE services_service s SET
        last_ping_at = b.at, last_start_at = NULL, last_checked_at = b.at, last_slot = b.at,
        last_response_time_ms = extract(epoch FROM b.at - b.last_start_at) * 1000,
        last_status_code = NULL, last_error = '', consecutive_failures = 0,
        consecutive_successes = s.consecutive_successes + 1
    FROM before b WHERE s.id = b.id
    RETURNING s.id, s.ping_token, b.last_start_at, b.at, b.details),
inserted AS (
    INSERT INTO services_checkresult (service_id, time, started_at, status, response_time_ms,
        status_code, error, details, in_maintenance)
    SELECT id, at, at, 'up', extract(epoch FROM at - last_start_at) * 1000, NULL, '', details,
           false
    FROM pinged
    RETURNING service_id)
SELECT p.ping_token, p.id FROM pinged p JOIN inserted i ON i.service_id = p.id
"""


def push_success_fast_params(pings: Sequence[tuple[UUID, datetime, str]]) -> dict:
    """PINGS_SUCCESS_FAST's parameters for (token, time, body) triples."""
    from psycopg.types.json import Jsonb

    return {
        "tokens": [token for token, _, _ in pings],
        "times": [at for _, at, _ in pings],
        "details": [
            Jsonb({"body": body.replace("\x00", "")[:200]} if body else {}) for _, _, body in pings
        ],
    }


def _push_success_fast(*, token, now: datetime, body: str) -> str | None:
    import psycopg

    try:
        params = push_success_fast_params([(_as_uuid(token), now, body)])
        with transaction.atomic():
            connection.ensure_connection()
            # psycopg's own cursor, so the statement is prepared once per connection.
            with connection.connection.cursor() as cursor:
                cursor.execute(PINGS_SUCCESS_FAST, params, prepare=True)
                row = cursor.fetchone()
    except (ValueError, DatabaseError, psycopg.Error):
        return None
    return None if row is None else row[1]


def _as_uuid(token) -> UUID:
    return token if isinstance(token, UUID) else UUID(str(token))


# The next deadline a silent interval push service misses and that is not yet recorded: the
# first one after its last ping, then one per interval while no ping comes (last_slot is the
# last deadline recorded). Cron services, rare, are left to Python (see _missed_deadlines).
NEXT_DEADLINE = """
    CASE WHEN last_slot IS NULL OR last_slot < {first} THEN {first}
    ELSE {first} + make_interval(secs => ({period} * (floor(extract(epoch FROM last_slot - {first})
                                                      / {period}) + 1))::float8)
    END
""".format(
    first="(last_ping_at + make_interval(secs => coalesce(interval_seconds, 60) + grace_seconds))",
    period="coalesce(interval_seconds, 60)",
)


def push_overdue_record(*, now: datetime | None = None) -> int:
    """Push services whose ping did not arrive by the deadline go down, and stay down with one
    more failure per period the job stays silent (as Healthchecks.io keeps a check down and
    counting), so a silent job reaches its failure threshold. Each deadline is its slot, so a
    second detector run records nothing new. Returns the number of results recorded."""
    now = now or timezone.now()
    # Runs every second: the database finds interval services with a deadline passed and not
    # yet recorded (cron ones, rare, are checked in Python), without locking anything; only
    # the services found overdue are then locked (SKIP LOCKED) and looked at again, so two
    # overlapping runs never record one silence twice and pings are not held up by the scan.
    late = RawSQL(f"cron <> '' OR {NEXT_DEADLINE} <= %s", [now], output_field=BooleanField())
    fields = ("id", "last_ping_at", "last_slot", "grace_seconds", "interval_seconds", "cron")
    watched = Service.objects.filter(
        enabled=True, kind=CheckKind.PUSH, last_ping_at__isnull=False
    ).only("kind", *fields)
    found = [s.id for s in watched.alias(late=late).filter(late=True) if _overdue_deadlines(s, now)]
    if not found:
        return 0
    with transaction.atomic():
        overdue = [
            Observation(
                service_id=service.id,
                due=deadline,
                started_at=now,
                status=ResultStatus.DOWN,
                error=f"no ping since {service.last_ping_at:%Y-%m-%d %H:%M:%S} UTC "
                "(period + grace elapsed)",
            )
            for service in watched.select_for_update(skip_locked=True).filter(pk__in=found)
            for deadline in _overdue_deadlines(service, now)
        ]
        check_results_record(results=overdue)
    return len(overdue)


def _overdue_deadlines(service: Service, now: datetime) -> list[datetime]:
    try:
        return _missed_deadlines(service, now)
    except CroniterError as exc:
        # A cron that no longer fires (its years ran out): nothing is expected any more, and
        # one such service must not stop the detector for every other.
        logger.warning("push service %s has no next deadline (%s)", service.id, exc)
        return []


def _missed_deadlines(service: Service, now: datetime) -> list[datetime]:
    """The deadlines up to now that the job missed and that are not yet recorded, oldest first.
    One further back than MAX_SLOT_AGE (the detector did not run for a while) is recorded at
    now, as the dispatcher does with a stale slot, not weeks back, where no chart, rollup or SLO
    window would look; the series resumes from there."""
    first = service.ping_deadline()
    if first is None:
        return []
    deadline = first
    if service.last_slot is not None and service.last_slot >= first:
        deadline = _deadline_after(service, first, service.last_slot)
    if deadline > now:
        return []
    if deadline < now - MAX_SLOT_AGE:
        return [now]
    missed = []
    while deadline <= now:
        missed.append(deadline)
        deadline = _deadline_after(service, first, deadline)
    return missed


def _deadline_after(service: Service, first: datetime, moment: datetime) -> datetime:
    """The first missed-ping deadline after `moment` (at or after `first`): one period later
    per expected ping, or for a cron job its next firing + grace (as in NEXT_DEADLINE)."""
    if service.cron:
        grace = timedelta(seconds=service.grace_seconds)
        return service.next_slot_after(moment - grace) + grace
    period = timedelta(seconds=service.interval_seconds or 60)
    return first + ((moment - first) // period + 1) * period


def audit_check_now(*, actor, service: Service) -> None:
    audit_record(actor=actor, action=AuditAction.ACTION, instance=service, verb="check_now")
