"""Role-based API permissions: viewer reads, operator also acts, admin also configures.

A view says which role each action needs through `required_roles` ({action: role}); reads need
viewer, any other action needs admin unless the view lowers it (operator actions such as
acknowledge or check-now).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.choices import ROLE_RANK, Role

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


def has_role(user, role: str) -> bool:
    if not (user and user.is_authenticated and user.is_active):
        return False
    return ROLE_RANK.get(getattr(user, "role", None), -1) >= ROLE_RANK[Role(role)]


def required_role(request: Request, view: APIView) -> str:
    action = getattr(view, "action", None)
    roles = getattr(view, "required_roles", {})
    if action in roles:
        return roles[action]
    if request.method in SAFE_METHODS:
        return roles.get("read", Role.VIEWER)
    return roles.get("write", Role.ADMIN)


class RolePermission(BasePermission):
    message = "Your role does not allow this action."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        role = required_role(request, view)
        if has_role(request.user, role):
            return True
        self.message = f"This action needs the {role} role; yours is {request.user.role}."
        return False
