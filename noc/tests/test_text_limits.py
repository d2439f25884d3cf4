"""Every free-text field has a documented maximum (noc/limits.py): one character over it is a
400 naming the field with nothing written, at the maximum it is accepted, the OpenAPI schema
states it, and raising the limits needed no table rewrite."""

from __future__ import annotations

import io
import json

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.validators import MaxLengthValidator
from django.db import models
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.choices import Role
from noc.limits import (
    CHECK_BODY_MAX_CHARS,
    DESCRIPTION_MAX_CHARS,
    EMAILS_MAX_COUNT,
    HEADER_VALUE_MAX_CHARS,
    HEADERS_MAX_COUNT,
    JSON_EXPECTED_MAX_CHARS,
    NOTES_MAX_CHARS,
    TAGS_MAX_COUNT,
)

pytestmark = pytest.mark.django_db

PROJECT_APPS = ("accounts", "services", "incidents", "slos", "noc")


@pytest.fixture
def admin_api(make_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(make_user(Role.ADMIN))
    return client


def test_every_text_field_of_the_project_has_a_maximum_that_full_clean_enforces():
    text_fields = [
        field
        for app in PROJECT_APPS
        for model in apps.get_app_config(app).get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, models.TextField)
    ]
    assert len(text_fields) >= 8
    for field in text_fields:
        assert field.max_length, f"{field.model.__name__}.{field.name} has no maximum"
        assert any(
            isinstance(v, MaxLengthValidator) and v.limit_value == field.max_length
            for v in field.validators
        ), f"{field.model.__name__}.{field.name} is not checked by full_clean()"


# --- through the API: one over is refused, the maximum is accepted --------------------------


def _service(**fields) -> dict:
    return {"id": "limits", "name": "Limits", "url": "https://example.com/", **fields}


def _headers(n: int, value: str = "v") -> dict:
    return {f"X-H{i}": value for i in range(n)}


SERVICE_LIMITS = [
    ("description", lambda n: _service(description="d" * n), DESCRIPTION_MAX_CHARS),
    ("body", lambda n: _service(method="POST", body="b" * n), CHECK_BODY_MAX_CHARS),
    ("headers", lambda n: _service(headers=_headers(n)), HEADERS_MAX_COUNT),
    ("headers", lambda n: _service(headers={"X-A": "v" * n}), HEADER_VALUE_MAX_CHARS),
    ("tags", lambda n: _service(tags=[f"t{i}" for i in range(n)]), TAGS_MAX_COUNT),
    # A JSON string of n characters: its JSON text is n + 2 (the quotes).
    ("json_expected", lambda n: _service(json_path="$.a", json_expected="j" * (n - 2)),
     JSON_EXPECTED_MAX_CHARS),
]  # fmt: skip


@pytest.mark.parametrize(
    ("field", "payload", "limit"), SERVICE_LIMITS, ids=[f"{f}-{n}" for f, _, n in SERVICE_LIMITS]
)
def test_a_service_field_over_its_maximum_is_a_400_and_nothing_is_saved(
    admin_api, field, payload, limit
):
    from services.models import Service

    response = admin_api.post("/api/services/", payload(limit + 1), format="json")

    assert response.status_code == 400, response.content[:300]
    assert field in response.json()["errors"], response.json()
    assert not Service.objects.exists()
    assert admin_api.post("/api/services/", payload(limit), format="json").status_code == 201


def test_a_window_description_over_its_maximum_is_a_400(admin_api, make_service):
    make_service(id="w")

    def window(n: int):
        return {"name": "w", "services": ["w"], "cron": "0 0 3 * * *", "duration_minutes": 5,
                "description": "d" * n}  # fmt: skip

    over = admin_api.post("/api/maintenance-windows/", window(DESCRIPTION_MAX_CHARS + 1))
    assert over.status_code == 400
    assert "description" in over.json()["errors"]
    at = admin_api.post("/api/maintenance-windows/", window(DESCRIPTION_MAX_CHARS))
    assert at.status_code == 201, at.content


def test_an_slo_description_over_its_maximum_is_a_400(admin_api, make_service):
    make_service(id="s")

    def slo(n: int, slo_id: str):
        return {"id": slo_id, "name": "S", "service": "s", "sli_type": "availability",
                "target": 99.5, "description": "d" * n}  # fmt: skip

    over = admin_api.post("/api/slos/", slo(DESCRIPTION_MAX_CHARS + 1, "over"), format="json")
    assert over.status_code == 400
    assert "description" in over.json()["errors"]
    at = admin_api.post("/api/slos/", slo(DESCRIPTION_MAX_CHARS, "at"), format="json")
    assert at.status_code == 201, at.content


