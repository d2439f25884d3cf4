"""Roles as Django groups, so the admin and the API agree on who may do what.

viewer: every view_* permission. operator: viewer's plus the operate permissions that apps list
in OPERATOR_PERMISSIONS (acknowledge, run now, start/stop). admin: every permission.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from accounts.choices import Role

# "app_label.codename" of what operators may do beyond reading; apps add theirs here.
OPERATOR_PERMISSIONS: set[str] = set()


def register_operator_permissions(*names: str) -> None:
    OPERATOR_PERMISSIONS.update(names)


def permissions_for(role: str):
    perms = Permission.objects.select_related("content_type")
    if role == Role.ADMIN:
        return perms.all()
    view = perms.filter(codename__startswith="view_")
    if role == Role.VIEWER:
        return view
    operate = [
        p for p in perms.all() if f"{p.content_type.app_label}.{p.codename}" in OPERATOR_PERMISSIONS
    ]
    return list(view) + operate


def sync_role_groups(**_kwargs) -> None:
    """Create or refresh the three role groups (runs after every migrate)."""
    for role in Role.values:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(permissions_for(role))
