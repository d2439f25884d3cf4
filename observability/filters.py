"""Filters of the observability API."""

from __future__ import annotations

import django_filters

from noc.api.filters import FilterSet
from observability.choices import AlertStatus
from observability.models import Alert, AlertRule, Application, IngestKey, MetricSeries
from services.choices import Severity


class ApplicationFilter(FilterSet):
    class Meta:
        model = Application
        fields = ["environment", "owner"]


class IngestKeyFilter(FilterSet):
    application = django_filters.CharFilter(field_name="application__slug")
    revoked = django_filters.BooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = IngestKey
        fields = ["application", "revoked"]


class AlertRuleFilter(FilterSet):
    application = django_filters.CharFilter(field_name="application__slug")

    class Meta:
        model = AlertRule
        fields = ["enabled", "severity", "application", "metric", "condition"]


class AlertFilter(FilterSet):
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)
    severity = django_filters.ChoiceFilter(choices=Severity.choices)

    class Meta:
        model = Alert
        fields = ["status", "severity", "rule"]


class MetricSeriesFilter(FilterSet):
    application = django_filters.CharFilter(field_name="application__slug")
    prefix = django_filters.CharFilter(field_name="name", lookup_expr="startswith")

    class Meta:
        model = MetricSeries
        fields = ["application", "prefix", "name", "kind"]
