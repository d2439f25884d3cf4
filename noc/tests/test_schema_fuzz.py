"""Requests generated from the OpenAPI schema (schemathesis, a few examples per operation):
no answer is a 500, and every answer's status, content type and body are as the schema
documents them. Rules a schema cannot state (an existing service, a valid cron, a NUL) make
many generated requests 400s: those are checked for their shape, not counted as failures."""

from __future__ import annotations

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from schemathesis import checks

from accounts.actions import api_key_create
from accounts.choices import Role

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 3
# These contact the service or the receiver named in stored data: never with generated
# addresses (a test sends traffic only to this machine). The role matrix and their own tests
# cover them.
OUTBOUND = ("/check-now/", "/test/")
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture
def in_test_transaction():
    """The WSGI handler closes the connection after each request unless told otherwise (as
    Django's test client does): keep it, so the requests see and roll back with the test."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_generated_requests_get_documented_answers(make_user, settings, in_test_transaction):
    from noc.wsgi import application

    settings.NOC_API_THROTTLE_RATES = {"key": None, "address": None, "ingest": None}
    _, key = api_key_create(actor=None, user=make_user(Role.ADMIN), name="fuzz")
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    failures: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith(OUTBOUND):
            continue

        @given(case=operation.as_strategy())
        @examples(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {key}"})
            try:
                case.validate_response(response, checks=CHECKS)
            except checks.FailureGroup as failure:
                failures.append(f"{case.method} {case.formatted_path}: {failure}"[:1500])

        exercise()

    assert not failures, f"{len(failures)} answers disagree with the schema:\n\n" + "\n\n".join(
        failures[:5]
    )
