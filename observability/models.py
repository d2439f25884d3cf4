"""Data pushed by applications: applications and their ingest keys, metric series and points."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models.functions import Now

from observability.choices import Environment, MetricKind

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
