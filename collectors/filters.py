"""Filters of the collectors API, declared once for the API and the admin."""

from __future__ import annotations

import django_filters

from collectors.choices import CollectorKind, RunStatus, Timeframe
from collectors.models import Collector, CollectorRun
from noc.api.dates import IsoDateTimeFilter
from noc.api.filters import FilterSet


class CollectorFilter(FilterSet):
    kind = django_filters.ChoiceFilter(choices=CollectorKind.choices)
    application = django_filters.CharFilter(field_name="application__slug")
    timeframe = django_filters.ChoiceFilter(choices=Timeframe.choices)

    class Meta:
        model = Collector
        fields = ["kind", "application", "enabled", "symbol", "timeframe"]


class CollectorRunFilter(FilterSet):
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)
    kind = django_filters.ChoiceFilter(field_name="collector__kind", choices=CollectorKind.choices)
    symbol = django_filters.CharFilter(field_name="collector__symbol")
    timeframe = django_filters.ChoiceFilter(
        field_name="collector__timeframe", choices=Timeframe.choices
    )
    started_after = IsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = IsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = CollectorRun
        fields = ["collector", "status", "host", "pid", "kind", "symbol", "timeframe"]
