"""The project's ModelSerializer base: model date-times parse through noc.api.dates."""

from __future__ import annotations

from django.db import models
from rest_framework import serializers

from noc.api.dates import DateTimeField


class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: DateTimeField,
    }
