"""The OpenAPI schema agrees with the API: every real response of every endpoint (success and
error) validates against what the schema documents for its status code, and every request the
API accepts validates against the schema's request body."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient

from accounts.choices import Role
from noc.tests.test_role_matrix import ENDPOINTS, Endpoint

pytestmark = pytest.mark.django_db


# --- the schema as JSON Schema ----------------------------------------------------------------


def json_schema(node: Any) -> Any:
    """OpenAPI 3.0's schema objects as JSON Schema 2020-12: `nullable: true` becomes a null
    option, boolean `exclusiveMaximum`/`exclusiveMinimum` become numbers, and `oneOf` becomes
    `anyOf` (formats are not checked here, so a blank string matches both `maxLength: 0` and
    `format: uri`, which OpenAPI tells apart)."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: json_schema(value) for key, value in node.items() if key != "nullable"}
    for bound, exclusive in (("maximum", "exclusiveMaximum"), ("minimum", "exclusiveMinimum")):
        if converted.get(exclusive) is True:
            converted[exclusive] = converted.pop(bound)
        elif converted.get(exclusive) is False:
            del converted[exclusive]
    if "oneOf" in converted:
        converted["anyOf"] = converted.pop("oneOf")
    if not node.get("nullable"):
        return converted
    if "type" in converted and "enum" not in converted:
        converted["type"] = [converted["type"], "null"]
        return converted
    return {"anyOf": [converted, {"type": "null"}]}


@cache
def openapi() -> dict:
    return json_schema(SchemaGenerator().get_schema(request=None, public=True))


@cache
def operations() -> list[tuple[re.Pattern, str, dict]]:
    found = []
    for template, methods in openapi()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$")
        found += [(pattern, method, operation) for method, operation in methods.items()]
    return found


def operation_for(method: str, path: str) -> dict:
    """The operation of the most literal template that matches (`/stats/` before `/{id}/`)."""
    matches = [
        (pattern.pattern.count("[^/]+"), op)
        for pattern, m, op in operations()
        if m == method and pattern.match(path)
    ]
    assert matches, f"{method.upper()} {path} is not in the schema"
    return min(matches, key=lambda match: match[0])[1]


def validate(instance: Any, schema: dict, where: str) -> None:
    validator = Draft202012Validator({**schema, "components": openapi()["components"]})
    problems = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not problems, f"{where}:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
        for e in problems[:10]
    )


def check_response(method: str, url: str, response) -> None:
    path = url.split("?", 1)[0]
    operation = operation_for(method, path)
    where = f"{method.upper()} {url} → {response.status_code}"
    documented = operation["responses"]
    assert str(response.status_code) in documented, (
        f"{where}: status not documented (documented: {', '.join(documented)})"
    )
    content = documented[str(response.status_code)].get("content")
    if not content or not response.content:
        assert not response.content or response.status_code >= 400, where
        return
    media = response["Content-Type"].split(";")[0]
    assert media in content, f"{where}: {media} is not documented ({', '.join(content)})"
    if media == "application/json":
        validate(response.json(), content[media]["schema"], where)


def check_request(method: str, url: str, payload: dict) -> None:
    operation = operation_for(method, url.split("?", 1)[0])
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if payload:
        assert body, f"{method.upper()} {url}: the schema takes no JSON body"
    if body:
        validate(payload, body["schema"], f"request {method.upper()} {url}")


# --- real requests ---------------------------------------------------------------------------


def call(client: APIClient, endpoint: Endpoint):
    url = endpoint.resolve()
    payload = endpoint.payload()
    response = getattr(client, endpoint.method)(url, payload, format="json")
    return url, payload, response


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_every_answer_to_an_allowed_caller_matches_the_schema(client_as, endpoint):
    url, payload, response = call(client_as(Role.ADMIN), endpoint)

    assert response.status_code < 400, response.content[:300]
    check_response(endpoint.method, url, response)
    if endpoint.method != "get":
        check_request(endpoint.method, url, payload)


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.minimum != Role.VIEWER][:6], ids=str
)
@pytest.mark.parametrize("role", [None, Role.VIEWER])
def test_refusals_match_the_schema(client_as, endpoint, role):
    url, _, response = call(client_as(role), endpoint)

    assert response.status_code in (401, 403)
    check_response(endpoint.method, url, response)


