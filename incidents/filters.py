"""Filters of the incidents app, declared once for the API and any other list that needs them."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from incidents.choices import ACTIVE_STATUSES, IncidentSource, IncidentStatus, Severity
from incidents.models import Incident
from noc.api.dates import IsoDateTimeFilter
from noc.api.filters import FilterSet


class IncidentFilter(FilterSet):
    # Repeat a parameter for several values: ?status=new&status=investigating.
    status = django_filters.MultipleChoiceFilter(choices=IncidentStatus.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    source = django_filters.MultipleChoiceFilter(choices=IncidentSource.choices)
    service = django_filters.CharFilter(field_name="service_id", label="Service id")
    tag = django_filters.CharFilter(method="filter_tag", label="Service tag")
    active = django_filters.BooleanFilter(method="filter_active", label="Active (not resolved)")
    assignee = django_filters.NumberFilter(field_name="assignee_id", label="Assignee user id")
    opened_after = IsoDateTimeFilter(
        field_name="detected_at", lookup_expr="gte", label="Detected at or after (ISO 8601)"
    )
    opened_before = IsoDateTimeFilter(
        field_name="detected_at", lookup_expr="lt", label="Detected before (ISO 8601)"
    )

    class Meta:
        model = Incident
        fields = ["status", "severity", "source", "service", "assignee"]

    def filter_tag(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        tag = value.strip()
        return queryset.filter(service__tags__contains=[tag]) if tag else queryset

    def filter_active(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        if value:
            return queryset.filter(status__in=ACTIVE_STATUSES)
        return queryset.exclude(status__in=ACTIVE_STATUSES)
