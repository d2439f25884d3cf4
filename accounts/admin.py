"""Admin of users, API keys and the audit trail.

Every role is staff and holds every view_* permission, so what each role sees is decided here,
as in the API: users and audit events are for admins; API keys, admins see all and the others
only their own.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction
from django.http import HttpRequest

from accounts import actions
from accounts.choices import Role
from accounts.models import ApiKey, AuditEvent, User
from noc.admin import AuditedModelAdmin
from noc.api.permissions import has_role


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    list_display = ["username", "email", "role", "is_active", "last_login"]
    list_filter = ["role", "is_active"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Profile", {"fields": ["first_name", "last_name", "email"]}),
        ("Access", {"fields": ["role", "is_active"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["username", "email", "role", "password1", "password2"],
            },
        )
    ]
    readonly_fields = ["last_login", "date_joined"]

    # Users (emails, roles) are for admins only, as /api/users/.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return has_role(request.user, Role.ADMIN)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        actions.user_sync_role(user=obj)

    def user_change_password(self, request: HttpRequest, id, form_url=""):
        # Django's password form saves the user itself, bypassing save_model: audit the change
        # ({"password": [MASK, MASK]}) in the same transaction as the save.
        with transaction.atomic():
            previous = self.get_object(request, unquote(id)) if request.method == "POST" else None
            response = super().user_change_password(request, id, form_url)
            if previous is not None:
                user = User.objects.get(pk=previous.pk)
                actions.user_audit_password_change(actor=request.user, user=user, previous=previous)
        return response


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedModelAdmin):
    list_display = [
        "name",
        "prefix",
        "user",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__username"]
    readonly_fields = ["prefix", "user", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    # As /api/api-keys/: admins see every key, the other roles only their own.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.VIEWER)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        if has_role(request.user, Role.ADMIN):
            return True
        own = obj is None or obj.user_id == request.user.pk
        return own and has_role(request.user, Role.VIEWER)

    def get_queryset(self, request: HttpRequest):
        keys = super().get_queryset(request).select_related("user")
        if has_role(request.user, Role.ADMIN):
            return keys
        return keys.filter(user=request.user)

    def has_add_permission(self, request):
        # The key must be shown once to its owner: create keys through the API or create_api_key.
        return False

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        with transaction.atomic():
            for api_key in queryset:
                actions.api_key_revoke(actor=request.user, api_key=api_key)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["time", "actor_label", "action", "verb", "target_type", "target_label", "ip"]
    list_filter = ["action", "target_type"]
    search_fields = ["target_label", "actor_label", "target_id", "request_id"]
    date_hierarchy = "time"

    # The audit trail is for admins only, as /api/audit-events/.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
