"""Data pushed by applications: applications and their ingest keys, metric series and points,
spans, log lines (and their outbox for Elasticsearch), alert rules and alerts."""

from __future__ import annotations

import hashlib
import math
import re
import secrets

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Now

from observability.choices import (
    OPEN_ALERT_STATUSES,
    Aggregation,
    AlertStatus,
    Condition,
    Environment,
    LogLevel,
    MetricKind,
    SpanKind,
    SpanStatus,
)
from services.choices import Severity

INGEST_KEY_PREFIX = "noci"


class Application(models.Model):
    """Something that pushes metrics and traces (the seed's `applications`)."""

    slug = models.SlugField(
        max_length=64, unique=True, help_text="The application's id in URLs and ingest requests."
    )
    name = models.CharField(max_length=200)
    environment = models.CharField(
        max_length=16, choices=Environment.choices, default=Environment.PRODUCTION
    )
    owner = models.CharField(max_length=200, blank=True, help_text="Team or person responsible.")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class IngestKey(models.Model):
    """A secret that writes one application's data and reads nothing. Only its SHA-256 is
    stored (32 random bytes need no slow hash); the key is shown once, at creation."""

    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="ingest_keys"
    )
    name = models.CharField(max_length=100, default="default")
    prefix = models.CharField(max_length=16, unique=True, help_text="Visible part of the key.")
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(db_default=Now())
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "ingest key"

    def __str__(self) -> str:
        return f"{self.application_id}: {self.name} ({self.prefix}…)"

    @staticmethod
    def generate() -> tuple[str, str]:
        """Return (prefix, full key)."""
        prefix = secrets.token_hex(4)
        return prefix, f"{INGEST_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class MetricSeries(models.Model):
    """One metric name with one label set of one application. Points refer to it by its small
    integer id, so labels are stored once. `fingerprint` (a hash of name and labels) is what
    ingestion looks series up by. Rows are only deleted with their application, so an id
    never changes meaning (ingestion caches them per process)."""

    id = models.AutoField(primary_key=True)
    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="metric_series", db_index=False
    )
    name = models.CharField(max_length=200)
    labels = models.JSONField(default=dict)
    fingerprint = models.UUIDField()
    kind = models.CharField(max_length=16, choices=MetricKind.choices, default=MetricKind.GAUGE)
    unit = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["application_id", "name", "id"]
        verbose_name_plural = "metric series"
        constraints = [
            models.UniqueConstraint(
                fields=["application", "fingerprint"], name="metricseries_fingerprint_uniq"
            )
        ]
        indexes = [
            # Queries and the series list: by name (and prefix) within an application.
            models.Index(
                fields=["application", "name"],
                name="metricseries_app_name_idx",
                opclasses=["int8_ops", "varchar_pattern_ops"],
            ),
            models.Index(
                fields=["name"], name="metricseries_name_idx", opclasses=["varchar_pattern_ops"]
            ),
        ]

    def __str__(self) -> str:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.name}{{{labels}}}"


class MetricPoint(models.Model):
    """One value of one series at one time (the seed's `metrics` hypertable). The primary key
    makes a retried batch idempotent and serves every per-series time-range read."""

    pk = models.CompositePrimaryKey("series_id", "time")
    series = models.ForeignKey(
        MetricSeries, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+",
    )  # fmt: skip
    time = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        ordering = ["-time"]
        # The native rollup refresh reads time ranges across series: a BRIN index is tiny and
        # costs ingestion almost nothing, since points arrive in time order.
        indexes = [BrinIndex(fields=["time"], name="metricpoint_time_brin")]

    def __str__(self) -> str:
        return f"{self.series_id} {self.time:%Y-%m-%d %H:%M:%S} {self.value}"


# --- traces ------------------------------------------------------------------------------------


