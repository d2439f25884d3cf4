"""API shapes of the slos app. Serializers check the shape of input; slos.actions validates the
rules (SLO.clean) and writes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from noc import formatting
from noc.api.dates import DateTimeField
from noc.api.display import RoundedField
from services.models import Service
from slos.models import SLO, SLOAlert
from slos.queries import HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT
from slos.report import FIRST_DAY, LAST_DAY, PERIODS

CONFIG_FIELDS = [
    "id", "name", "description", "owner", "service", "sli_type", "target", "window",
    "time_zone", "budgeting_method", "latency_threshold_ms", "good_metric", "total_metric",
    "histogram_metric", "histogram_threshold", "enabled",
]  # fmt: skip
SELECTOR_HELP = (
    'A metric selector: {"application": slug, "name": metric, "labels": {name: value}}; '
    "every series of the application with that name and those labels is summed."
)
STATUS_FIELDS = [
    "current_value", "compliant", "budget_total_minutes", "budget_remaining_minutes",
    "budget_used_minutes", "budget_remaining_percent", "burn_rate", "violation_risk",
    "budget_exhausted_at", "minutes_without_data", "calculated_at",
]  # fmt: skip


class EvaluationDisplaySerializer(serializers.Serializer):
    """An evaluation's numbers as people read them (null before the first evaluation)."""

    current_value = RoundedField(formatting.sli_label, help_text="SLI: '99.912 %'")
    budget_total_minutes = RoundedField(formatting.budget_minutes_label, help_text="'43.2 min'")
    budget_remaining_minutes = RoundedField(formatting.budget_minutes_label)
    budget_used_minutes = RoundedField(formatting.budget_minutes_label)
    burn_rate = RoundedField(formatting.burn_label, help_text="'0.42×', '6.5×'")


class SLODisplaySerializer(EvaluationDisplaySerializer):
    budget_remaining_percent = RoundedField(formatting.budget_percent_label, help_text="'10.0 %'")


