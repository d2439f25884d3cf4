"""Filters of the services app, declared once for the API and any other list that needs them."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from noc.api.dates import IsoDateTimeFilter
from noc.api.filters import FilterSet
from services.choices import CheckKind, ResultStatus, ServiceStatus
from services.models import CheckResult, MaintenanceWindow, Service


def comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class ServiceFilter(FilterSet):
    kind = django_filters.ChoiceFilter(choices=CheckKind.choices)
    status = django_filters.ChoiceFilter(choices=ServiceStatus.choices)
    tags = django_filters.CharFilter(
        method="filter_tags_any", label="Any of these comma-separated tags"
    )
    tags_all = django_filters.CharFilter(
        method="filter_tags_all", label="All of these comma-separated tags"
    )
    search = django_filters.CharFilter(
        method="filter_search", label="Text in the id, name, description or URL"
    )

    class Meta:
        model = Service
        fields = ["enabled", "critical", "kind", "status"]

    # Both tag lookups are array operators (&& and @>) that the GIN index on tags serves.
    def filter_tags_any(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        tags = comma_list(value)
        return queryset.filter(tags__overlap=tags) if tags else queryset

    def filter_tags_all(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        tags = comma_list(value)
        return queryset.filter(tags__contains=tags) if tags else queryset

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        text = value.strip()
        if not text:
            return queryset
        return queryset.filter(
            Q(id__icontains=text)
            | Q(name__icontains=text)
            | Q(description__icontains=text)
            | Q(url__icontains=text)
        )


class CheckResultFilter(FilterSet):
    to = IsoDateTimeFilter(field_name="time", lookup_expr="lt", label="Before")
    status = django_filters.ChoiceFilter(choices=ResultStatus.choices)

    class Meta:
        model = CheckResult
        fields = ["status"]


# `from` is a Python keyword, so it cannot be declared in the class body.
CheckResultFilter.base_filters["from"] = IsoDateTimeFilter(
    field_name="time", lookup_expr="gte", label="At or after"
)


class MaintenanceWindowFilter(FilterSet):
    service = django_filters.CharFilter(field_name="services__id", label="Service id")

    class Meta:
        model = MaintenanceWindow
        fields = ["service"]
