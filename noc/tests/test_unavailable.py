"""A request that needs a dependency that is away answers 503 naming it, with a Retry-After:
the stack degrades, it does not fail with a 500."""

from __future__ import annotations

import kombu.exceptions
import pytest
import redis.exceptions
from django.db import OperationalError

from services.api import views as service_views
from web.queries import public

pytestmark = pytest.mark.django_db


def test_a_page_whose_database_is_away_is_a_503_naming_it(client, monkeypatch):
    def database_gone():
        raise OperationalError('connection to server on socket "/x/.s.PGSQL.5432" failed')

    monkeypatch.setattr(public, "public_status", database_gone)
    response = client.get("/status/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "The database (PostgreSQL) is unavailable" in response.content.decode()


@pytest.mark.parametrize(
    ("error", "named"),
    [
        (OperationalError("server closed the connection unexpectedly"), "PostgreSQL"),
        (redis.exceptions.ConnectionError("Error 111 connecting"), "Redis"),
        (kombu.exceptions.OperationalError("Error 111 connecting"), "The task broker"),
    ],
)
def test_an_api_call_whose_dependency_is_away_is_a_json_503(client_as, monkeypatch, error, named):
    def gone(self, request, *args, **kwargs):
        raise error

    monkeypatch.setattr(service_views.ServiceViewSet, "list", gone)
    response = client_as("viewer").get("/api/services/")
    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "unavailable"
    assert named in body["message"]


def test_any_other_error_stays_a_500(client_as, monkeypatch):
    def bug(self, request, *args, **kwargs):
        raise ZeroDivisionError

    monkeypatch.setattr(service_views.ServiceViewSet, "list", bug)
    api = client_as("viewer")
    api.raise_request_exception = False
    assert api.get("/api/services/").status_code == 500
