"""Base viewsets: CRUD whose writes are audited in the same transaction as the change."""

from __future__ import annotations

from django.db import transaction
from rest_framework import viewsets

from accounts.actions import audit_create, audit_delete, audit_update
from accounts.audit import snapshot


class AuditedModelViewSet(viewsets.ModelViewSet):
    """Plain CRUD resources. Views with domain rules override perform_* to call their actions."""

    def perform_create(self, serializer) -> None:
        with transaction.atomic():
            instance = serializer.save()
            audit_create(actor=self.request.user, instance=instance)

    def perform_update(self, serializer) -> None:
        with transaction.atomic():
            before = snapshot(serializer.instance.__class__.objects.get(pk=serializer.instance.pk))
            instance = serializer.save()
            audit_update(actor=self.request.user, instance=instance, before=before)

    def perform_destroy(self, instance) -> None:
        with transaction.atomic():
            audit_delete(actor=self.request.user, instance=instance)
            instance.delete()
