"""What is monitored and how: services, their check results, rollups and maintenance windows."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from croniter import CroniterError, croniter
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Now

from noc.limits import CHECK_BODY_MAX_CHARS, DESCRIPTION_MAX_CHARS, bounded_text
from services.choices import (
    CheckKind,
    DnsRecordType,
    HttpMethod,
    ResultStatus,
    ServiceStatus,
    Severity,
)


def default_expected_status() -> list[int]:
    return [200]


class Service(models.Model):
    # --- identity
    id = models.SlugField(primary_key=True, max_length=64, help_text="e.g. api-gateway")
    name = models.CharField(max_length=200)
    description = bounded_text(DESCRIPTION_MAX_CHARS, blank=True)
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    critical = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)

    # --- the check
    kind = models.CharField(max_length=8, choices=CheckKind.choices, default=CheckKind.HTTP)
    url = models.URLField(max_length=2000, blank=True)
    method = models.CharField(max_length=8, choices=HttpMethod.choices, default=HttpMethod.GET)
    headers = models.JSONField(default=dict, blank=True)
    body = bounded_text(CHECK_BODY_MAX_CHARS, blank=True)
    follow_redirects = models.BooleanField(default=True)
    verify_tls = models.BooleanField(default=True)
    host = models.CharField(max_length=255, blank=True, help_text="tcp and tls checks")
    port = models.PositiveIntegerField(null=True, blank=True)
    dns_name = models.CharField(max_length=255, blank=True)
    dns_record_type = models.CharField(
        max_length=8, choices=DnsRecordType.choices, default=DnsRecordType.A
    )
    dns_expected = models.CharField(max_length=255, blank=True)
    dns_server = models.CharField(max_length=64, blank=True, help_text="ip or ip:port")
    timeout_seconds = models.FloatField(default=10.0)
    retries = models.PositiveSmallIntegerField(default=0)
    allow_private = models.BooleanField(
        null=True, blank=True, help_text="Override NOC_CHECK_ALLOW_PRIVATE for this service."
    )

    # --- the schedule: an interval, or a cron expression with a seconds field
    interval_seconds = models.PositiveIntegerField(null=True, blank=True, default=60)
    cron = models.CharField(max_length=100, blank=True, help_text="e.g. */30 * * * * *")

    # --- assertions
    expected_status = ArrayField(
        models.PositiveSmallIntegerField(), default=default_expected_status, blank=True
    )
    max_response_time_ms = models.PositiveIntegerField(null=True, blank=True)
    body_contains = models.CharField(max_length=500, blank=True)
    body_not_contains = models.CharField(max_length=500, blank=True)
    json_path = models.CharField(max_length=200, blank=True)
    json_expected = models.JSONField(null=True, blank=True)
    cert_min_days = models.PositiveSmallIntegerField(null=True, blank=True)

    # --- push (heartbeat) checks
    ping_token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    grace_seconds = models.PositiveIntegerField(default=60)
    last_ping_at = models.DateTimeField(null=True, blank=True)
    last_start_at = models.DateTimeField(null=True, blank=True)

    # --- alerting
    failure_threshold = models.PositiveSmallIntegerField(
        default=2, help_text="Consecutive failed checks before an incident opens."
    )
    success_threshold = models.PositiveSmallIntegerField(
        default=1, help_text="Consecutive successful checks before it resolves."
    )
    incident_severity = models.CharField(
        max_length=8,
        choices=Severity.choices,
        blank=True,
        help_text="Default: critical if critical, else high.",
    )

    # --- last-check state, kept on the row for fast reads
    status = models.CharField(
        max_length=12, choices=ServiceStatus.choices, default=ServiceStatus.UNKNOWN
    )
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_slot = models.DateTimeField(
        null=True, blank=True, help_text="Due time of the last recorded check."
    )
    last_response_time_ms = models.FloatField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    consecutive_successes = models.PositiveIntegerField(default=0)
    next_check_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The dispatcher's claim: enabled, scheduled services by due time.
            models.Index(
                fields=["next_check_at"],
                name="service_due_idx",
                condition=models.Q(enabled=True) & ~models.Q(kind="push"),
            ),
            # Missing-ping detection for push services.
            models.Index(
                fields=["last_ping_at"],
                name="service_push_idx",
                condition=models.Q(enabled=True, kind="push"),
            ),
            GinIndex(fields=["tags"], name="service_tags_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(timeout_seconds__gt=0), name="service_timeout_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(interval_seconds__isnull=True)
                | models.Q(interval_seconds__gte=1),
                name="service_interval_min_1s",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from services.validation import validate_service

        validate_service(self)

    @property
    def severity(self) -> str:
        if self.incident_severity:
            return self.incident_severity
        return Severity.CRITICAL if self.critical else Severity.HIGH

    @property
    def period(self) -> timedelta | None:
        """Nominal time between checks (push: the expected ping period)."""
        if self.interval_seconds:
            return timedelta(seconds=self.interval_seconds)
        if self.cron:
            first = croniter(self.cron, datetime(2000, 1, 1), second_at_beginning=True)
            a = first.get_next(datetime)
            return first.get_next(datetime) - a
        return None

    def next_slot_after(self, moment: datetime) -> datetime:
        """The first due time strictly after `moment`."""
        if self.cron:
            return croniter(self.cron, moment, second_at_beginning=True).get_next(datetime)
        return moment + timedelta(seconds=self.interval_seconds or 60)

    def is_due(self, now: datetime) -> bool:
        return self.enabled and self.next_check_at is not None and self.next_check_at <= now

    def ping_deadline(self) -> datetime | None:
        """Push services are down when no ping arrives by the deadline: last ping + interval +
        grace, or for a cron job its next firing after the last ping + grace (Healthchecks.io's
        rule; a fixed period would be wrong for an irregular cron such as 9:00 and 17:00)."""
        if self.kind != CheckKind.PUSH or self.last_ping_at is None:
            return None
        grace = timedelta(seconds=self.grace_seconds)
        return self.next_slot_after(self.last_ping_at) + grace


class CheckResult(models.Model):
    """One check of one service at one due time (the slot): the primary key makes writes
    idempotent, so a batch run twice after a worker died records each slot once."""

    pk = models.CompositePrimaryKey("service_id", "time")
    time = models.DateTimeField(help_text="The slot: when the check was due.")
    # No FK index: the primary key starts with service_id. No constraint: results of a deleted
    # service are removed by service_delete and retention, not row by row.
    service = models.ForeignKey(
        Service, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    started_at = models.DateTimeField(null=True)
    status = models.CharField(max_length=8, choices=ResultStatus.choices)
    response_time_ms = models.FloatField(null=True)
    status_code = models.PositiveSmallIntegerField(null=True)
    error = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True)
    in_maintenance = models.BooleanField(default=False)

    class Meta:
        ordering = ["-time"]
        indexes = [models.Index(fields=["time"], name="checkresult_time_idx")]

    def __str__(self) -> str:
        return f"{self.service_id} {self.time:%Y-%m-%d %H:%M:%S} {self.status}"

    @property
    def lag_ms(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.started_at - self.time).total_seconds() * 1000


class CheckRollup(models.Model):
    """Per-minute rollup of check results (a continuous aggregate on TimescaleDB, a table kept
    by a beat task otherwise). `le_<ms>` columns are cumulative latency histogram counts."""

    pk = models.CompositePrimaryKey("service_id", "bucket")
    bucket = models.DateTimeField()
    service = models.ForeignKey(
        Service, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    n_up = models.IntegerField()
    n_degraded = models.IntegerField()
    n_down = models.IntegerField()
    n_maintenance = models.IntegerField()
    rt_count = models.IntegerField()
    rt_sum = models.FloatField(null=True)
    rt_min = models.FloatField(null=True)
    rt_max = models.FloatField(null=True)
    le_50 = models.IntegerField()
    le_100 = models.IntegerField()
    le_250 = models.IntegerField()
    le_500 = models.IntegerField()
    le_1000 = models.IntegerField()
    le_2500 = models.IntegerField()
    le_5000 = models.IntegerField()
    le_10000 = models.IntegerField()

    class Meta:
        managed = False  # created by services.0002 as a table or a continuous aggregate
        db_table = "services_checkrollup"
        ordering = ["-bucket"]

    def __str__(self) -> str:
        return f"{self.service_id} {self.bucket:%Y-%m-%d %H:%M}"


class CheckClaim(models.Model):
    """A slot handed to a worker and not yet recorded. The dispatcher re-dispatches a claim
    whose lease expired (its worker died) and records it as missed after the last attempt."""

    pk = models.CompositePrimaryKey("service_id", "slot")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, db_index=False, related_name="+")
    slot = models.DateTimeField()
    lease_until = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=1)

    class Meta:
        indexes = [models.Index(fields=["lease_until"], name="checkclaim_lease_idx")]

    def __str__(self) -> str:
        return f"{self.service_id} {self.slot:%H:%M:%S} (attempt {self.attempts})"


class CheckGap(models.Model):
    """Slots of one service that no dispatcher reached in time (the stack was stopped, or
    PostgreSQL or the broker was away): from `first_slot` up to, not including, `until`, on the
    service's schedule of then (every `step_seconds`, or each firing of `cron`). The dispatcher
    writes them as `missed` results in bounded set-based chunks, then deletes the gap."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="+")
    first_slot = models.DateTimeField()
    until = models.DateTimeField()
    step_seconds = models.PositiveIntegerField(null=True)
    cron = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(step_seconds__isnull=False) | ~models.Q(cron=""),
                name="checkgap_has_a_schedule",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} {self.first_slot:%H:%M:%S}..{self.until:%H:%M:%S}"


