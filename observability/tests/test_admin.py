"""The observability admin: an application added there gets its first key shown once, keys
are revoked rather than deleted, and pages render."""

from __future__ import annotations

import pytest
from django.test import Client

from observability.models import Application, IngestKey

pytestmark = pytest.mark.django_db
APPLICATIONS = "/admin/observability/application/"
KEYS = "/admin/observability/ingestkey/"


@pytest.fixture
def admin_client_(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_adding_an_application_shows_its_first_key_once(admin_client_):
    response = admin_client_.post(
        f"{APPLICATIONS}add/",
        {"slug": "shop", "name": "Shop", "environment": "production", "owner": "",
         "description": "", "ingest_keys-TOTAL_FORMS": "0", "ingest_keys-INITIAL_FORMS": "0"},
        follow=True,
    )  # fmt: skip
    assert response.status_code == 200
    [shown] = [m for m in messages_of(response) if "noci_" in m]
    key = shown.split(": ", 1)[1].split(" ")[0]
    stored = IngestKey.objects.get(application__slug="shop")
    assert stored.hashed_key == IngestKey.hash(key)
    page = admin_client_.get(f"{APPLICATIONS}{Application.objects.get().pk}/change/")
    assert page.status_code == 200
    assert key not in page.content.decode() and stored.prefix in page.content.decode()


def test_keys_are_revoked_from_the_list_and_new_ones_made_from_the_application(
    admin_client_, make_application
):
    application, _ = make_application("shop")
    key = IngestKey.objects.get()
    response = admin_client_.post(
        KEYS, {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is not None
    response = admin_client_.post(
        APPLICATIONS, {"action": "new_ingest_key", "_selected_action": [application.pk]},
        follow=True,
    )  # fmt: skip
    assert any("noci_" in m for m in messages_of(response))
    assert IngestKey.objects.filter(revoked_at__isnull=True).count() == 1
    assert admin_client_.get(KEYS).status_code == 200


def test_the_recent_spans_page_lists_spans_and_a_trace(admin_client_, make_application):
    from observability import actions
    from observability.tests.traces_fixtures import TRACE, request_of, span

    application, _ = make_application("shop")
    request = request_of(span("b7ad6b7169203331", "GET /checkout"),
                         span("00f067aa0ba902b7", "charge", parent="b7ad6b7169203331"))  # fmt: skip
    actions.spans_otlp_ingest(application=application, request=request)
    listing = admin_client_.get(APPLICATIONS)
    assert "/admin/observability/application/spans/" in listing.content.decode()
    page = admin_client_.get("/admin/observability/application/spans/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "GET /checkout" in text and "charge" in text
    assert f"/api/traces/{TRACE}/" in text
    one = admin_client_.get("/admin/observability/application/spans/", {"trace_id": TRACE})
    assert one.content.decode().count("b7ad6b7169203331") >= 2  # its row and the child's parent
    bad = admin_client_.get("/admin/observability/application/spans/", {"trace_id": "zz"})
    assert "32 hexadecimal digits" in bad.content.decode()


def test_the_recent_spans_page_is_for_every_role_and_nobody_else(make_user):
    """As the trace API: every role reads spans (every role is staff with view permissions)."""
    client = Client()
    anonymous = client.get("/admin/observability/application/spans/")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    client.force_login(make_user("viewer"))
    assert client.get("/admin/observability/application/spans/").status_code == 200
