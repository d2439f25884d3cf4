"""Who may do what on the console's pages: the API's role matrix, read from the API's own
viewsets so that a page and the endpoint it mirrors can never disagree.

Reading a page needs a signed-in user of any role (anonymous visitors are sent to the login
page); an action needs the role its API endpoint needs (`required_roles` of the viewset, admin
for writes it does not lower), checked again on the POST whatever the page showed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.viewsets import ViewSetMixin

from accounts.choices import Role
from incidents.api.views import IncidentViewSet
from noc.api.permissions import has_role
from services.api.views import ServiceViewSet

View = Callable[..., HttpResponse]


def api_role(viewset: type[ViewSetMixin], action: str) -> str:
    """The least role the API asks for `action` on `viewset` (noc.api.permissions' rule for
    a write: the view's `required_roles`, else `write`, else admin)."""
    roles = getattr(viewset, "required_roles", {})
    return roles.get(action, roles.get("write", Role.ADMIN))


# The page actions and the API actions they mirror.
INCIDENT_ACTION_NAMES = (
    "acknowledge", "assign", "change_status", "comment", "resolve", "close", "publish",
)  # fmt: skip
INCIDENT_ACTIONS = {name: api_role(IncidentViewSet, name) for name in INCIDENT_ACTION_NAMES}
SERVICE_ACTIONS = {
    "check_now": api_role(ServiceViewSet, "check_now"),
    "enable": api_role(ServiceViewSet, "enable"),
    "disable": api_role(ServiceViewSet, "disable"),
}


def may(user, role: str) -> bool:
    return has_role(user, role)


def role_required(role: str) -> Callable[[View], View]:
    """Signed in (else the login page), and at least `role` (else 403)."""

    def decorate(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not has_role(request.user, role):
                raise PermissionDenied(
                    f"This needs the {role} role; yours is {getattr(request.user, 'role', '-')}."
                )
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


reader_required = role_required(Role.VIEWER)
