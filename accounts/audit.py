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


def _masked(value: Any) -> Any:
    return MASK if value else _json_safe(value)


def snapshot(instance: models.Model) -> dict[str, Any]:
    """Concrete field values by attribute name, JSON-safe, secrets masked."""
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        name = field.attname
        value = getattr(instance, name)
        data[field.name] = _masked(value) if field.name in SECRET_FIELDS else _json_safe(value)
    return data


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields that changed. A secret is masked on both sides, so
    a changed secret is invisible here: add the caller's raw comparison (see changed_secrets)."""
    keys = before.keys() | after.keys()
    return {k: [before.get(k), after.get(k)] for k in sorted(keys) if before.get(k) != after.get(k)}


def changed_secrets(previous: models.Model, instance: models.Model) -> dict[str, list[Any]]:
    """{field: [MASK, MASK]} for the secret fields whose raw value differs between the row as it
    was (`previous`) and as it is now; an empty side stays as it is (e.g. [None, MASK])."""
    changes: dict[str, list[Any]] = {}
    for field in instance._meta.concrete_fields:
        if field.name not in SECRET_FIELDS:
            continue
        old, new = getattr(previous, field.attname), getattr(instance, field.attname)
        if old != new:
            changes[field.name] = [_masked(old), _masked(new)]
    return changes


def target_of(instance: models.Model) -> tuple[str, str, str]:
    return instance._meta.label_lower, str(instance.pk), str(instance)[:200]