class MaintenanceWindow(models.Model):
    """Checks still run and are recorded; the status reads maintenance and no incident opens.

    One-off (starts_at..ends_at) or recurring (cron start + duration, within starts_at..ends_at
    when those are set)."""

    name = models.CharField(max_length=200)
    description = bounded_text(DESCRIPTION_MAX_CHARS, blank=True)
    services = models.ManyToManyField(Service, related_name="maintenance_windows")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    cron = models.CharField(
        max_length=100, blank=True, help_text="recurring start, e.g. 0 0 3 * * 0"
    )
    duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["-starts_at", "name"]

    def __str__(self) -> str:
        return self.name

    def covers(self, moment: datetime) -> bool:
        if self.starts_at and moment < self.starts_at:
            return False
        if self.ends_at and moment >= self.ends_at:
            return False
        if not self.cron:
            return self.starts_at is not None
        duration = timedelta(minutes=self.duration_minutes or 0)
        try:
            # The last recurring start at or before `moment`.
            starts = croniter(self.cron, moment + timedelta(seconds=1), second_at_beginning=True)
            last_start = starts.get_prev(datetime)
        except CroniterError:
            # Never started (31 February, a future year) or unreadable: it covers nothing.
            # Raising here would fail the whole batch of results being recorded.
            return False
        return moment < last_start + duration
