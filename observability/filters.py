"""Filters of the observability API."""

from __future__ import annotations

import django_filters

from noc.api.filters import FilterSet
from observability.models import Application, IngestKey


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
