"""Promises and how they are kept: SLOs, their status history and burn-rate alerts."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Now

from noc.limits import DESCRIPTION_MAX_CHARS, bounded_text
from services.models import Service
from slos import budget
from slos.choices import (
    METRIC_SLI_TYPES,
    AlertSeverity,
    AlertState,
    BudgetingMethod,
    SliType,
    SloWindow,
    ViolationRisk,
)


class SLO(models.Model):
    id = models.SlugField(primary_key=True, max_length=64, help_text="e.g. api-availability-99")
    name = models.CharField(max_length=200)
    description = bounded_text(DESCRIPTION_MAX_CHARS, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.CASCADE, related_name="slos",
        help_text=(
            "Check-based SLIs read this service's checks. Optional for metric SLIs: pages "
            "open incidents on it and notices are routed by it."
        ),
    )  # fmt: skip
    sli_type = models.CharField(max_length=16, choices=SliType.choices)
    target = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal("99.9999"))],
        help_text=(
            "Percent, strictly between 0 and 100. Availability and latency: the percent of "
            "good checks promised (e.g. 99.9). Error rate: the maximum percent of failed "
            "checks (e.g. 1); compliant while the error rate is at or under it."
        ),
    )
    window = models.CharField(max_length=8, choices=SloWindow.choices, default=SloWindow.MONTH)
    time_zone = models.CharField(max_length=64, default="UTC", help_text="For calendar windows.")
    budgeting_method = models.CharField(
        max_length=12, choices=BudgetingMethod.choices, default=BudgetingMethod.OCCURRENCES
    )
    latency_threshold_ms = models.PositiveIntegerField(null=True, blank=True)
    # --- metric SLIs: selectors {"application": slug, "name": metric, "labels": {...}}
    good_metric = models.JSONField(
        null=True, blank=True, help_text="Ratio: the counter of good events."
    )
    total_metric = models.JSONField(
        null=True, blank=True, help_text="Ratio: the counter of all events."
    )
    histogram_metric = models.JSONField(
        null=True, blank=True,
        help_text="Histogram: its name without _bucket/_count (http_request_duration_seconds).",
    )  # fmt: skip
    histogram_threshold = models.FloatField(
        null=True, blank=True,
        help_text="Histogram: good events are those at or under this bucket bound (its `le`, "
        "in the histogram's unit: 0.3 for 300 ms in seconds).",
    )  # fmt: skip
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(auto_now=True)

    # --- the current status, cached for fast reads (the seed's saveStatus cache)
    current_value = models.FloatField(null=True, blank=True, help_text="SLI, percent")
    compliant = models.BooleanField(null=True, blank=True)
    budget_total_minutes = models.FloatField(null=True, blank=True)
    budget_remaining_minutes = models.FloatField(null=True, blank=True)
    budget_used_minutes = models.FloatField(null=True, blank=True)
    budget_remaining_percent = models.FloatField(null=True, blank=True)
    burn_rate = models.FloatField(null=True, blank=True, help_text="Over the last hour")
    violation_risk = models.CharField(
        max_length=8, choices=ViolationRisk.choices, default=ViolationRisk.NONE
    )
    budget_exhausted_at = models.DateTimeField(
        null=True, blank=True, help_text="Forecast at the current burn rate"
    )
    minutes_without_data = models.FloatField(null=True, blank=True)
    calculated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "SLO"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(target__gt=0, target__lt=100),
                name="slo_target_between_0_and_100",
            ),
            models.CheckConstraint(
                condition=~models.Q(sli_type="latency")
                | models.Q(latency_threshold_ms__isnull=False),
                name="slo_latency_needs_threshold",
            ),
            models.CheckConstraint(
                condition=models.Q(sli_type__in=METRIC_SLI_TYPES) | models.Q(service__isnull=False),
                name="slo_checks_need_service",
            ),
            models.CheckConstraint(
                condition=~models.Q(sli_type="ratio")
                | models.Q(good_metric__isnull=False, total_metric__isnull=False),
                name="slo_ratio_needs_counters",
            ),
            models.CheckConstraint(
                condition=~models.Q(sli_type="histogram")
                | models.Q(histogram_metric__isnull=False, histogram_threshold__isnull=False),
                name="slo_histogram_needs_threshold",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from slos.validation import validate_slo

        validate_slo(self)

    @property
    def is_metric_based(self) -> bool:
        """Its events come from metric series, not from a service's checks."""
        return self.sli_type in METRIC_SLI_TYPES

    @property
    def objective(self) -> Fraction:
        """The share of good checks promised (an error rate's target is its maximum)."""
        return budget.objective_for(self.sli_type, self.target)

    def window_bounds(self, now: datetime) -> tuple[datetime, datetime]:
        """[start, end) of the window that `now` falls in; `end` is the period's end for
        calendar windows and `now` for rolling ones."""
        return budget.window_bounds(self.window, now, ZoneInfo(self.time_zone))

    def budget_minutes(self, now: datetime) -> float:
        """(1 − target) × window: 30 days at 99.9 % is 43.2 minutes."""
        start, end = self.window_bounds(now)
        minutes = Fraction((end - start) // timedelta(microseconds=1), 60_000_000)
        return budget.rounded(budget.budget_minutes(self.objective, minutes))


class SLOStatus(models.Model):
    """History of evaluations (the seed's SLOStatusHistory), one row per SLO per evaluation,
    in the time-series layer."""

    pk = models.CompositePrimaryKey("slo_id", "time")
    time = models.DateTimeField()
    slo = models.ForeignKey(
        SLO, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    sli_type = models.CharField(max_length=16, choices=SliType.choices)
    window = models.CharField(max_length=8, choices=SloWindow.choices)
    current_value = models.FloatField(null=True)
    target = models.FloatField()
    compliant = models.BooleanField(null=True)
    good = models.FloatField()
    total = models.FloatField()
    budget_total_minutes = models.FloatField()
    budget_remaining_minutes = models.FloatField()
    budget_used_minutes = models.FloatField()
    budget_used_percent = models.FloatField()
    burn_rate = models.FloatField(null=True)
    violation_risk = models.CharField(max_length=8, choices=ViolationRisk.choices)
    minutes_without_data = models.FloatField(default=0)

    class Meta:
        ordering = ["-time"]
        verbose_name = "SLO status"
        verbose_name_plural = "SLO status history"

    def __str__(self) -> str:
        return f"{self.slo_id} {self.time:%Y-%m-%d %H:%M}"


class SLOAlert(models.Model):
    """A multiwindow burn-rate alert: fires when both windows of a rule burn too fast, clears
    with hysteresis (both below a fraction of the threshold)."""

    slo = models.ForeignKey(SLO, on_delete=models.CASCADE, related_name="alerts")
    rule = models.CharField(max_length=32, help_text="e.g. page-1h-5m")
    severity = models.CharField(max_length=8, choices=AlertSeverity.choices)
    state = models.CharField(max_length=8, choices=AlertState.choices, default=AlertState.FIRING)
    threshold = models.FloatField()
    long_burn = models.FloatField()
    short_burn = models.FloatField()
    fired_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    incident = models.ForeignKey(
        "incidents.Incident", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-fired_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["slo", "rule"],
                condition=models.Q(state="firing"),
                name="slo_alert_one_firing_per_rule",
            )
        ]

    def __str__(self) -> str:
        return f"{self.slo_id} {self.rule} ({self.state})"


class KeptSums(models.Model):
    pk = models.CompositePrimaryKey("service_id", "start")
    service_id = models.CharField(max_length=64)
    start = models.DateTimeField()
    latency = models.BooleanField(help_text="The le_* histogram columns are summed too")
    n_up = models.BigIntegerField()
    n_degraded = models.BigIntegerField()
    n_down = models.BigIntegerField()
    minutes = models.BigIntegerField(help_text="Minutes with at least one check")
    good = models.BigIntegerField(help_text="Minutes with no failed check")
    le_50 = models.BigIntegerField()
    le_100 = models.BigIntegerField()
    le_250 = models.BigIntegerField()
    le_500 = models.BigIntegerField()
    le_1000 = models.BigIntegerField()
    le_2500 = models.BigIntegerField()
    le_5000 = models.BigIntegerField()
    le_10000 = models.BigIntegerField()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.service_id} from {self.start:%Y-%m-%d %H:%M}"


class SLISums(KeptSums):
    """Sums of one service's hourly check rollup from `start` to the hour its watermark row
    (`slos.sli.KEPT_MARK`) says: what every-minute evaluation keeps between runs, so that each
    reads only the hours that changed (slos/sli.py). Rebuilt from the rollup whenever a refresh
    rewrites an hour it covers."""

    class Meta:
        verbose_name = "kept SLI sums"
        verbose_name_plural = "kept SLI sums"


class SLIMinuteSums(KeptSums):
    """The same from the per-minute rollup: from a 10-minute block's start to the block its
    watermark row (`slos.sli.KEPT_MINUTES_MARK`) says, for the ranges of at most 6 h."""

    class Meta:
        db_table = "slos_slisums_minute"
        verbose_name = "kept SLI minute sums"
        verbose_name_plural = "kept SLI minute sums"
