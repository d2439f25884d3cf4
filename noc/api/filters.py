"""The project's FilterSet bases: date-time filters parse through noc.api.dates, whether
declared or generated from a model's fields (`Meta.fields`, a view's `filterset_fields`)."""

from __future__ import annotations

import django_filters
from django.db import models
from django_filters import rest_framework
from django_filters.rest_framework import DjangoFilterBackend

from noc.api.dates import IsoDateTimeFilter


def _with_our_dates(defaults: dict) -> dict:
    return {**defaults, models.DateTimeField: {"filter_class": IsoDateTimeFilter}}


class FilterSet(django_filters.FilterSet):
    """Base of every app's FilterSet."""

    FILTER_DEFAULTS = _with_our_dates(django_filters.FilterSet.FILTER_DEFAULTS)


class GeneratedFilterSet(rest_framework.FilterSet):
    FILTER_DEFAULTS = _with_our_dates(rest_framework.FilterSet.FILTER_DEFAULTS)


class FilterBackend(DjangoFilterBackend):
    """DjangoFilterBackend whose FilterSets generated from `filterset_fields` use our dates."""

    filterset_base = GeneratedFilterSet
