"""The API's `display` fields: the numbers of a resource as the console prints them, rounded
for people (noc.formatting), beside the stored values, which keep their precision."""

from __future__ import annotations

from collections.abc import Callable

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field(OpenApiTypes.STR)
class RoundedField(serializers.Field):
    """A read-only string: `rounding(value)` of the source attribute (null stays null)."""

    def __init__(self, rounding: Callable[[float], str], **kwargs) -> None:
        kwargs["read_only"] = True
        kwargs.setdefault("allow_null", True)  # null before there is a value (the schema says so)
        super().__init__(**kwargs)
        self.rounding = rounding

    def to_representation(self, value: float) -> str:
        return self.rounding(float(value))