class SLOSerializer(serializers.ModelSerializer):
    service_name = serializers.CharField(source="service.name", read_only=True, allow_null=True)
    display = SLODisplaySerializer(
        source="*", read_only=True, help_text="The numbers above rounded for people."
    )

    class Meta:
        model = SLO
        fields = [
            *CONFIG_FIELDS, "service_name", *STATUS_FIELDS, "display", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = [*STATUS_FIELDS, "created_at", "updated_at"]
        extra_kwargs = {
            "budget_exhausted_at": {"help_text": "Forecast at the current burn rate."},
            # The bounds are checked in validate_target, with a message that states the rule.
            "target": {"min_value": None, "max_value": None},
            **{
                name: {"help_text": f"{help_text} {SELECTOR_HELP}"}
                for name, help_text in (
                    ("good_metric", "Ratio SLIs: the counter of good events."),
                    ("total_metric", "Ratio SLIs: the counter of all events."),
                    (
                        "histogram_metric",
                        "Histogram SLIs: the histogram, named without _bucket/_count.",
                    ),
                )
            },
        }

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is not None:
            # The id is the slug in every URL and in the history rows: fixed once created.
            fields["id"].read_only = True
        return fields

    def validate_target(self, value: Decimal) -> Decimal:
        if not Decimal(0) < value < Decimal(100):
            raise serializers.ValidationError(
                f"The target must be strictly between 0 and 100 (got {value})."
            )
        return value


class SLOUpdateSerializer(SLOSerializer):
    """What PUT and PATCH take: the same fields, the id fixed once created (schema only)."""

    class Meta(SLOSerializer.Meta):
        read_only_fields = [*SLOSerializer.Meta.read_only_fields, "id"]


class SLOStatusSerializer(serializers.Serializer):
    """One evaluation. SLOStatus has a composite primary key: plain read-only fields."""

    time = serializers.DateTimeField()
    sli_type = serializers.CharField()
    window = serializers.CharField()
    current_value = serializers.FloatField(allow_null=True, help_text="SLI, percent")
    target = serializers.FloatField()
    compliant = serializers.BooleanField(allow_null=True)
    good = serializers.FloatField()
    total = serializers.FloatField()
    budget_total_minutes = serializers.FloatField()
    budget_remaining_minutes = serializers.FloatField()
    budget_used_minutes = serializers.FloatField()
    budget_used_percent = serializers.FloatField()
    budget_remaining_percent = serializers.SerializerMethodField()
    burn_rate = serializers.FloatField(allow_null=True)
    violation_risk = serializers.CharField()
    minutes_without_data = serializers.FloatField()
    display = EvaluationDisplaySerializer(
        source="*", read_only=True, help_text="The numbers above rounded for people."
    )

    def get_budget_remaining_percent(self, row) -> float:
        # In decimal: 100 − 56.8123 as floats is 43.187700000000007.
        return float(100 - Decimal(repr(row.budget_used_percent)))


class HistoryQuerySerializer(serializers.Serializer):
    """?limit=&from=&to= of the history endpoint."""

    limit = serializers.IntegerField(
        min_value=1, max_value=HISTORY_MAX_LIMIT, default=HISTORY_DEFAULT_LIMIT
    )
    to = DateTimeField(required=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        # `from` is a Python keyword, so it cannot be declared in the class body.
        return {"from": DateTimeField(required=False), **super().get_fields()}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("from"), attrs.get("to")
        if since and until and since >= until:
            raise serializers.ValidationError({"from": ["`from` must be before `to`."]})
        return {"limit": attrs["limit"], "since": since, "until": until}


class SLOHistorySerializer(serializers.Serializer):
    slo = serializers.CharField()
    count = serializers.IntegerField()
    results = SLOStatusSerializer(many=True)


class BudgetPointSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    budget_remaining_minutes = serializers.FloatField()
    budget_remaining_percent = serializers.FloatField()


class BurnDownSerializer(serializers.Serializer):
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    bucket_seconds = serializers.SerializerMethodField()
    budget_total_minutes = serializers.FloatField()
    points = BudgetPointSerializer(many=True, help_text="Oldest first; the last row per bucket.")

    def get_bucket_seconds(self, burn_down) -> int:
        return int(burn_down.bucket.total_seconds())


class SLOSummaryItemSerializer(serializers.ModelSerializer):
    service_name = serializers.CharField(source="service.name", read_only=True, allow_null=True)

    class Meta:
        model = SLO
        fields = [
            "id", "name", "service", "service_name", "sli_type", "target", "window", "enabled",
            "current_value", "compliant", "violation_risk", "budget_remaining_minutes",
            "budget_remaining_percent", "burn_rate", "budget_exhausted_at", "calculated_at",
        ]  # fmt: skip
        read_only_fields = fields


class SLOSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField()
    compliant = serializers.IntegerField()
    not_compliant = serializers.IntegerField()
    not_evaluated = serializers.IntegerField()
    by_risk = serializers.DictField(child=serializers.IntegerField())
    slos = SLOSummaryItemSerializer(many=True)


class SLOAlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = SLOAlert
        fields = [
            "id", "slo", "rule", "severity", "state", "threshold", "long_burn", "short_burn",
            "fired_at", "resolved_at", "incident",
        ]  # fmt: skip
        read_only_fields = fields


# --- the SLA report -----------------------------------------------------------------------------


class ReportQuerySerializer(serializers.Serializer):
    """?period=month|quarter&date=YYYY-MM-DD&service= (default: this month, every service)."""

    period = serializers.ChoiceField(choices=PERIODS, default="month")
    date = serializers.DateField(required=False, input_formats=["%Y-%m-%d"])
    service = serializers.SlugRelatedField(
        slug_field="id", queryset=Service.objects.all(), required=False
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        service = attrs.get("service")
        day: date = attrs.get("date") or timezone.now().date()
        service_id = service.pk if service else None
        return {"period": attrs["period"], "day": day, "service_id": service_id}

    def validate_date(self, value: date) -> date:
        if not FIRST_DAY <= value <= LAST_DAY:
            raise serializers.ValidationError(
                f"The date must be between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}."
            )
        return value


class SLALineSerializer(serializers.Serializer):
    slo = serializers.CharField()
    name = serializers.CharField()
    sli_type = serializers.CharField()
    target = serializers.FloatField()
    budgeting_method = serializers.CharField()
    time_zone = serializers.CharField()
    enabled = serializers.BooleanField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    good = serializers.FloatField()
    total = serializers.FloatField()
    sli_percent = serializers.FloatField(allow_null=True)
    compliant = serializers.BooleanField(allow_null=True)
    budget_total_minutes = serializers.FloatField()
    budget_used_minutes = serializers.FloatField()
    budget_used_percent = serializers.FloatField()


class SLAServiceSerializer(serializers.Serializer):
    service = serializers.CharField()
    name = serializers.CharField()
    checks = serializers.IntegerField()
    up = serializers.IntegerField()
    degraded = serializers.IntegerField()
    down = serializers.IntegerField()
    checked_minutes = serializers.IntegerField()
    uptime_percent = serializers.FloatField(allow_null=True)
    downtime_minutes = serializers.IntegerField()
    incidents = serializers.IntegerField()
    slos = SLALineSerializer(many=True)


class SLAReportSerializer(serializers.Serializer):
    period = serializers.CharField()
    label = serializers.CharField()
    date = serializers.DateField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    complete = serializers.BooleanField()
    generated_at = serializers.DateTimeField()
    services = SLAServiceSerializer(many=True)
