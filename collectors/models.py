"""Collectors (what to pull, from where, how often) and their runs (one start-to-stop each)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from collectors.choices import CollectorKind, RunStatus, Timeframe
from observability.models import Application

# Once a worker starts an execution, it holds it for its timeout plus this (parsing and the
# write); past it the worker is taken for dead and the slot handed out again. A slow worker
# that still finishes writes nothing twice: its claim is checked when it records.
LEASE_GRACE_SECONDS = 15.0


class Collector(models.Model):
    """Pulls data from another system every `interval_seconds` and writes metric series of
    `application`. Which fields matter depends on `kind` (see collectors/validation.py)."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=CollectorKind.choices)
    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="collectors"
    )
    interval_seconds = models.PositiveIntegerField(default=15, validators=[MinValueValidator(1)])
    url = models.CharField(
        max_length=2000,
        help_text="The target; for ohlcv a template where {symbol} is replaced by the symbol.",
    )
    timeout_seconds = models.FloatField(default=10.0)
    allow_private = models.BooleanField(
        null=True, blank=True, help_text="Empty: NOC_CHECK_ALLOW_PRIVATE decides."
    )
    max_body_bytes = models.PositiveIntegerField(null=True, blank=True)
    metric_allow = models.JSONField(
        default=list, blank=True, help_text="Metric names or globs to keep (empty: all)."
    )
    metric_deny = models.JSONField(default=list, blank=True, help_text="Names or globs to drop.")
    extra_labels = models.JSONField(default=dict, blank=True)
    bearer_token_env = models.CharField(
        max_length=100, blank=True, help_text="Name of an environment variable holding the token."
    )
    # Fernet-encrypted bearer token (collectors/secrets.py); never shown back by API or admin.
    token = models.TextField(max_length=8000, blank=True, editable=False)
    json_paths = models.JSONField(
        default=dict, blank=True, help_text="http_json: {series name: JSON path}."
    )
    price_path = models.CharField(
        max_length=500, blank=True, help_text="ohlcv: JSON path to the price."
    )
    symbol = models.CharField(max_length=20, blank=True)
    timeframe = models.CharField(max_length=4, choices=Timeframe.choices, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(interval_seconds__gte=1), name="collector_interval_min_1s"
            ),
            # A start by symbol and timeframe (the seed's body) reuses the one ohlcv collector.
            models.UniqueConstraint(
                fields=["symbol", "timeframe"],
                condition=Q(kind="ohlcv"),
                name="collector_ohlcv_symbol_timeframe_uniq",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from collectors.validation import validate_collector

        validate_collector(self)

    @property
    def has_token(self) -> bool:
        return bool(self.token or self.bearer_token_env)

    def heartbeat_allowance(self) -> timedelta:
        """How long a running run may go without a heartbeat before it is declared dead: three
        intervals, or the time for a claim's lease to run out and the next slot to be taken
        (by another worker, when one died), whichever is longer, plus a grace."""
        return self.takeover_time() + timedelta(seconds=settings.COLLECTOR_HEARTBEAT_GRACE_SECONDS)

    def lease_seconds(self) -> float:
        """How long a worker that started an execution holds it."""
        return self.timeout_seconds + LEASE_GRACE_SECONDS

    def queued_lease_seconds(self) -> float:
        """How long a claimed execution may wait in the queue and run, from its slot: as for
        check slots, its timeout plus NOC_CLAIM_GRACE_SECONDS. (A shorter one would hand out
        again, and queue twice, every execution of a worker that falls behind.)"""
        return self.timeout_seconds + settings.NOC_CLAIM_GRACE_SECONDS

    def takeover_time(self) -> timedelta:
        interval = self.interval_seconds
        return timedelta(seconds=max(3 * interval, interval + self.queued_lease_seconds()))


class CollectorRun(models.Model):
    """One run of a collector, from its start to its stop (the seed's `collectors` row). The
    dispatcher claims its executions like check slots: `claimed_slot` is the execution handed
    to a worker, `lease_until` when it is handed out again if no worker finished it."""

    collector = models.ForeignKey(Collector, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField(db_default=Now())
    stopped_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    host = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    samples = models.BigIntegerField(default=0)
    executions = models.BigIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(max_length=2000, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_slot = models.DateTimeField(
        null=True, blank=True, help_text="When the last recorded execution was due."
    )
    last_lag_ms = models.FloatField(
        null=True, blank=True, help_text="How late the last recorded execution started."
    )
    next_run_at = models.DateTimeField(null=True, blank=True)
    claimed_slot = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # ohlcv: the bucket being aggregated ({"start", "open", "high", "low", "close", "count"}).
    state = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # Never two running runs of one collector, even when two starts race.
            models.UniqueConstraint(
                fields=["collector"],
                condition=Q(status="running"),
                name="collectorrun_one_running_per_collector",
            ),
        ]
        indexes = [
            # collectors.dispatch: running runs by due time.
            models.Index(
                fields=["next_run_at"],
                condition=Q(status="running"),
                name="collectorrun_due_idx",
            ),
            # collectors.cleanup: stopped runs by age.
            models.Index(
                fields=["stopped_at"],
                condition=Q(status="stopped"),
                name="collectorrun_stopped_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.collector} run {self.pk} ({self.status})"

    def uptime_seconds(self, now: datetime) -> int:
        end = now if self.status == RunStatus.RUNNING else (self.stopped_at or now)
        return max(0, int((end - self.started_at).total_seconds()))