class Span(models.Model):
    """One span of a distributed trace (the seed's `traces` hypertable, by start time): daily
    partitions or chunks, compressed (TimescaleDB) after TRACES_COMPRESS_AFTER_DAYS, dropped
    past TRACES_RETENTION_DAYS. Ids are OTLP's in lowercase hex; a root span has no parent.
    The primary key starts with the trace id, so reading a trace is an index probe per
    partition, and a batch sent twice stores its spans once."""

    pk = models.CompositePrimaryKey("trace_id", "span_id", "start_time")
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True)
    name = models.CharField(max_length=4096)
    kind = models.CharField(max_length=12, choices=SpanKind.choices, default=SpanKind.INTERNAL)
    application = models.ForeignKey(
        Application, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+",
    )  # fmt: skip
    service = models.CharField(max_length=200, blank=True, help_text="service.name")
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    duration_us = models.BigIntegerField(help_text="end - start, in microseconds.")
    status_code = models.CharField(
        max_length=8, choices=SpanStatus.choices, default=SpanStatus.UNSET
    )
    status_message = models.TextField(blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    events = models.JSONField(default=list, blank=True)
    links = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-start_time"]
        indexes = [
            # The trace list: one application's spans, newest first.
            models.Index(fields=["application", "-start_time"], name="span_app_start_idx"),
            # The trace list without an application: time ranges (spans arrive in time order).
            BrinIndex(fields=["start_time"], name="span_start_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.trace_id}/{self.span_id} {self.name[:80]}"


# --- logs --------------------------------------------------------------------------------------


class LogLine(models.Model):
    """One log line in the PostgreSQL log store (the default; Elasticsearch when configured).
    Daily partitions or chunks, dropped past LOG_RETENTION_DAYS. `search` is generated by the
    database from the message (the `simple` text search configuration: words as written, no
    stemming, so identifiers match exactly) and indexed with GIN. `uid` is the line's id in
    either store, so a batch written twice to Elasticsearch is stored once."""

    pk = models.CompositePrimaryKey("time", "uid")
    uid = models.UUIDField()
    time = models.DateTimeField()
    application = models.ForeignKey(
        Application, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
        related_name="+",
    )  # fmt: skip
    level = models.CharField(max_length=8, choices=LogLevel.choices)
    service = models.CharField(max_length=200, blank=True)
    host = models.CharField(max_length=255, blank=True)
    trace_id = models.CharField(max_length=32, blank=True)
    span_id = models.CharField(max_length=16, blank=True)
    message = models.TextField()
    attributes = models.JSONField(default=dict, blank=True)
    search = models.GeneratedField(
        expression=models.Func(
            models.F("message"), template="to_tsvector('simple'::regconfig, %(expressions)s)"
        ),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["-time", "-uid"]
        indexes = [
            # Search: the words of the message.
            GinIndex(fields=["search"], name="logline_search_gin"),
            # A trace's logs (the trace page links to them).
            models.Index(
                fields=["trace_id"], name="logline_trace_idx", condition=~models.Q(trace_id="")
            ),
            # Filters by application, newest first.
            models.Index(fields=["application", "-time"], name="logline_app_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.level} {self.message[:80]}"


class LogOutbox(models.Model):
    """Batches of accepted log lines waiting for Elasticsearch: written when it was
    unreachable or refused them, in the transaction that accepted them, and removed only once
    Elasticsearch has stored every line (each with its id, so a retry never duplicates one)."""

    created_at = models.DateTimeField(db_default=Now())
    line_count = models.PositiveIntegerField()
    documents = models.BinaryField(help_text="gzip of the batch's documents as JSON lines.")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_default=Now())
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "log outbox batch"
        verbose_name_plural = "log outbox"

    def __str__(self) -> str:
        return f"{self.line_count} lines waiting since {self.created_at:%Y-%m-%d %H:%M:%S}"


# --- alert rules and alerts ------------------------------------------------------------------


METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
MIN_WINDOW, MAX_WINDOW, MAX_FOR = 60, 86_400, 86_400


class AlertRule(models.Model):
    """A condition on metric series: the points of each series the selector matches (metric
    name, label values, application) are reduced over the window by the aggregation and
    compared with the threshold; breaching for `for_seconds` makes the series' alert active.
    `absent` fires when no matching series has a point in the window."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    application = models.ForeignKey(
        Application, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules",
        help_text="Only this application's series (any application when empty).",
    )  # fmt: skip
    metric = models.CharField(max_length=200, help_text="The metric name the rule reads.")
    match_labels = models.JSONField(
        default=dict, blank=True, help_text="Label values a series must have (all of them)."
    )
    aggregation = models.CharField(max_length=8, choices=Aggregation.choices)
    window_seconds = models.PositiveIntegerField(default=300)
    condition = models.CharField(max_length=8, choices=Condition.choices)
    threshold = models.FloatField(null=True, blank=True)
    for_seconds = models.PositiveIntegerField(
        default=0, help_text="How long the condition must hold before the alert fires."
    )
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.MEDIUM)
    labels = models.JSONField(default=dict, blank=True, help_text="Added to every alert.")
    channels = models.ManyToManyField(
        "incidents.NotificationChannel", blank=True, related_name="alert_rules",
        help_text="Channels notified; when empty, the channels routed by the usual rules.",
    )  # fmt: skip
    service = models.ForeignKey(
        "services.Service", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="alert_rules",
        help_text="The service alerts are about: routes notifications, and opens incidents.",
    )  # fmt: skip
    opens_incident = models.BooleanField(
        default=False, help_text="A firing alert opens an incident on the service."
    )
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not self.metric or len(self.metric) > 200 or not METRIC_NAME.fullmatch(self.metric):
            errors["metric"] = (
                "Name the metric series the rule reads (a Prometheus name such as "
                "http_requests_total)."
            )
        for name in ("match_labels", "labels"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and "\x00" not in k + v
                for k, v in value.items()
            ):
                errors[name] = "An object of label names to text values."
        if not MIN_WINDOW <= (self.window_seconds or 0) <= MAX_WINDOW:
            errors["window_seconds"] = f"From {MIN_WINDOW} s to a day ({MAX_WINDOW} s)."
        if (self.for_seconds or 0) > MAX_FOR:
            errors["for_seconds"] = f"At most a day ({MAX_FOR} s)."
        if self.condition != Condition.ABSENT and self.threshold is None:
            errors["threshold"] = "A threshold is needed for this condition."
        if self.threshold is not None and not math.isfinite(self.threshold):
            errors["threshold"] = "A finite number."
        if self.opens_incident and not self.service_id:
            errors["service"] = "Opening incidents needs the service they are about."
        if errors:
            raise ValidationError(errors)

    def breaches(self, value: float | None) -> bool:
        """The rule's condition on one aggregated value (None: the series had no point)."""
        if self.condition == Condition.ABSENT:
            return value is None
        if value is None or self.threshold is None:
            return False
        compare = {
            Condition.GT: value > self.threshold,
            Condition.GTE: value >= self.threshold,
            Condition.LT: value < self.threshold,
            Condition.LTE: value <= self.threshold,
        }
        return compare[self.condition]


class Alert(models.Model):
    """One condition of one rule on one label set: pending while it has not held for the
    rule's `for`, active while it fires, resolved after. At most one open (pending or active)
    alert per rule and fingerprint, which the database enforces."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    fingerprint = models.CharField(max_length=64)
    labels = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=AlertStatus.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    started_at = models.DateTimeField(help_text="When the condition started to hold.")
    fired_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True, help_text="The value that fired it.")
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    silenced_until = models.DateTimeField(null=True, blank=True)
    incident = models.ForeignKey(
        "incidents.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "fingerprint"],
                condition=models.Q(status__in=OPEN_ALERT_STATUSES),
                name="alert_one_open_per_fingerprint",
            )
        ]
        indexes = [
            # The default list and the dashboard: open alerts by severity, newest first.
            models.Index(
                fields=["status", "-started_at"],
                name="alert_status_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}:{self.fingerprint[:8]} {self.status}"

    def is_silenced(self, now) -> bool:
        return self.silenced_until is not None and self.silenced_until > now
