"""Filters of the slos app, declared once for the API and any other list that needs them."""

from __future__ import annotations

import django_filters

from noc.api.filters import FilterSet
from slos.choices import SliType, SloWindow, ViolationRisk
from slos.models import SLO


class SLOFilter(FilterSet):
    service = django_filters.CharFilter(field_name="service_id", label="Service id")
    sli_type = django_filters.ChoiceFilter(choices=SliType.choices)
    window = django_filters.ChoiceFilter(choices=SloWindow.choices)
    # Repeat for several values: ?violation_risk=high&violation_risk=critical.
    violation_risk = django_filters.MultipleChoiceFilter(choices=ViolationRisk.choices)
    compliant = django_filters.BooleanFilter(label="Compliant at the last evaluation")
    evaluated = django_filters.BooleanFilter(
        field_name="calculated_at",
        lookup_expr="isnull",
        exclude=True,
        label="Evaluated at least once",
    )

    class Meta:
        model = SLO
        fields = ["service", "sli_type", "window", "enabled", "violation_risk", "compliant"]
