"""The admin pages that come with Django (groups), django-celery-beat (schedules) and
django-axes (access attempts and logs): for admins only, and every write on them audited.

Every role is staff and holds every view_* permission (accounts/roles.py), so without this a
viewer would read axes' usernames and addresses and the beat schedules. The packages register
their own ModelAdmins; they are registered again here with the rule and the audit mixed in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.http import HttpRequest
from django_celery_beat.admin import (
    ClockedScheduleAdmin,
    CrontabScheduleAdmin,
    IntervalScheduleAdmin,
    PeriodicTaskAdmin,
    SolarScheduleAdmin,
)
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from accounts.actions import audit_delete, audit_record
from accounts.audit import diff, snapshot
from accounts.choices import AuditAction, Role
from noc.api.permissions import has_role


class AdminOnly(admin.ModelAdmin):
    """Shown to, read and written by the admin role only."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.ADMIN) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return has_role(request.user, Role.ADMIN) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return has_role(request.user, Role.ADMIN) and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return has_role(request.user, Role.ADMIN) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return has_role(request.user, Role.ADMIN) and super().has_delete_permission(request, obj)


def state(instance: models.Model) -> dict[str, Any]:
    """snapshot() plus the many-to-many fields (a group's permissions) as sorted primary keys."""
    data = snapshot(instance)
    if instance.pk is not None:
        for field in instance._meta.many_to_many:
            data[field.name] = sorted(getattr(instance, field.name).values_list("pk", flat=True))
    return data


class AuditedWrites(admin.ModelAdmin):
    """Saves (with their many-to-many fields), deletes and actions write AuditEvents in the
    admin's transaction, as our own ModelAdmins do through noc.admin.AuditedModelAdmin."""

    # Actions whose rows are not (only) the selected ones: they lock and compare the table.
    table_actions: frozenset[str] = frozenset()

    def save_model(self, request, obj, form, change):
        obj._audit_before = state(type(obj).objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        # After the many-to-many fields are saved, so one event holds the whole change.
        super().save_related(request, form, formsets, change)
        obj = form.instance
        before = getattr(obj, "_audit_before", None)
        changes = diff(before or {}, state(obj))
        if change and not changes:
            return
        action = AuditAction.UPDATE if change else AuditAction.CREATE
        audit_record(actor=request.user, action=action, instance=obj, changes=changes)

    def delete_model(self, request, obj):
        audit_delete(actor=request.user, instance=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                audit_delete(actor=request.user, instance=obj)
            super().delete_queryset(request, queryset)

    def get_actions(self, request: HttpRequest) -> dict[str, tuple]:
        # delete_selected deletes through delete_queryset, which audits each row.
        return {
            name: (func if name == "delete_selected" else self._audited(func, name), name, text)
            for name, (func, _, text) in super().get_actions(request).items()
        }

    def _audited(self, func: Callable, name: str) -> Callable:
        def run(modeladmin, request, queryset):
            with transaction.atomic():
                scope = self.model.objects.all() if name in self.table_actions else queryset
                rows = {o.pk: o for o in scope.select_for_update(of=("self",)).order_by("pk")}
                before = {pk: snapshot(obj) for pk, obj in rows.items()}
                selected = set(queryset.values_list("pk", flat=True))
                response = func(modeladmin, request, queryset)
                after = {obj.pk: obj for obj in self.model.objects.filter(pk__in=rows)}
                for pk, obj in rows.items():
                    self._audit_action_row(
                        request, name, obj, before[pk], after.get(pk), pk in selected
                    )
            return response

        return run

    @staticmethod
    def _audit_action_row(request, name, obj, before, now, selected) -> None:
        actor = request.user
        if now is None:
            audit_record(
                actor=actor, action=AuditAction.DELETE, instance=obj, verb=name,
                changes=diff(before, {}),
            )  # fmt: skip
        elif changes := diff(before, snapshot(now)):
            audit_record(
                actor=actor, action=AuditAction.UPDATE, instance=now, verb=name, changes=changes
            )
        elif selected:  # run_tasks and the like: nothing stored changed, the action happened
            audit_record(actor=actor, action=AuditAction.ACTION, instance=now, verb=name)


class CleanableAccessAttemptAdmin(AccessAttemptAdmin):
    """axes' clean-up action reads the attempt time its login path sets on the request, and
    fails (a 500) anywhere else: set it first."""

    @admin.action(description="Clean up expired attempts")
    def cleanup_expired_attempts(self, request, queryset):
        AxesProxyHandler.update_request(request)
        return super().cleanup_expired_attempts(request, queryset)


def register_again(model: type[models.Model], package_admin: type[admin.ModelAdmin], **attrs):
    """Replace a package's ModelAdmin with one that is admin-only and audited."""
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    name = f"Noc{package_admin.__name__}"
    admin.site.register(model, type(name, (AdminOnly, AuditedWrites, package_admin), attrs))


PACKAGE_ADMINS: list[tuple[type[models.Model], type[admin.ModelAdmin], dict[str, Any]]] = [
    (Group, GroupAdmin, {}),
    (PeriodicTask, PeriodicTaskAdmin, {}),
    (IntervalSchedule, IntervalScheduleAdmin, {}),
    (CrontabSchedule, CrontabScheduleAdmin, {}),
    (SolarSchedule, SolarScheduleAdmin, {}),
    (ClockedSchedule, ClockedScheduleAdmin, {}),
    # Cleaning up deletes expired attempts, selected or not: the audit compares the table.
    (
        AccessAttempt,
        CleanableAccessAttemptAdmin,
        {"table_actions": frozenset({"cleanup_expired_attempts"})},
    ),
    (AccessLog, AccessLogAdmin, {}),
    (AccessFailureLog, AccessFailureLogAdmin, {}),
]

for _model, _admin, _attrs in PACKAGE_ADMINS:
    register_again(_model, _admin, **_attrs)
