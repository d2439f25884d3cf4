"""POST /api/logs/ingest and GET /api/logs/search over the API (PostgreSQL store)."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from observability.models import LogLine
from observability.tests.test_api import bearer

pytestmark = pytest.mark.django_db
INGEST = "/api/logs/ingest"
SEARCH = "/api/logs/search"
TRACE = "0af7651916cd43dd8448eb211c80319c"


def send(client, document, *, gzipped: bool = False):
    body = json.dumps(document).encode()
    extra = {}
    if gzipped:
        body, extra = gzip.compress(body), {"HTTP_CONTENT_ENCODING": "gzip"}
    return client.generic("POST", INGEST, body, content_type="application/json", **extra)


def test_an_ingest_key_writes_lines_that_a_viewer_finds(make_application, client_as):
    _, key = make_application("shop")
    now = time.time()
    response = send(bearer(key), {"logs": [
        {"time": now - 5, "level": "ERROR", "message": "payment refused for order 42",
         "service": "api", "trace_id": TRACE.upper(), "span_id": "b7ad6b7169203331",
         "attributes": {"order": 42}},
        {"time": now - 4, "level": "warning", "message": "retrying payment"},
    ]}, gzipped=True)  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 2, "rejected": 0, "rejections": {}, "errors": []}
    line = LogLine.objects.get(level="error")
    assert (line.trace_id, line.service, line.attributes) == (TRACE, "api", {"order": 42})
    found = client_as("viewer").get(SEARCH, {"q": "payment", "level": "error,warn"}).json()
    assert [r["message"] for r in found["results"]] == [
        "retrying payment", "payment refused for order 42",
    ]  # fmt: skip
    first = found["results"][1]
    assert first["application"] == "shop" and first["level"] == "error"
    assert first["trace"].endswith(f"/api/traces/{TRACE}/")
    assert "<mark>payment</mark>" in first["highlight"][0]
    assert found["results"][0]["trace"] is None


def test_search_pages_follow_next(application, client_as):
    from observability import actions
    from observability.tests.logs_fixtures import record

    actions.log_records_write(
        records=[record(application, f"page line {i}", minutes_ago=30 - i) for i in range(7)]
    )
    client, url, seen = client_as("viewer"), f"{SEARCH}?q=line&page_size=3", []
    while url:
        page = client.get(url).json()
        seen += [r["message"] for r in page["results"]]
        url = page["next"]
    assert seen == [f"page line {i}" for i in reversed(range(7))]


def test_lines_outside_the_retention_or_too_far_ahead_are_counted_not_stored(make_application):
    _, key = make_application("shop")
    now = time.time()
    response = send(bearer(key), {"logs": [
        {"time": now - 40 * 86400, "message": "ancient"},
        {"time": now + 3600, "message": "from the future"},
        {"message": "now"},
    ]})  # fmt: skip
    assert response.status_code == 200
    assert response.json()["rejections"] == {"too_old": 1, "too_new": 1}
    assert list(LogLine.objects.values_list("message", flat=True)) == ["now"]
    every = send(bearer(key), {"logs": [{"time": now - 40 * 86400, "message": "ancient"}]})
    assert every.status_code == 400 and every.json()["code"] == "rejected"


def test_attributes_are_stored_as_sent_escapes_and_text_alike(make_application):
    _, key = make_application("shop")
    attributes = {"path": "C:\\u0000dir", "name": "Zoë", "n": 1.5, "ok": True, "none": None}
    response = send(bearer(key), {"logs": [{"message": "stored", "attributes": attributes}]})
    assert response.status_code == 200, response.content
    assert LogLine.objects.get().attributes == attributes


@pytest.mark.parametrize(
    ("line", "status", "field"),
    [
        ({"message": "x" * 70_000}, 413, "logs[1].message"),
        ({"message": "ok", "level": "loud"}, 400, "logs[1].level"),
        ({"message": "ok", "trace_id": "xyz"}, 400, "logs[1].trace_id"),
        ({"message": "ok", "span_id": "0af7651916cd43dd8448eb211c80319c"}, 400, "logs[1].span_id"),
        ({"message": "nul \u0000 here"}, 400, "logs[1].message"),
        ({"message": "ok", "attributes": {"k": "nul \u0000"}}, 400, "logs[1].attributes.k"),
        ({"message": "ok", "attributes": {f"a{i}": i for i in range(65)}}, 400,
         "logs[1].attributes"),
        ({"message": "ok", "colour": "red"}, 400, "logs[1].colour"),
        ({"message": 42}, 400, "logs[1].message"),
        ({"message": "ok", "time": "yesterday"}, 400, "logs[1].time"),
        ({"message": "ok", "service": "s" * 201}, 400, "logs[1].service"),
        ({"message": "é" * 40_000}, 413, "logs[1].message"),  # 80,000 bytes in 40,000 characters
        ({"message": "lone \ud800 surrogate"}, 400, "logs[1].message"),
        ({"message": "ok", "attributes": {"k": "lone \ud800"}}, 400, "logs[1].attributes"),
        ({"message": "ok", "attributes": {"k": float("nan")}}, 400, "logs[1].attributes.k"),
        ({"message": "ok", "attributes": []}, 400, "logs[1].attributes"),
        ({"message": "ok", "trace_id": 0}, 400, "logs[1].trace_id"),
        ({"message": "ok", "host": 7}, 400, "logs[1].host"),
    ],
)  # fmt: skip
def test_a_bad_line_refuses_the_whole_request_naming_it(make_application, line, status, field):
    _, key = make_application("shop")
    response = send(bearer(key), {"logs": [{"message": "good"}, line]})
    assert response.status_code == status, response.content
    assert field in response.json()["errors"], response.json()
    assert not LogLine.objects.exists()


def test_malformed_bodies_are_refused(make_application):
    _, key = make_application("shop")
    client = bearer(key)
    assert client.generic("POST", INGEST, b"{", content_type="application/json").status_code == 400
    assert send(client, {"lines": []}).json()["errors"] == {"lines": ["Unknown field 'lines'."]}
    assert send(client, {"logs": {}}).status_code == 400
    wrong_type = client.generic("POST", INGEST, b"{}", content_type="text/plain")
    assert wrong_type.status_code == 415


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": '"unclosed'}, "q"),
        ({"q": "-"}, "q"),
        ({"q": "***"}, "q"),
        ({"q": "a*b"}, "q"),
        ({"level": "loud"}, "level"),
        ({"application": "nope"}, "application"),
        ({"trace_id": "xyz"}, "trace_id"),
        ({"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "from"),
        ({"from": "2026-12-01T00:00:00+18:00"}, "from"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"page_size": 0}, "page_size"),
    ],
)
def test_a_search_the_syntax_cannot_express_is_a_400_naming_it(client_as, params, field):
    response = client_as("viewer").get(SEARCH, params)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()


def test_an_ingest_key_cannot_search(make_application):
    _, key = make_application("shop")
    response = bearer(key).get(SEARCH)
    assert response.status_code == 403 and "only writes" in response.json()["message"]


@pytest.mark.parametrize(
    "attributes",
    [{"order": 42}, {"path": "C:\\u0000dir", "name": "Zoë", "n": 1.5, "ok": True, "none": None},
     {"nested": {"a": [1, "b"]}}],
)  # fmt: skip
def test_the_usual_attributes_take_the_short_path_to_the_same_json(attributes):
    from observability.logs.decode import check_attributes, usual_attributes_json

    data = check_attributes(attributes, "attributes", 64)
    assert json.loads(data) == attributes
    # "\\u0000" as text is storable, but only the full check tells it from a NUL.
    expected = b"" if b"\\u0000" in data else data
    assert usual_attributes_json(attributes, 64) == expected


@pytest.mark.parametrize(
    "attributes",
    [{"k": "nul \u0000"}, {"k": "lone \ud800"}, {"k": float("nan")}, [], "text",
     {f"a{i}": i for i in range(65)}],
)  # fmt: skip
def test_unusual_attributes_are_left_to_the_check_that_names_the_field(attributes):
    from observability.ingestion import IngestError
    from observability.logs.decode import check_attributes, usual_attributes_json

    assert usual_attributes_json(attributes, 64) == b""
    with pytest.raises(IngestError):
        check_attributes(attributes, "attributes", 64)