INCIDENT_NOTES = [
    ("post", "", "summary", lambda n: {"service": "i", "title": "T", "severity": "low",
                                       "summary": "s" * n}),
    ("patch", "{id}/", "summary", lambda n: {"summary": "s" * n}),
    ("patch", "{id}/", "root_cause", lambda n: {"root_cause": "r" * n}),
    ("patch", "{id}/", "resolution_notes", lambda n: {"resolution_notes": "r" * n}),
    ("post", "{id}/status/", "note", lambda n: {"status": "investigating", "note": "n" * n}),
    ("post", "{id}/resolve/", "resolution_notes", lambda n: {"resolution_notes": "r" * n}),
    ("post", "{id}/comment/", "message", lambda n: {"message": "m" * n}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "field", "payload"), INCIDENT_NOTES, ids=str)
def test_incident_notes_over_their_maximum_are_a_400(
    admin_api, make_service, method, path, field, payload
):
    from incidents.actions import incident_create_manual
    from incidents.models import IncidentEvent

    service = make_service(id="i")
    incident = (
        incident_create_manual(actor=None, service=service, title="T", severity="low")
        if path
        else None
    )
    url = "/api/incidents/" + path.format(id=incident.pk if incident else "")
    events = IncidentEvent.objects.count()

    over = getattr(admin_api, method)(url, payload(NOTES_MAX_CHARS + 1), format="json")

    assert over.status_code == 400, over.content[:300]
    assert field in over.json()["errors"]
    assert IncidentEvent.objects.count() == events
    if incident is not None:
        at = getattr(admin_api, method)(url, payload(NOTES_MAX_CHARS), format="json")
        assert at.status_code == 200, at.content[:300]


def test_channel_headers_and_addresses_are_bounded(admin_api):
    def channel(**fields):
        return admin_api.post("/api/notification-channels/", {"name": "c", **fields}, format="json")

    too_many = channel(kind="webhook", url="https://h.example.com/", headers=_headers(51))
    assert "headers" in too_many.json()["errors"]
    too_long = channel(kind="webhook", url="https://h.example.com/", headers={"X-A": "v" * 8193})
    assert "headers" in too_long.json()["errors"]
    addresses = [f"ops{i}@example.test" for i in range(EMAILS_MAX_COUNT + 1)]
    assert "email_to" in channel(kind="email", email_to=addresses).json()["errors"]


def test_an_import_names_the_entry_whose_text_is_too_long(tmp_path):
    from services.models import Service

    path = tmp_path / "services.json"
    path.write_text(json.dumps([{"id": "long", "name": "L", "url": "https://example.com/",
                                 "description": "d" * 100_000}]))  # fmt: skip
    err = io.StringIO()

    with pytest.raises(Exception, match="invalid"):
        call_command("import_services", str(path), stdout=io.StringIO(), stderr=err)

    assert "entry 1 (long): field description: " in err.getvalue()
    assert not Service.objects.exists()


# --- documented ---------------------------------------------------------------------------------


def test_the_openapi_schema_states_every_maximum():
    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]

    def max_length(component: str, field: str) -> int | None:
        return components[component]["properties"][field].get("maxLength")

    assert max_length("ServiceRequest", "description") == DESCRIPTION_MAX_CHARS
    assert max_length("ServiceRequest", "body") == CHECK_BODY_MAX_CHARS
    assert max_length("MaintenanceWindowRequest", "description") == DESCRIPTION_MAX_CHARS
    assert max_length("SLORequest", "description") == DESCRIPTION_MAX_CHARS
    assert max_length("IncidentCreateRequest", "summary") == NOTES_MAX_CHARS
    for field in ("summary", "root_cause", "resolution_notes"):
        assert max_length("PatchedIncidentUpdateRequest", field) == NOTES_MAX_CHARS
    assert max_length("CommentRequest", "message") == NOTES_MAX_CHARS
    assert max_length("StatusChangeRequest", "note") == NOTES_MAX_CHARS


@pytest.mark.parametrize(
    ("app", "migration"),
    [("services", "0004_text_maximums"), ("incidents", "0004_text_maximums"),
     ("slos", "0003_text_maximums")],
)  # fmt: skip
def test_the_maximums_were_added_without_touching_the_tables(app, migration):
    out = io.StringIO()
    call_command("sqlmigrate", app, migration, stdout=out)

    statements = [line for line in out.getvalue().splitlines() if line and line[:2] != "--"]
    assert statements == ["BEGIN;", "COMMIT;"], statements
