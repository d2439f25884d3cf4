"""Writes of the console: the status page's settings and groups, each with its audit row in
the same transaction (the admin calls these)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from accounts.actions import audit_create, audit_delete, audit_update
from accounts.audit import snapshot
from services.models import Service
from web.models import StatusGroup, StatusPage


@transaction.atomic
def status_page_update(*, actor, **fields: Any) -> StatusPage:
    """Change the status page's settings (the row is created on the first change)."""
    page = StatusPage.objects.select_for_update().filter(pk=1).first()
    creating = page is None
    page = page or StatusPage(pk=1)
    before = None if creating else snapshot(page)
    for name, value in fields.items():
        setattr(page, name, value)
    page.full_clean()
    page.save()
    if creating:
        audit_create(actor=actor, instance=page)
    else:
        audit_update(actor=actor, instance=page, before=before)
    return page


@transaction.atomic
def status_group_save(
    *, actor, group: StatusGroup, services: Iterable[Service] | None = None
) -> StatusGroup:
    creating = group.pk is None
    before = None if creating else snapshot(StatusGroup.objects.get(pk=group.pk))
    group.full_clean()
    group.save()
    if services is not None:
        group.services.set(services)
    if creating:
        audit_create(actor=actor, instance=group)
    else:
        audit_update(actor=actor, instance=group, before=before)
    return group


@transaction.atomic
def status_group_delete(*, actor, group: StatusGroup) -> None:
    audit_delete(actor=actor, instance=group)
    group.delete()
