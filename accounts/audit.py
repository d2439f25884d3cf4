"""Snapshots and diffs of model instances for the audit trail (pure functions, no writes)."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

SECRET_FIELDS = {"password", "hashed_key", "secret", "token"}
MASK = "********"


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def snapshot(instance: models.Model) -> dict[str, Any]:
    """Concrete field values by attribute name, JSON-safe, secrets masked."""
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        name = field.attname
        value = getattr(instance, name)
        data[field.name] = MASK if field.name in SECRET_FIELDS and value else _json_safe(value)
    return data


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields that changed. A masked secret that changed shows
    as [MASK, MASK] with the caller's raw comparison (see changed_secret)."""
    keys = before.keys() | after.keys()
    return {k: [before.get(k), after.get(k)] for k in sorted(keys) if before.get(k) != after.get(k)}


def target_of(instance: models.Model) -> tuple[str, str, str]:
    return instance._meta.label_lower, str(instance.pk), str(instance)[:200]
