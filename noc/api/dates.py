"""Date-time input of the API: ISO 8601 with a UTC offset of at most ±15:59, kept in UTC.

Python parses any offset under 24 hours, but PostgreSQL refuses a timestamp whose offset is
beyond ±15:59 ("time zone displacement out of range"), which ended as a 500 in whichever
filter or write received it. Every date-time the API reads (serializer fields, filters) goes
through `utc_instant`, so a bad offset or an instant outside the calendar is a 400 naming it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField as FilterIsoDateTimeField
from rest_framework import serializers

MAX_UTC_OFFSET = timedelta(hours=15, minutes=59, seconds=59)


def _offset_text(offset: timedelta) -> str:
    sign = "-" if offset < timedelta(0) else "+"
    minutes = int(abs(offset).total_seconds()) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def utc_instant(value: datetime) -> datetime:
    """An aware `value` in UTC; ValueError saying why when it cannot be one."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        raise ValueError(
            f"The UTC offset {_offset_text(offset)} is out of range: "
            "offsets run from -15:59 to +15:59."
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("The date-time is outside the years 1 to 9999 in UTC.") from None


class DateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField, refusing offsets PostgreSQL cannot take (see the module)."""

    def enforce_timezone(self, value: datetime) -> datetime:
        value = super().enforce_timezone(value) if value.utcoffset() is None else value
        try:
            return utc_instant(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error), code="invalid") from None


class IsoDateTimeFormField(FilterIsoDateTimeField):
    def to_python(self, value):
        result = super().to_python(value)
        if result is None:
            return None
        try:
            return utc_instant(result)
        except ValueError as error:
            raise forms.ValidationError(str(error), code="invalid") from None


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """django-filter's ISO 8601 filter, refusing offsets PostgreSQL cannot take."""

    field_class = IsoDateTimeFormField
