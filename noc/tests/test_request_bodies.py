"""Request bodies the API cannot take are refused in its JSON error shape, by every endpoint
that writes: NUL in any parser's input, JSON nested too deeply, a body over the size limit."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from accounts.choices import Role
from noc.api.parsers import MAX_JSON_DEPTH, too_deep
from noc.tests.test_role_matrix import ENDPOINTS, Endpoint

pytestmark = pytest.mark.django_db

WRITES = [e for e in ENDPOINTS if e.method in ("post", "put", "patch")]
NO_BODY = Endpoint.__dataclass_fields__["payload"].default
WITH_BODY = [e for e in WRITES if e.payload is not NO_BODY]
# Ingestion endpoints decode their own format and answer any other content type with a 415.
OWN_FORMAT = [
    e
    for e in WITH_BODY
    if e.url
    in {
        "/api/metrics/ingest",
        "/api/logs/ingest",
        "/v1/logs?application=matrix-app",
        "/v1/metrics?application=matrix-app",
        "/v1/traces?application=matrix-app",
    }
]
FORMS = [e for e in WITH_BODY if e not in OWN_FORMAT]


@pytest.fixture
def admin_api(make_user) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(make_user(Role.ADMIN))
    return client


def send(client: APIClient, endpoint: Endpoint, body, content_type: str):
    return getattr(client, endpoint.method)(endpoint.resolve(), body, content_type=content_type)


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["message"] and body["code"], body
    return body


# --- NUL in every parser's input ------------------------------------------------------------


@pytest.mark.parametrize("endpoint", FORMS, ids=str)
def test_a_nul_in_a_form_field_is_a_400_naming_it(admin_api, endpoint):
    response = send(admin_api, endpoint, "name=a%00b&title=x", "application/x-www-form-urlencoded")

    body = assert_json_error(response, 400)
    assert "NUL" in body["errors"]["name"][0], body


@pytest.mark.parametrize("endpoint", FORMS, ids=str)
def test_a_nul_in_a_multipart_field_is_a_400_naming_it(admin_api, endpoint):
    response = getattr(admin_api, endpoint.method)(
        endpoint.resolve(), {"title": "x", "service": "a\x00b"}, format="multipart"
    )

    body = assert_json_error(response, 400)
    assert "NUL" in body["errors"]["service"][0], body


@pytest.mark.parametrize("endpoint", OWN_FORMAT, ids=str)
def test_an_endpoint_with_its_own_format_answers_a_form_with_a_415(admin_api, endpoint):
    response = send(admin_api, endpoint, "name=a%00b", "application/x-www-form-urlencoded")

    assert_json_error(response, 415)


def test_a_nul_in_a_repeated_form_field_names_the_value(admin_api):
    response = admin_api.post(
        "/api/maintenance-windows/",
        "name=w&services=a&services=b%00",
        content_type="application/x-www-form-urlencoded",
    )

    body = assert_json_error(response, 400)
    assert "(at services[1])" in body["errors"]["services"][0]


def test_a_form_without_nul_still_works(admin_api):
    response = admin_api.post(
        "/api/api-keys/", "name=from-a-form", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 201, response.content


# --- JSON nested too deeply -------------------------------------------------------------------


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("endpoint", WRITES, ids=str)
def test_deeply_nested_json_is_a_400_on_every_write(admin_api, endpoint):
    response = send(admin_api, endpoint, nested(1000), "application/json")

    if endpoint in WITH_BODY:
        body = assert_json_error(response, 400)
        assert "nested deeper than" in body["message"]
    else:  # endpoints that never read a body may ignore it, but never fail on it
        assert response.status_code < 500


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 200, 5000])
def test_json_over_the_depth_limit_is_refused(admin_api, levels):
    raw = '{"name": ' + nested(levels - 1) + "}"

    response = admin_api.post("/api/api-keys/", raw, content_type="application/json")

    body = assert_json_error(response, 400)
    assert "nested deeper than" in body["message"]


def test_json_at_the_depth_limit_reaches_validation(admin_api):
    name = nested(MAX_JSON_DEPTH - 1)  # the enclosing object is the first level
    response = admin_api.post(
        "/api/api-keys/", '{"name": ' + name + "}", content_type="application/json"
    )

    body = assert_json_error(response, 400)
    assert "name" in body["errors"]  # refused by the serializer, not the parser


def test_deep_json_inside_a_form_field_is_a_400(admin_api, make_service):
    make_service(id="deep")
    response = admin_api.patch(
        "/api/services/deep/",
        "json_expected=" + nested(5000),
        content_type="application/x-www-form-urlencoded",
    )

    assert_json_error(response, 400)


@pytest.mark.parametrize(
    ("value", "deep"),
    [
        (1, False),
        ([], False),
        ({"a": [{"b": []}]}, False),
        (json.loads(nested(MAX_JSON_DEPTH)), False),
        (json.loads(nested(MAX_JSON_DEPTH + 1)), True),
        ([[1, 2]] * 10_000, False),
    ],
)
def test_depth_is_measured_level_by_level(value, deep):
    assert too_deep(value) is deep


# --- bodies over the size limit ------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413_in_the_json_error_shape(admin_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = admin_api.post(
        "/api/incidents/", json.dumps({"title": "x" * 2000}), content_type="application/json"
    )

    body = assert_json_error(response, 413)
    assert body["code"] == "too_large"
    assert "1,000 bytes" in body["message"]


def test_a_ten_megabyte_body_is_a_413(admin_api):
    response = admin_api.post(
        "/api/services/", '{"name": "' + "x" * 10_000_000 + '"}', content_type="application/json"
    )

    assert_json_error(response, 413)


def test_too_many_form_fields_is_a_400(admin_api, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    form = "&".join(f"f{i}=x" for i in range(20))
    response = admin_api.post(
        "/api/api-keys/", form, content_type="application/x-www-form-urlencoded"
    )

    assert_json_error(response, 400)


def test_an_unknown_api_path_is_a_json_404(admin_api):
    body = assert_json_error(admin_api.get("/api/no-such-thing/"), 404)
    assert body["code"] == "not_found"


def test_pages_outside_the_api_keep_django_error_pages(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
