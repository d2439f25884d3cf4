"""Applications, ingest keys and POST /api/metrics/ingest over the API."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from rest_framework.test import APIClient

from accounts.actions import api_key_create
from accounts.models import AuditEvent
from observability.models import Application, IngestKey, MetricPoint, MetricSeries

pytestmark = pytest.mark.django_db
INGEST = "/api/metrics/ingest"


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def send(client: APIClient, document, *, encoding: str | None = None, content_type=None):
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    extra = {}
    if encoding:
        body = gzip.compress(body)
        extra["HTTP_CONTENT_ENCODING"] = encoding
    return client.generic(
        "POST", INGEST, body, content_type=content_type or "application/json", **extra
    )


def points(n: int = 3, name: str = "orders_total") -> list[dict]:
    now = time.time()
    return [
        {"name": name, "labels": {"shop": "eu"}, "value": i, "time": now - 10 + i} for i in range(n)
    ]


# --- applications and keys ---------------------------------------------------------------------


def test_creating_an_application_answers_its_first_ingest_key_once(client_as):
    admin = client_as("admin")
    response = admin.post(
        "/api/applications/", {"slug": "shop", "name": "Shop", "environment": "staging"}
    )
    assert response.status_code == 201, response.content
    key = response.json()["ingest_key"]
    assert key.startswith("noci_")
    stored = IngestKey.objects.get(application__slug="shop")
    assert stored.hashed_key == IngestKey.hash(key) and key not in stored.hashed_key
    assert "ingest_key" not in admin.get("/api/applications/shop/").json()
    assert send(bearer(key), {"points": points()}).status_code == 200
    assert AuditEvent.objects.filter(target_type__icontains="application").exists()


def test_an_application_slug_is_fixed_once_created(client_as, make_application):
    make_application("shop")
    response = client_as("admin").patch(
        "/api/applications/shop/", {"slug": "other", "name": "Renamed"}
    )
    assert response.status_code == 200
    assert Application.objects.get().slug == "shop"


def test_a_bad_application_is_a_400_naming_the_field(client_as):
    response = client_as("admin").post("/api/applications/", {"slug": "no spaces", "name": "x"})
    assert response.status_code == 400
    assert "slug" in response.json()["errors"]


def test_the_application_list_costs_a_fixed_number_of_queries(
    client_as, make_application, django_assert_max_num_queries
):
    for slug in ("a", "b", "c"):
        make_application(slug)
    client = client_as("viewer")
    with django_assert_max_num_queries(4):
        response = client.get("/api/applications/")
    assert [a["slug"] for a in response.json()["results"]] == ["a", "b", "c"]


def test_an_admin_creates_and_revokes_ingest_keys(client_as, make_application):
    make_application("shop")
    admin = client_as("admin")
    created = admin.post("/api/ingest-keys/", {"application": "shop", "name": "ci"})
    assert created.status_code == 201
    key, key_id = created.json()["key"], created.json()["id"]
    assert created.json()["prefix"] in key
    listed = admin.get("/api/ingest-keys/?application=shop").json()["results"]
    assert {k["name"] for k in listed} == {"default", "ci"}
    assert all("key" not in k for k in listed)
    assert send(bearer(key), {"points": points()}).status_code == 200
    assert IngestKey.objects.get(pk=key_id).last_used_at is not None
    assert admin.post(f"/api/ingest-keys/{key_id}/revoke/").status_code == 200
    refused = send(bearer(key), {"points": points()})
    assert refused.status_code == 401
    assert "revoked" in refused.json()["message"]


def test_an_ingest_key_reads_nothing(make_application):
    _, key = make_application("shop")
    client = bearer(key)
    for url in ("/api/applications/", "/api/ingest-keys/"):
        response = client.get(url)
        assert response.status_code == 403
        assert "only writes" in response.json()["message"]
    assert client.get("/api/services/").status_code in (401, 403)


# --- ingestion ---------------------------------------------------------------------------------


def test_an_ingest_key_writes_its_application(make_application):
    application, key = make_application("shop")
    response = send(bearer(key), {"points": points(5)})
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 5, "rejected": 0, "rejections": {}, "errors": []}
    assert MetricPoint.objects.filter(series__application=application).count() == 5


def test_an_operator_api_key_writes_the_application_it_names(make_user, make_application):
    application, _ = make_application("shop")
    _, key = api_key_create(actor=None, user=make_user("operator"), name="pusher")
    response = send(bearer(key), {"application": "shop", "points": points()})
    assert response.status_code == 200, response.content
    assert MetricSeries.objects.filter(application=application).count() == 1


def test_a_viewer_cannot_ingest(make_user, make_application):
    make_application("shop")
    _, key = api_key_create(actor=None, user=make_user("viewer"), name="reader")
    response = send(bearer(key), {"application": "shop", "points": points()})
    assert response.status_code == 403
    assert "operator" in response.json()["message"]


def test_an_ingest_key_of_another_application_is_refused(make_application):
    make_application("shop")
    _, blog_key = make_application("blog")
    response = send(bearer(blog_key), {"application": "shop", "points": points()})
    assert response.status_code == 403
    assert response.json()["errors"] == {"application": [response.json()["message"]]}
    assert not MetricSeries.objects.exists()


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"application": "nope", "points": []}, "application"),
        ({"points": []}, "application"),
    ],
)
def test_a_user_naming_no_or_an_unknown_application_gets_a_400(
    make_user, make_application, document, field
):
    make_application("shop")
    _, key = api_key_create(actor=None, user=make_user("operator"), name="pusher")
    response = send(bearer(key), document)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_an_unknown_or_malformed_key_is_a_401():
    assert send(bearer("noci_deadbeef_nope"), {"points": []}).status_code == 401
    assert send(APIClient(), {"points": []}).status_code in (401, 403)


@pytest.mark.parametrize(
    ("document", "status", "field"),
    [
        (b"{not json", 400, None),
        ([1, 2], 400, None),
        ({"points": "many"}, 400, "points"),
        ({"points": [], "extra": 1}, 400, "extra"),
        ({"points": [5]}, 400, "points[2]"),
        ({"points": [{"value": 1}]}, 400, "points[2].name"),
        ({"points": [{"name": "m", "value": "1"}]}, 400, "points[2].value"),
        ({"points": [{"name": "m", "value": True}]}, 400, "points[2].value"),
        ({"points": [{"name": "m", "value": 1, "time": "yesterday"}]}, 400, "points[2].time"),
        ({"points": [{"name": "m", "value": 1, "labels": {"a": [1]}}]}, 400, "points[2].labels.a"),
        ({"points": [{"name": "m", "value": 1, "kind": "odd"}]}, 400, "points[2].kind"),
        ({"points": [{"name": "m", "value": 1, "colour": "red"}]}, 400, "points[2].colour"),
    ],
)
def test_a_malformed_body_is_a_400_naming_the_field_and_writes_nothing(
    make_application, document, status, field
):
    _, key = make_application("shop")
    if isinstance(document, dict) and isinstance(document.get("points"), list):
        document["points"] = points(2) + document["points"]
    response = send(bearer(key), document)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["message"] and body["code"]
    if field:
        assert field in body["errors"], body
    assert not MetricSeries.objects.exists()
    assert not MetricPoint.objects.exists()


def test_a_wrong_content_type_is_a_415(make_application):
    _, key = make_application("shop")
    response = send(bearer(key), b"name=m", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


def test_a_gzipped_body_is_accepted(make_application):
    _, key = make_application("shop")
    response = send(bearer(key), {"points": points(4)}, encoding="gzip")
    assert response.status_code == 200
    assert response.json()["accepted"] == 4


def test_a_corrupt_gzip_body_is_a_400(make_application):
    _, key = make_application("shop")
    client = bearer(key)
    response = client.generic(
        "POST", INGEST, b"\x1f\x8bnot gzip", content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
    )  # fmt: skip
    assert response.status_code == 400


def test_a_body_over_the_limit_is_a_413_compressed_or_not(make_application, settings):
    settings.INGEST_MAX_BODY_BYTES = 2000
    _, key = make_application("shop")
    big = {"points": points(100)}
    for encoding in (None, "gzip"):
        response = send(bearer(key), big, encoding=encoding)
        assert response.status_code == 413
        assert "INGEST_MAX_BODY_BYTES" in response.json()["message"]
    assert not MetricPoint.objects.exists()


def test_too_many_points_is_a_413_naming_the_limit(make_application, settings):
    settings.INGEST_MAX_ITEMS = 10
    _, key = make_application("shop")
    response = send(bearer(key), {"points": points(11)})
    assert response.status_code == 413
    assert "INGEST_MAX_ITEMS" in response.json()["message"]


def test_rejected_points_are_counted_and_the_rest_stored(make_application):
    _, key = make_application("shop")
    now = time.time()
    document = {
        "points": [
            *points(2),
            {"name": "m", "value": 1, "time": now - 400 * 86400},
            {"name": "bad.name", "value": 1},
            {"name": "m", "value": 1, "time": now + 3600},
        ]
    }
    body = send(bearer(key), document).json()
    assert (body["accepted"], body["rejected"]) == (2, 3)
    assert body["rejections"] == {"too_old": 1, "invalid_name": 1, "too_new": 1}
    assert len(body["errors"]) == 3


def test_a_request_whose_every_point_is_rejected_is_a_400_and_writes_nothing(make_application):
    _, key = make_application("shop")
    response = send(bearer(key), b'{"points": [{"name": "m", "value": NaN}]}')
    assert response.status_code == 400
    assert response.json()["rejections"] == {"non_finite": 1}
    assert not MetricSeries.objects.exists()


def test_times_may_be_iso_8601_or_epoch_seconds_or_missing(make_application):
    _, key = make_application("shop")
    now = time.time()
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))
    document = {"points": [
        {"name": "a", "value": 1, "time": iso},
        {"name": "b", "value": 2, "time": now - 30},
        {"name": "c", "value": 3},
    ]}  # fmt: skip
    assert send(bearer(key), document).json()["accepted"] == 3
    times = dict(MetricPoint.objects.values_list("series__name", "time"))
    assert times["a"].timestamp() == int(now - 60)
    assert abs(times["b"].timestamp() - (now - 30)) < 1e-3
    assert abs(times["c"].timestamp() - now) < 30
