"""Ingest keys as DRF authentication and the permissions of the observability endpoints.

`IngestKeyAuthentication` accepts `Authorization: Bearer noci_…` and leaves every other
credential to the next authentication class, so an ingestion endpoint lists it first and
keeps user API keys and sessions working. The caller it yields, `IngestClient`, has no role:
`CanIngest` lets it (or a person or user API key with the operator role) write, and every
read endpoint refuses it through `RolePermission` with a message saying why.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings

from accounts.choices import Role
from noc.api.permissions import RolePermission, has_role
from observability.actions import ingest_key_touch
from observability.ingestion import IngestError, ingest_key_for, is_ingest_key
from observability.models import IngestKey


class IngestClient:
    """The caller behind an ingest key: authenticated, but no user and no role."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    pk = id = None
    role = "ingest key"

    def __init__(self, ingest_key: IngestKey) -> None:
        self.ingest_key = ingest_key
        self.application = ingest_key.application
        self.username = f"ingest key {ingest_key.prefix}"

    def __str__(self) -> str:
        return self.username


def bearer_token(header: bytes) -> str | None:
    parts = header.split()
    if len(parts) == 2 and parts[0].lower() == b"bearer":
        return parts[1].decode("ascii", "replace")
    return None


class IngestKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        token = bearer_token(get_authorization_header(request))
        if token is None or not is_ingest_key(token):
            return None
        try:
            ingest_key = ingest_key_for(token)
        except IngestError as exc:
            raise exceptions.AuthenticationFailed(exc.message) from exc
        ingest_key_touch(ingest_key=ingest_key)
        return IngestClient(ingest_key), ingest_key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="ingest"'


# Ingestion endpoints: ingest keys first, then whatever the project accepts.
INGEST_AUTHENTICATION = [IngestKeyAuthentication, *api_settings.DEFAULT_AUTHENTICATION_CLASSES]


class CanIngest(BasePermission):
    message = "Writing data needs an ingest key, or the operator role or above."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, IngestKey):
            return True
        if has_role(request.user, Role.OPERATOR):
            return True
        if request.user and request.user.is_authenticated:
            self.message = (
                f"Writing data needs an ingest key or the operator role; yours is "
                f"{request.user.role}."
            )
        return False


class ReadPermission(RolePermission):
    """The project's role rules, with a clear refusal for ingest keys, which read nothing."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, IngestKey):
            self.message = "An ingest key only writes data; read with a user's API key."
            return False
        return super().has_permission(request, view)
