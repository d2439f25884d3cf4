"""GET /api/traces/ (one row per trace, newest first, filters, pages) and
GET /api/traces/{trace_id}/ (the span tree, orphans at the top, the link to its logs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from observability import actions
from observability.tests.test_api import bearer
from observability.tests.traces_fixtures import OTHER_TRACE, TRACE, request_of, span
from observability.traces.query import MAX_TREE_DEPTH, span_tree

pytestmark = pytest.mark.django_db
THIRD = "11111111111111111111111111111111"


def push(application, *spans, service="checkout"):
    result = actions.spans_otlp_ingest(
        application=application, request=request_of(*spans, service=service)
    )
    assert result.rejected == 0
    return result


@pytest.fixture
def viewer_client(client_as):
    return client_as("viewer")


@pytest.fixture
def shop(make_application):
    """Three traces: an older fast one, an errored slow one with a nested tree and an
    orphan, and a newest one of another service and application."""
    shop, _ = make_application("shop")
    other, _ = make_application("other")
    push(shop, span("a000000000000001", "GET /old", trace=THIRD, seconds_ago=60, duration=0.01))
    push(
        shop,
        span("b000000000000001", "GET /checkout", seconds_ago=30, duration=2.0),
        span("b000000000000002", "charge", parent="b000000000000001", seconds_ago=29.5,
             duration=1.0, kind=OtlpSpan.SPAN_KIND_CLIENT),
        span("b000000000000003", "SELECT cards", parent="b000000000000002", seconds_ago=29.4,
             duration=0.2, status=Status.STATUS_CODE_ERROR, message="deadlock"),
        span("b000000000000004", "render", parent="b000000000000001", seconds_ago=29.0,
             duration=0.1),
        span("b000000000000005", "late callback", parent="ffffffffffffffff", seconds_ago=28.5,
             duration=0.1),
    )  # fmt: skip
    push(other, span("c000000000000001", "consume", trace=OTHER_TRACE, seconds_ago=10),
         service="worker")  # fmt: skip
    return shop


def test_traces_are_listed_newest_first_with_root_count_and_duration(viewer_client, shop):
    response = viewer_client.get("/api/traces/")
    assert response.status_code == 200, response.content
    rows = response.json()["results"]
    assert [r["trace_id"] for r in rows] == [OTHER_TRACE, TRACE, THIRD]
    checkout = rows[1]
    assert checkout["root"]["span_id"] == "b000000000000001"
    assert checkout["root"]["name"] == "GET /checkout"
    assert checkout["root"]["application"] == "shop"
    assert checkout["root"]["parent_span_id"] is None
    assert (checkout["span_count"], checkout["error_count"]) == (5, 1)
    assert checkout["duration_ms"] == pytest.approx(2000, abs=1)
    assert checkout["url"].endswith(f"/api/traces/{TRACE}/")
    assert rows[0]["root"]["service"] == "worker"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("application=other", [OTHER_TRACE]),
        ("service=checkout", [TRACE, THIRD]),
        ("name=SELECT%20cards", [TRACE]),
        ("status=error", [TRACE]),
        ("min_duration_ms=1500", [TRACE]),
        ("min_duration_ms=5", [OTHER_TRACE, TRACE, THIRD]),
        ("application=shop&status=unset&min_duration_ms=50", [TRACE]),
    ],
)
def test_filters(viewer_client, shop, query, expected):
    response = viewer_client.get(f"/api/traces/?{query}")
    assert response.status_code == 200, response.content
    assert [r["trace_id"] for r in response.json()["results"]] == expected


def test_the_range_selects_traces_by_their_spans(viewer_client, shop):
    now = datetime.now(UTC)
    since = (now - timedelta(seconds=45)).isoformat()
    until = (now - timedelta(seconds=20)).isoformat()
    response = viewer_client.get("/api/traces/", {"from": since, "to": until})
    assert [r["trace_id"] for r in response.json()["results"]] == [TRACE]
    old = (now - timedelta(days=3)).isoformat()
    response = viewer_client.get("/api/traces/", {"from": old, "to": since})
    assert [r["trace_id"] for r in response.json()["results"]] == [THIRD]


def test_pages_follow_next_without_repeats(viewer_client, shop):
    seen, url = [], "/api/traces/?page_size=2"
    while url:
        page = viewer_client.get(url).json()
        seen += [r["trace_id"] for r in page["results"]]
        url = page["next"]
    assert seen == [OTHER_TRACE, TRACE, THIRD]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=broken", "status"),
        ("min_duration_ms=-1", "min_duration_ms"),
        ("min_duration_ms=abc", "min_duration_ms"),
        ("application=nope", "application"),
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("from=yesterday", "from"),
        ("cursor=bm90IG91cnM", "cursor"),
        ("cursor=WzEsIlx1MDAwMCJd", "cursor"),
        ("page_size=0", "page_size"),
    ],
)
def test_bad_list_parameters_are_400_naming_them(viewer_client, db, query, field):
    response = viewer_client.get(f"/api/traces/?{query}")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()


def test_a_trace_is_a_tree_with_orphans_at_the_top_and_a_link_to_its_logs(viewer_client, shop):
    response = viewer_client.get(f"/api/traces/{TRACE.upper()}/")
    assert response.status_code == 200, response.content
    trace = response.json()
    assert (trace["trace_id"], trace["span_count"], trace["error_count"]) == (TRACE, 5, 1)
    assert trace["logs"].endswith(f"/api/logs/search?trace_id={TRACE}")
    assert trace["services"] == ["checkout"] and trace["applications"] == ["shop"]
    top = trace["spans"]
    assert [(s["span_id"], s["orphan"]) for s in top] == [
        ("b000000000000001", False), ("b000000000000005", True),
    ]  # fmt: skip
    root = top[0]
    assert [c["name"] for c in root["children"]] == ["charge", "render"]
    charge = root["children"][0]
    assert charge["kind"] == "client"
    assert [c["name"] for c in charge["children"]] == ["SELECT cards"]
    assert charge["children"][0]["status"] == {"code": "error", "message": "deadlock"}
    assert charge["children"][0]["children"] == []


def test_a_log_line_and_its_trace_link_to_each_other(viewer_client, shop):
    actions.log_lines_ingest(
        application=shop, lines=[{"message": "card declined", "trace_id": TRACE}]
    )
    trace = viewer_client.get(f"/api/traces/{TRACE}/").json()
    logs = viewer_client.get(trace["logs"]).json()["results"]
    assert [line["message"] for line in logs] == ["card declined"]
    assert viewer_client.get(logs[0]["trace"]).json()["trace_id"] == TRACE


def test_an_unknown_trace_is_404_and_a_malformed_id_400(viewer_client, db):
    missing = viewer_client.get(f"/api/traces/{'9' * 32}/")
    assert missing.status_code == 404
    assert "No span of trace" in missing.json()["message"]
    malformed = viewer_client.get("/api/traces/not-a-trace/")
    assert malformed.status_code == 400
    assert "trace_id" in malformed.json()["errors"]


def test_an_ingest_key_reads_no_trace(make_application):
    _, key = make_application("shop")
    for url in ("/api/traces/", f"/api/traces/{TRACE}/"):
        response = bearer(key).get(url)
        assert response.status_code == 403
        assert "only writes data" in response.json()["message"]


def test_the_api_root_lists_traces(viewer_client, db):
    assert viewer_client.get("/api/").json()["traces"].endswith("/api/traces/")


# --- the tree on its own ----------------------------------------------------------------------


def node(span_id: str, parent: str = "", second: int = 0) -> dict:
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=second)
    return {"span_id": span_id, "parent_span_id": parent or None, "start": start}


def test_a_parent_cycle_is_broken_and_every_span_kept():
    spans = [node("a", "b", 1), node("b", "a", 2), node("c", "a", 3)]
    top = span_tree(spans)
    assert [(s["span_id"], s["orphan"]) for s in top] == [("a", True)]
    assert [c["span_id"] for c in top[0]["children"]] == ["b", "c"]


def test_a_span_that_is_its_own_parent_is_an_orphan():
    top = span_tree([node("a", "a")])
    assert [(s["span_id"], s["orphan"]) for s in top] == [("a", True)]


def test_a_very_deep_chain_is_cut_into_shallow_trees():
    spans = [node("0")] + [node(str(n), str(n - 1), n) for n in range(1, 3 * MAX_TREE_DEPTH)]
    top = span_tree(spans)

    def count(s, depth=0):
        assert depth <= MAX_TREE_DEPTH
        return 1 + sum(count(c, depth + 1) for c in s["children"])

    assert sum(count(s) for s in top) == len(spans)
    assert len(top) > 1


def test_a_list_past_its_statement_timeout_is_a_400_asking_for_a_narrower_range(
    viewer_client, shop, monkeypatch
):
    """A slow table, made by sleeping in it: the page statement is cancelled, the answer says
    what to do."""
    from observability.traces import query

    monkeypatch.setattr(query, "STATEMENT_TIMEOUT_MS", 20)
    monkeypatch.setattr(query, "TABLE", "(SELECT s.* FROM observability_span s, pg_sleep(0.5)) t")
    response = viewer_client.get("/api/traces/")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "too_costly"
    assert "narrow the range" in response.json()["message"]
