"""Every endpoint × every role × its methods: who may and who may not.

Later issues add their endpoints to ENDPOINTS. `minimum` is the least role allowed; anonymous
callers always get 401/403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from accounts.choices import ROLE_RANK, Role


@dataclass
class Endpoint:
    method: str
    url: str | Callable[[], str]
    minimum: str
    payload: Callable[[], dict] = field(default=lambda: {})

    def resolve(self) -> str:
        return self.url() if callable(self.url) else self.url

    def __str__(self) -> str:
        url = self.url if isinstance(self.url, str) else self.url.__name__
        return f"{self.method} {url}"


def _some_user_url() -> str:
    from accounts.models import User

    user = User.objects.create(username="target", email="target@example.test")
    return f"/api/users/{user.pk}/"


def _new_user() -> dict:
    return {"username": "new", "email": "new@example.test", "role": "viewer"}


ENDPOINTS = [
    Endpoint("get", "/api/me/", Role.VIEWER),
    Endpoint("get", "/api/users/", Role.ADMIN),
    Endpoint("post", "/api/users/", Role.ADMIN, _new_user),
    Endpoint("get", _some_user_url, Role.ADMIN),
    Endpoint("patch", _some_user_url, Role.ADMIN, lambda: {"first_name": "T"}),
    Endpoint("get", "/api/api-keys/", Role.VIEWER),
    Endpoint("post", "/api/api-keys/", Role.VIEWER, lambda: {"name": "ci"}),
    Endpoint("get", "/api/audit-events/", Role.ADMIN),
]
ROLES = [None, Role.VIEWER, Role.OPERATOR, Role.ADMIN]


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_role_matrix(client_as, endpoint: Endpoint, role: str | None) -> None:
    client = client_as(role)
    response = getattr(client, endpoint.method)(
        endpoint.resolve(), endpoint.payload(), format="json"
    )
    if role is None:
        assert response.status_code in (401, 403), response.content
    elif ROLE_RANK[role] >= ROLE_RANK[endpoint.minimum]:
        assert response.status_code < 400, (response.status_code, response.content)
    else:
        assert response.status_code == 403, response.content
        assert endpoint.minimum in response.json()["message"]