# --- answers with every optional part filled in, and error answers ----------------------------


@pytest.fixture
def lived_in(client_as, make_user, make_service, receiver):
    """Services with results, incidents through their whole life and untouched ones, an
    evaluated SLO, a channel with deliveries: the states whose fields may be null or not."""
    from datetime import timedelta

    from django.utils import timezone

    from incidents import actions
    from incidents.tests.test_channels_api import _deliveries
    from slos.actions import slo_create, slos_evaluate
    from slos.tests.test_api import insert_minutes

    admin = client_as(Role.ADMIN)
    person = make_user(Role.OPERATOR, username="ops")
    service = make_service(id="lived", tags=["web"])
    make_service(id="beat", kind="push", url="")
    assert admin.post("/api/services/lived/check-now/").status_code == 200
    _deliveries(receiver, make_service)  # a default webhook channel, one delivery sent, one not
    done = actions.incident_create_manual(
        actor=person, service=service, title="Old", severity="low"
    )
    actions.incident_acknowledge(incident=done, actor=person)
    actions.incident_assign(incident=done, assignee=person, actor=person)
    actions.incident_comment(incident=done, actor=person, message="looking")
    actions.incident_resolve(incident=done, actor=person, resolution_notes="fixed")
    actions.incident_close(incident=done, actor=person)
    fresh = make_service(id="fresh")
    actions.incident_create_manual(actor=None, service=fresh, title="New", severity="high")
    insert_minutes("lived", timezone.now() - timedelta(hours=2), 120, up=1, down=1)
    slo_create(actor=None, id="lived-slo", name="L", service=service, sli_type="availability",
               target="99.9")  # fmt: skip
    slos_evaluate()
    return admin, done


READS = [
    "/api/me/", "/api/users/", "/api/api-keys/", "/api/audit-events/", "/api/services/",
    "/api/services/lived/", "/api/services/beat/", "/api/services/lived/results/",
    "/api/services/lived/uptime/", "/api/incidents/", "/api/incidents/{done}/",
    "/api/incidents/stats/", "/api/incidents/active/?service=fresh", "/api/slos/",
    "/api/slos/lived-slo/", "/api/slos/lived-slo/status/", "/api/slos/lived-slo/history/",
    "/api/slos/lived-slo/budget/", "/api/slos/lived-slo/alerts/", "/api/slos/summary/",
    "/api/slos/report/", "/api/notification-channels/", "/api/notification-deliveries/",
    "/api/maintenance-windows/",
]  # fmt: skip


def test_answers_with_every_optional_part_match_the_schema(lived_in):
    client, done = lived_in
    for url in READS:
        url = url.format(done=done.pk)
        response = client.get(url)
        assert response.status_code == 200, (url, response.content[:300])
        check_response("get", url, response)


BAD = [
    ("get", "/api/incidents/?opened_after=yesterday", None),
    ("get", "/api/incidents/999999/", None),
    ("post", "/api/services/", {"id": "x", "name": "X", "url": "ftp://x/"}),
    ("patch", "/api/services/nope/", {"name": "N"}),
    ("post", "/api/incidents/{done}/acknowledge/", None),
    ("get", "/api/services/lived/uptime/?window=1y", None),
]


def test_error_answers_match_the_schema(lived_in):
    client, done = lived_in
    for method, url, payload in BAD:
        url = url.format(done=done.pk)
        response = getattr(client, method)(url, payload, format="json")
        assert response.status_code >= 400, (url, response.status_code)
        check_response(method, url, response)
